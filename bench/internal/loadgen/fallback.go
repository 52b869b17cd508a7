package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wsroom.dev/bench/internal/wsclient"
)

// The fallback scenario: wsroom's HTTP fallback (Server-Sent Events down,
// POSTs up) against its WebSocket path, on one server: the same fan-out
// to Members WebSocket members, then to Members fallback members, and the
// server CPU each delivery costs. It is wsroom's own (no peer has the
// fallback): Scenario.WsroomOnly.

// FallbackConfig is the fallback scenario.
type FallbackConfig struct {
	// Members of each phase; one more WebSocket member sends.
	Members int
	// Messages the sender sends back to back in each phase.
	Messages int
	// InFlight bounds concurrent dials. Default 100.
	InFlight int
	// Timeout bounds each phase's joins and deliveries; Stall ends the
	// delivery wait early when nothing arrived for that long. Defaults 60
	// s, 5 s.
	Timeout, Stall time.Duration
}

func (cfg FallbackConfig) withDefaults() FallbackConfig {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 100
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 5 * time.Second
	}
	return cfg
}

// FallbackScenario is the fallback scenario at the given size.
func FallbackScenario(size Size) Scenario {
	cfg := FallbackConfig{Members: 1000, Messages: 100}
	switch size {
	case Quick:
		cfg = FallbackConfig{Members: 200, Messages: 20}
	case Tiny:
		cfg = FallbackConfig{Members: 5, Messages: 10, Timeout: 10 * time.Second, Stall: 2 * time.Second}
	}
	return Scenario{
		Name: "fallback-1k",
		About: fmt.Sprintf("wsroom only: %d WebSocket members in one room, then %d members of the HTTP fallback (Server-Sent Events down, POSTs up) in another, on the same server; each time one more WebSocket member sends %d messages back to back. Server CPU per delivery of each; target: the fallback within 2× the WebSocket",
			cfg.Members, cfg.Members, cfg.Messages),
		Columns: []Column{
			{Key: "ws_cpu_us_per_delivery", Header: "WS CPU/delivery", Format: Micros, Better: -1},
			{Key: "sse_cpu_us_per_delivery", Header: "SSE CPU/delivery", Format: Micros, Better: -1},
			{Key: "sse_ws_cpu_ratio", Header: "SSE ÷ WS", Format: Fraction, Better: -1},
			{Key: "ws_deliveries_per_s", Header: "WS deliveries/s", Format: Rate, Better: +1},
			{Key: "sse_deliveries_per_s", Header: "SSE deliveries/s", Format: Rate, Better: +1},
			{Key: "loss", Header: "lost", Format: Count, Better: -1},
			{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
		},
		Headline:   "sse_ws_cpu_ratio",
		WsroomOnly: true,
		Run:        func(ctx context.Context, t Target) Result { return RunFallback(ctx, t, cfg) },
	}
}

// RunFallback runs the fallback scenario against a wsroom server.
func RunFallback(ctx context.Context, t Target, cfg FallbackConfig) (r Result) {
	cfg = cfg.withDefaults()
	if t.Protocol != Wsroom {
		r.Err = "the HTTP fallback is wsroom's own"
		return r
	}
	defer t.stop()
	var cpu [2]float64
	var loss, dropped int64
	for i, sse := range []bool{false, true} {
		name := "ws"
		if sse {
			name = "sse"
		}
		p := runFanPhase(ctx, t, cfg, sse)
		loss += p.expected - p.delivered
		dropped += p.dropped
		for _, prob := range p.problems {
			r.problem("%s: %s", name, prob)
		}
		if p.cpu > 0 && p.delivered > 0 {
			cpu[i] = float64(p.cpu.Nanoseconds()) / 1e3 / float64(p.delivered)
			r.set(name+"_cpu_us_per_delivery", cpu[i])
		}
		if p.span > 0 {
			r.set(name+"_deliveries_per_s", float64(p.delivered)/p.span.Seconds())
		}
		r.set(name+"_join_s", p.join.Seconds())
	}
	r.set("loss", float64(loss))
	r.set("dropped", float64(dropped))
	if loss > 0 {
		r.problem("loss: %d deliveries", loss)
	}
	if cpu[0] > 0 && cpu[1] > 0 {
		ratio := cpu[1] / cpu[0]
		r.set("sse_ws_cpu_ratio", ratio)
		// A handful of members measures nothing but noise: the target is
		// judged from a hundred up.
		if ratio > 2 && cfg.Members >= 100 {
			r.problem("the fallback costs %.2f× the WebSocket's CPU per delivery: over the 2× target", ratio)
		}
	}
	return r
}

// fanPhase is one phase's outcome.
type fanPhase struct {
	expected, delivered, dropped int64
	cpu, span, join              time.Duration
	problems                     []string
}

// fanCounter is what a member's reader records.
type fanCounter struct {
	got     atomic.Int64  // message events
	welcome chan struct{} // closed at the welcome
}

// runFanPhase joins cfg.Members members of one transport to a room of
// their own, then a WebSocket sender, and times the server's CPU from the
// first message sent to the last delivery.
func runFanPhase(ctx context.Context, t Target, cfg FallbackConfig, sse bool) (p fanPhase) {
	room, prefix, source := "fan-ws", "w", "127.0.0.1"
	if sse {
		// Another source address than the WebSocket members': each holds
		// its own share of the per-address connection cap.
		room, prefix, source = "fan-sse", "s", "127.0.0.2"
	}
	ctx, cancel := context.WithTimeout(ctx, 2*cfg.Timeout)
	defer cancel()
	var (
		mu      sync.Mutex
		closers []func()
		wg      sync.WaitGroup
		last    atomic.Int64 // UnixNano of the last frame or event read
	)
	defer func() {
		mu.Lock()
		for _, c := range closers {
			c()
		}
		mu.Unlock()
		wg.Wait()
	}()
	keep := func(c func()) {
		mu.Lock()
		closers = append(closers, c)
		mu.Unlock()
	}
	posts := &http.Client{Transport: &http.Transport{
		DialContext:         (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}).DialContext,
		MaxIdleConnsPerHost: cfg.InFlight,
	}}
	defer posts.CloseIdleConnections()

	counters := make([]*fanCounter, cfg.Members)
	start := time.Now()
	sem := make(chan struct{}, cfg.InFlight)
	var dialWG sync.WaitGroup
	var failed atomic.Int64
	var firstErr atomic.Value
	for i := range cfg.Members {
		counters[i] = &fanCounter{welcome: make(chan struct{})}
		dialWG.Add(1)
		sem <- struct{}{}
		go func() {
			defer dialWG.Done()
			defer func() { <-sem }()
			name := fmt.Sprintf("%s%04d", prefix, i)
			var err error
			if sse {
				err = joinStream(ctx, t, room, name, source, posts, counters[i], &last, &wg, keep)
			} else {
				_, err = joinSocket(ctx, t, room, name, source, counters[i], &last, &wg, keep)
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
		}()
	}
	dialWG.Wait()
	if n := failed.Load(); n > 0 {
		p.dropped = n
		p.problems = append(p.problems, fmt.Sprintf("%d members failed to join (%v)", n, firstErr.Load()))
	}
	for _, c := range counters {
		select {
		case <-c.welcome:
		case <-ctx.Done():
			p.problems = append(p.problems, "not every member was welcomed")
			return p
		}
	}
	sender := &fanCounter{welcome: make(chan struct{})}
	// The sender from an address of its own too: the members may fill
	// their address's share of the cap.
	conn, err := joinSocket(ctx, t, room, "sender", "127.0.0.3", sender, &last, &wg, keep)
	if err != nil {
		p.problems = append(p.problems, "sender: "+err.Error())
		return p
	}
	select {
	case <-sender.welcome:
	case <-ctx.Done():
		p.problems = append(p.problems, "the sender was never welcomed")
		return p
	}
	p.join = time.Since(start)
	// Let the arrivals' presence events go out before measuring.
	fanQuiet(ctx, &last, 300*time.Millisecond, cfg.Timeout)

	sum := func() int64 {
		var n int64
		for _, c := range counters {
			n += c.got.Load()
		}
		return n
	}
	p.expected = int64(cfg.Members) * int64(cfg.Messages)
	cpu0, cpuOK := t.cpu()
	first := time.Now()
	if err := send(ctx, conn, cfg.Messages, 0); err != nil {
		p.problems = append(p.problems, "send: "+err.Error())
	}
	last.Store(time.Now().UnixNano()) // the stall counts from here
	deadline := time.Now().Add(cfg.Timeout)
	for p.delivered = sum(); p.delivered < p.expected; p.delivered = sum() {
		if time.Since(time.Unix(0, last.Load())) >= cfg.Stall {
			p.problems = append(p.problems, fmt.Sprintf("stalled: nothing arrived for %v", cfg.Stall))
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			p.problems = append(p.problems, fmt.Sprintf("timeout after %v", cfg.Timeout))
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(2 * time.Millisecond):
		}
	}
	cpu1, cpu1OK := t.cpu()
	p.span = time.Unix(0, last.Load()).Sub(first)
	if cpuOK && cpu1OK {
		p.cpu = cpu1 - cpu0
	}
	return p
}

// fanQuiet waits until nothing was read for quiet, for at most max.
func fanQuiet(ctx context.Context, last *atomic.Int64, quiet, max time.Duration) {
	deadline := time.Now().Add(max)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if time.Since(time.Unix(0, last.Load())) >= quiet {
			return
		}
		select {
		case <-ctx.Done():
		case <-time.After(quiet / 4):
		}
	}
}

