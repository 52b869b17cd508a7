package faults_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// TestRateLimitFlood: a member that floods the room with the default rate
// limit (20/s, bursts of 40) gets rate_limited errors, then is closed with
// 1008; the room hears no more than the limit lets through, and the other
// members stay.
func TestRateLimitFlood(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	l := &leaves{by: map[string]wsroom.LeaveEvent{}}
	e := newEnv(t, wsroom.Options{Hooks: wsroom.Hooks{OnLeave: l.hook}})
	watcher := e.join(ctx, "flood", "watcher")
	flooder := e.join(ctx, "flood", "flooder")
	start := time.Now()
	sent := 0
	for ; sent < 500; sent++ {
		if err := flooder.say(ctx, fmt.Sprintf("spam %d", sent)); err != nil {
			break // closed by the server
		}
	}
	errs := 0
	for ev := range flooder.events {
		if ev.Type == "error" && ev.Code == wsroom.CodeRateLimited {
			errs++
		}
	}
	elapsed := time.Since(start)
	if code := websocket.CloseStatus(flooder.err); code != websocket.StatusPolicyViolation {
		t.Fatalf("the flooder ended with %v, want 1008", flooder.err)
	}
	if errs == 0 {
		t.Errorf("no rate_limited error before the close")
	}
	waitFor(ctx, t, "the flooder's departure", func() bool { _, ok := l.of("flood", "flooder"); return ok })
	if le, _ := l.of("flood", "flooder"); le.Reason != wsroom.ReasonPolicy {
		t.Errorf("the flooder left with %v, want policy", le.Reason)
	}
	heard := 0
	for {
		ev, err := watcher.next(ctx, "message", "leave")
		if err != nil {
			t.Fatal(err)
		}
		if ev.Type == "leave" {
			break
		}
		heard++
	}
	// The joining frame took one token of the 40.
	allowed := 40 + int(20*elapsed.Seconds()) + 1
	t.Logf("the flooder wrote %d messages in %v: %d reached the room, %d rate_limited errors, then 1008", sent, elapsed.Round(time.Millisecond), heard, errs)
	if heard > allowed {
		t.Errorf("the room heard %d messages, more than the limit allows (%d)", heard, allowed)
	}
	if err := watcher.say(ctx, "still here"); err != nil {
		t.Fatal(err)
	}
	if ev, err := watcher.next(ctx, "message"); err != nil || ev.Text != "still here" {
		t.Fatalf("watcher: %+v %v", ev, err)
	}
}

// byHeader is a ClientIP that lets a test pose as several addresses.
func byHeader(r *http.Request) string {
	if v := r.Header.Get("X-Test-Client"); v != "" {
		return v
	}
	host, _, _ := net.SplitHostPort(r.RemoteAddr)
	return host
}

// dialFlood opens n echo connections at once as client, and returns them
// with the HTTP statuses of those refused.
func dialFlood(ctx context.Context, url, client string, n int) ([]*websocket.Conn, map[int]int, []string) {
	var mu sync.Mutex
	var conns []*websocket.Conn
	statuses := map[int]int{}
	var retry []string
	parallel(n, n, func(int) error {
		c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: http.Header{"X-Test-Client": {client}}})
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			conns = append(conns, c)
		case resp != nil:
			statuses[resp.StatusCode]++
			retry = append(retry, resp.Header.Get("Retry-After"))
		default:
			statuses[-1]++
		}
		return nil
	})
	return conns, statuses, retry
}

