package loadgen

import (
	"context"
	"fmt"
	"slices"
	"time"
)

// RoomConfig is a room scenario: Members join one room, then one of them
// sends Messages, back to back (Rate 0) or Rate per second.
type RoomConfig struct {
	Members  int
	Messages int
	Rate     float64 // messages per second; 0: as fast as the sender can write
	// RoomPrefix names the room: RoomPrefix + "0". Default "r".
	RoomPrefix string
	// InFlight bounds concurrent dials. Default 200.
	InFlight int
	// Settle bounds the wait for the join traffic to end; Quiet ends it
	// early when no frame arrived for that long. Defaults 60 s, 1 s.
	Settle, Quiet time.Duration
	// Timeout bounds the delivery phase; Stall ends it early when no
	// frame arrived for that long after the last send. Defaults 60 s, 5 s.
	Timeout, Stall time.Duration
}

func (cfg RoomConfig) withDefaults() RoomConfig {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 60 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = time.Second
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 5 * time.Second
	}
	return cfg
}

// RunRoom runs a burst (Rate 0) or paced room scenario.
//
// The sender is the first member (u0, unless the server dropped it while
// the room filled) that is in and connected; each text is
// "b:SEQ:UNIXNANO", stamped just before the write. Every member, the sender
// included, records each message's first arrival (latency: arrival −
// stamp) and counts repeats as duplicates. The phase ends when every member
// has every message or has dropped, or after Timeout, or when nothing
// arrived for Stall after the last send.
//
// Loss is expected − unique deliveries, counting members that dropped or
// never joined; a message that arrives after a later one is reordered.
// Server CPU is measured from the first send to the end.
func RunRoom(ctx context.Context, t Target, cfg RoomConfig) (r Result) {
	cfg = cfg.withDefaults()
	c := newCrowd(t, 1, cfg.Members)
	defer c.close()
	if cfg.RoomPrefix != "" {
		c.prefix = cfg.RoomPrefix
	}
	c.messages = cfg.Messages
	c.expected = int64(cfg.Members) * int64(cfg.Messages)

	start := time.Now()
	c.dialAll(ctx, cfg.InFlight)
	completed := c.settle(ctx, cfg.Quiet, cfg.Settle)
	r.set("settle_s", time.Since(start).Seconds())
	if !completed {
		in, pairs := c.missing()
		r.problem("join traffic did not complete (%d not in, %d pairs unaware) after %.1fs", in, pairs, time.Since(start).Seconds())
	}
	sender := c.sender()
	if sender == nil {
		r.Err = "no member is left to send"
		c.report(&r)
		return r
	}
	r.set("sender", float64(sender.idx))

	c.recording.Store(true)
	c.checkFinished() // every member may be lost already
	cpu0, cpuOK := t.cpu()
	back0, backOK := t.backendCPU()
	self0 := selfCPU()
	mach0 := sampleMachine()
	first := time.Now()
	sendErr := send(ctx, sender.conn, cfg.Messages, cfg.Rate)
	lastSend := time.Now()
	c.lastFrame.Store(lastSend.UnixNano()) // the stall counts from here
	if sendErr != nil {
		r.problem("send: %v", sendErr)
	}
	timedOut := c.waitDelivered(ctx, cfg.Timeout-time.Since(first), cfg.Stall)
	end := time.Now()
	cpu1, cpu1OK := t.cpu()
	back1, back1OK := t.backendCPU()
	self := selfCPU() - self0
	mach1 := sampleMachine()
	r.set("client_cpu_s", self.Seconds())
	c.recording.Store(false)
	c.close()

	var lat []int64
	var last int64
	for i := range c.members {
		m := &c.members[i]
		lat = append(lat, m.lat...)
		last = max(last, m.lastRecv)
	}
	delivered := int64(len(lat))
	r.set("members", float64(cfg.Members))
	r.set("messages", float64(cfg.Messages))
	r.set("expected", float64(c.expected))
	r.set("delivered", float64(delivered))
	r.set("loss", float64(c.expected-delivered))
	r.set("duplicates", float64(c.dups.Load()))
	r.set("reordered", float64(c.reordered.Load()))
	r.set("send_s", lastSend.Sub(first).Seconds())
	if last > 0 {
		span := time.Unix(0, last).Sub(first)
		r.set("deliver_s", span.Seconds())
		if span > 0 {
			r.set("deliveries_per_s", float64(delivered)/span.Seconds())
		}
	}
	slices.Sort(lat)
	if len(lat) > 0 {
		r.set("p50_ms", ms(percentile(lat, 0.50)))
		r.set("p99_ms", ms(percentile(lat, 0.99)))
		r.set("max_ms", ms(lat[len(lat)-1]))
	}
	if cpuOK && cpu1OK && delivered > 0 {
		cpu := cpu1 - cpu0
		r.set("cpu_s", cpu.Seconds())
		r.set("cpu_us_per_delivery", float64(cpu.Nanoseconds())/1e3/float64(delivered))
	}
	var back time.Duration
	if backOK && back1OK && delivered > 0 {
		back = back1 - back0
		r.set("backend_cpu_s", back.Seconds())
		r.set("backend_us_per_delivery", float64(back.Nanoseconds())/1e3/float64(delivered))
	}
	if cpuOK && cpu1OK {
		r.otherCores(mach0, mach1, end.Sub(first), cpu1-cpu0+back, self)
	}
	if timedOut != "" {
		r.problem("%s after %.1fs", timedOut, end.Sub(first).Seconds())
	}
	if loss := c.expected - delivered; loss > 0 {
		r.problem("loss: %d of %d deliveries", loss, c.expected)
	}
	if d := c.dups.Load(); d > 0 {
		r.problem("%d duplicate deliveries", d)
	}
	if d := c.reordered.Load(); d > 0 {
		r.problem("%d deliveries out of their sender's order", d)
	}
	c.report(&r)
	return r
}

// send writes n messages as fast as it can (rate 0) or at rate per second,
// paced by a ticker.
func send(ctx context.Context, conn interface{ WriteText([]byte) error }, n int, rate float64) error {
	var tick *time.Ticker
	if rate > 0 {
		tick = time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer tick.Stop()
	}
	buf := make([]byte, 0, 96)
	for seq := range n {
		if tick != nil && seq > 0 {
			select {
			case <-tick.C:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		buf = append(buf[:0], `{"type":"message","text":"`...)
		buf = appendText(buf, seq, time.Now().UnixNano())
		buf = append(buf, `"}`...)
		if err := conn.WriteText(buf); err != nil {
			return fmt.Errorf("message %d: %w", seq, err)
		}
	}
	return nil
}

// waitDelivered waits until every delivery arrived, for at most timeout,
// or until nothing arrived for stall. It returns why it gave up, or "".
func (c *crowd) waitDelivered(ctx context.Context, timeout, stall time.Duration) string {
	deadline := time.NewTimer(max(timeout, 0))
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.allIn:
			return ""
		case <-ctx.Done():
			return "canceled"
		case <-deadline.C:
			return "timeout"
		case <-tick.C:
			if time.Since(time.Unix(0, c.lastFrame.Load())) >= stall {
				return fmt.Sprintf("stalled (no frame for %v)", stall)
			}
		}
	}
}

// percentile returns the p-quantile of sorted (nearest rank).
func percentile(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }
func us(ns int64) float64 { return float64(ns) / 1e3 }