// joinSocket dials a WebSocket member from source, joins it as name, and
// reads its frames into c until closed.
func joinSocket(ctx context.Context, t Target, room, name, source string, c *fanCounter, last *atomic.Int64, wg *sync.WaitGroup, keep func(func())) (*wsclient.Conn, error) {
	d := wsclient.Dialer{NetDialer: &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}}
	conn, err := d.Dial(ctx, t.wsURL("/chat/"+room), Subprotocol)
	if err != nil {
		return nil, err
	}
	keep(func() { conn.CloseNow() })
	if err := conn.WriteText([]byte(`{"type":"join","name":"` + name + `"}`)); err != nil {
		return nil, err
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		welcomed := false
		for {
			_, b, err := conn.ReadMessage()
			if err != nil {
				return
			}
			last.Store(time.Now().UnixNano())
			for len(b) > 0 {
				line := b
				if i := bytes.IndexByte(b, '\n'); i >= 0 {
					line, b = b[:i], b[i+1:]
				} else {
					b = nil
				}
				switch {
				case bytes.HasPrefix(line, []byte(`{"type":"message"`)):
					c.got.Add(1)
				case !welcomed && bytes.HasPrefix(line, []byte(`{"type":"welcome"`)):
					welcomed = true
					close(c.welcome)
				}
			}
		}
	}()
	return conn, nil
}