// TestConnectionFlood: a flood of connections from one address is held to
// MaxConnectionsPerIP (429 with Retry-After) while other addresses still
// connect; a flood from many addresses is held to MaxConnections (503 with
// Retry-After); places freed are taken again.
func TestConnectionFlood(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	e := newEnv(t, wsroom.Options{MaxConnectionsPerIP: 50, MaxConnections: 120, ClientIP: byHeader})
	url := e.ws + "/echo"
	closeAll := func(cs []*websocket.Conn) {
		for _, c := range cs {
			c.CloseNow()
		}
	}

	flood, statuses, retry := dialFlood(ctx, url, "mallory", 200)
	defer closeAll(flood)
	if len(flood) != 50 || statuses[http.StatusTooManyRequests] != 150 {
		t.Fatalf("200 connections from one address: %d accepted, refusals %v; want 50 and 150×429", len(flood), statuses)
	}
	if i := slices.IndexFunc(retry, func(s string) bool { return s == "" }); i >= 0 {
		t.Errorf("a 429 without Retry-After")
	}
	others, statuses, _ := dialFlood(ctx, url, "alice", 10)
	defer closeAll(others)
	if len(others) != 10 {
		t.Fatalf("another address during the flood: %d of 10 accepted (%v)", len(others), statuses)
	}

	// 60 held; 100 more from 100 addresses: 60 fit under MaxConnections.
	var many []*websocket.Conn
	var mu sync.Mutex
	got := map[int]int{}
	parallel(100, 100, func(i int) error {
		c, s, _ := dialFlood(ctx, url, fmt.Sprintf("bot%d", i), 1)
		mu.Lock()
		defer mu.Unlock()
		many = append(many, c...)
		for k, v := range s {
			got[k] += v
		}
		return nil
	})
	defer closeAll(many)
	if len(many) != 60 || got[http.StatusServiceUnavailable] != 40 {
		t.Fatalf("100 connections from 100 addresses with 60 places: %d accepted, refusals %v; want 60 and 40×503", len(many), got)
	}
	// A client sees its 101 a moment before the server counts it in.
	waitFor(ctx, t, "120 connections counted", func() bool { return e.srv.Stats().Connections == 120 })
	if st := e.srv.Stats(); st.Refused != 190 {
		t.Errorf("Stats: %d refused; want 190", st.Refused)
	}
	closeAll(flood)
	waitFor(ctx, t, "the flood's places freed", func() bool { return e.srv.Stats().Connections == 70 })
	again, statuses, _ := dialFlood(ctx, url, "mallory", 50)
	defer closeAll(again)
	if len(again) != 50 {
		t.Fatalf("after the flood left, %d of 50 accepted (%v)", len(again), statuses)
	}
}

// TestHandshakeDribble: clients that send their upgrade request one byte
// every 200ms are cut off by the example server's ReadHeaderTimeout (10s),
// before their handler runs, while a regular client chats unhindered.
func TestHandshakeDribble(t *testing.T) {
	t.Parallel()
	srv := startChat(t, buildChat(t)) // a build under load takes long: before the clock starts
	ctx := testContext(t, 2*time.Minute)
	const dribblers = 100
	req := handshake(srv.addr, "/chat/slow", wsroom.Subprotocol)
	took := make([]time.Duration, dribblers)
	sent := make([]int, dribblers)
	var open atomic.Int32
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, dribblers)
	for i := range dribblers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := net.Dial("tcp", srv.addr)
			open.Add(1) // tried: a failed dial is reported below, not waited for
			if err != nil {
				errs <- err
				return
			}
			defer c.Close()
			ended := make(chan struct{})
			go func() { // the server's answer: an error status or EOF
				io.Copy(io.Discard, c)
				close(ended)
			}()
			tick := time.NewTicker(200 * time.Millisecond)
			defer tick.Stop()
			for sent[i] < len(req) {
				select {
				case <-ended:
					took[i] = time.Since(start)
					return
				case <-ctx.Done():
					errs <- ctx.Err()
					return
				case <-tick.C:
				}
				if _, err := c.Write([]byte{req[sent[i]]}); err != nil {
					break // cut off
				}
				sent[i]++
			}
			<-ended
			took[i] = time.Since(start)
			if sent[i] == len(req) {
				errs <- fmt.Errorf("dribbler %d sent its whole handshake before the server cut it off", i)
			}
		}()
	}
	waitFor(ctx, t, "the dribblers dialled", func() bool { return open.Load() == dribblers })
	// Meanwhile a regular client chats.
	a, err := joinURL(ctx, "ws://"+srv.addr+"/chat/fast", "a", "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	if err := a.say(ctx, "hi"); err != nil {
		t.Fatal(err)
	}
	if ev, err := a.next(ctx, "message"); err != nil || ev.Text != "hi" {
		t.Fatalf("a regular client during the dribble: %+v %v", ev, err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	first, last := slices.Min(took), slices.Max(took)
	t.Logf("%d dribblers (%d of %d bytes sent) cut off between %v and %v", dribblers, slices.Min(sent), len(req), first.Round(time.Millisecond), last.Round(time.Millisecond))
	// Sending the whole handshake would take 40s; the timeout is 10s, and
	// a loaded machine fires timers late.
	if first < 9500*time.Millisecond || last > 25*time.Second {
		t.Errorf("cut off between %v and %v, want about 10s (ReadHeaderTimeout)", first, last)
	}
}
