package loadgen

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"wsroom.dev/bench/internal/wsclient"
)

// EchoConfig is an echo scenario: Conns connections to /echo, each sending
// a Size-byte message and waiting for its echo, in a loop.
type EchoConfig struct {
	Conns  int
	Size   int
	Binary bool
	// Warmup runs the loop unmeasured first; Duration and MaxOps bound
	// the measured loop.
	Warmup, Duration time.Duration
	MaxOps           int64
}

// RunEcho runs an echo scenario: round trips per second over the measured
// phase, the latency of each round trip (write to echo read), and server
// CPU per round trip. Every echo is compared with what was sent.
func RunEcho(ctx context.Context, t Target, cfg EchoConfig) (r Result) {
	conns := make([]*wsclient.Conn, 0, cfg.Conns)
	defer func() {
		// Nobody reads these connections any more: close them before
		// the server, which would wait for their close handshakes.
		for _, c := range conns {
			c.CloseNow()
		}
		t.stop()
	}()
	for range cfg.Conns {
		dctx, cancel := context.WithTimeout(ctx, 15*time.Second)
		c, err := dialer.Dial(dctx, t.wsURL("/echo"), "")
		cancel()
		if err != nil {
			r.Err = err.Error()
			return r
		}
		conns = append(conns, c)
	}
	op := wsclient.OpText
	if cfg.Binary {
		op = wsclient.OpBinary
	}
	msgs := make([][]byte, len(conns))
	for i := range msgs {
		msgs[i] = payload(cfg.Size, cfg.Binary)
	}

	// Both phases run the same loop; only the second is recorded.
	var ops atomic.Int64
	lats := make([][]int64, len(conns))
	errs := make([]error, len(conns))
	phase := func(until time.Time, record bool) {
		var wg sync.WaitGroup
		for i, c := range conns {
			if errs[i] != nil {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				lat, err := echoLoop(ctx, c, op, msgs[i], until, record, &ops, cfg.MaxOps, lats[i])
				lats[i], errs[i] = lat, err
			}()
		}
		wg.Wait()
	}
	phase(time.Now().Add(cfg.Warmup), false)
	cpu0, cpuOK := t.cpu()
	self0 := selfCPU()
	start := time.Now()
	phase(start.Add(cfg.Duration), true)
	elapsed := time.Since(start)
	cpu1, cpu1OK := t.cpu()
	r.set("client_cpu_s", (selfCPU() - self0).Seconds())

	var all []int64
	for _, l := range lats {
		all = append(all, l...)
	}
	slices.Sort(all)
	n := int64(len(all))
	r.set("conns", float64(cfg.Conns))
	r.set("round_trips", float64(n))
	r.set("round_trips_per_s", float64(n)/elapsed.Seconds())
	if n > 0 {
		r.set("p50_us", us(percentile(all, 0.50)))
		r.set("p99_us", us(percentile(all, 0.99)))
		r.set("max_us", us(all[n-1]))
	}
	if cpuOK && cpu1OK && n > 0 {
		r.set("cpu_s", (cpu1 - cpu0).Seconds())
		r.set("cpu_us_per_op", float64((cpu1-cpu0).Nanoseconds())/1e3/float64(n))
	}
	failed := 0
	for _, err := range errs {
		if err != nil {
			if failed == 0 {
				r.problem("echo: %v", err)
			}
			failed++
		}
	}
	r.set("failed_conns", float64(failed))
	if failed > 1 {
		r.problem("%d of %d connections failed", failed, cfg.Conns)
	}
	return r
}

// echoLoop sends msg and reads its echo until the deadline or until ops
// reaches maxOps, recording latencies if record.
func echoLoop(ctx context.Context, c *wsclient.Conn, op wsclient.Opcode, msg []byte, until time.Time, record bool, ops *atomic.Int64, maxOps int64, lat []int64) ([]int64, error) {
	if lat == nil && record {
		lat = make([]int64, 0, 1<<14)
	}
	for ctx.Err() == nil && time.Now().Before(until) {
		if record && ops.Add(1) > maxOps {
			break
		}
		t0 := time.Now()
		if err := c.WriteMessage(op, msg); err != nil {
			return lat, err
		}
		got, p, err := c.ReadMessage()
		if err != nil {
			return lat, err
		}
		if got != op || !bytes.Equal(p, msg) {
			return lat, fmt.Errorf("echo mismatch: sent %v %d bytes, got %v %d bytes", op, len(msg), got, len(p))
		}
		if record {
			lat = append(lat, int64(time.Since(t0)))
		}
	}
	return lat, ctx.Err()
}

// payload returns size bytes of printable text or random binary.
func payload(size int, binary bool) []byte {
	b := make([]byte, size)
	for i := range b {
		if binary {
			b[i] = byte(rand.Uint32())
		} else {
			b[i] = 'a' + byte(rand.IntN(26))
		}
	}
	return b
}