// joinStream opens a fallback stream from source, joins it as name with a
// POST, and reads its events into c until closed.
func joinStream(ctx context.Context, t Target, room, name, source string, posts *http.Client, c *fanCounter, last *atomic.Int64, wg *sync.WaitGroup, keep func(func())) error {
	host := strings.TrimPrefix(t.URL, "http://")
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	nc, err := d.DialContext(ctx, "tcp", host)
	if err != nil {
		return err
	}
	keep(func() { nc.Close() })
	if _, err := fmt.Fprintf(nc, "GET /chat/%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", room, host); err != nil {
		return err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("stream: %s", resp.Status)
	}
	body := bufio.NewReader(resp.Body)
	var token string
	for token == "" {
		line, err := body.ReadString('\n')
		if err != nil {
			return fmt.Errorf("stream: %w", err)
		}
		if rest, ok := strings.CutPrefix(line, `data: {"token":"`); ok {
			token, _, _ = strings.Cut(rest, `"`)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		welcomed := false
		for {
			line, err := body.ReadSlice('\n')
			if err != nil && err != bufio.ErrBufferFull {
				return
			}
			last.Store(time.Now().UnixNano())
			switch {
			case bytes.HasPrefix(line, []byte(`data: {"type":"message"`)):
				c.got.Add(1)
			case !welcomed && bytes.HasPrefix(line, []byte(`data: {"type":"welcome"`)):
				welcomed = true
				close(c.welcome)
			}
			if err == bufio.ErrBufferFull { // the rest of a long line
				for err == bufio.ErrBufferFull {
					_, err = body.ReadSlice('\n')
				}
			}
		}
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, t.URL+"/chat/"+room, strings.NewReader(`{"type":"join","name":"`+name+`"}`))
	if err != nil {
		return err
	}
	req.Header.Set("Wsroom-Token", token)
	req.Header.Set("Content-Type", "text/plain")
	res, err := posts.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		return fmt.Errorf("join POST: %s", res.Status)
	}
	return nil
}
