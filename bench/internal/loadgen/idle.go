package loadgen

import (
	"context"
	"time"
)

// IdleConfig is the idle-memory scenario: Rooms × PerRoom members join and
// stay idle.
type IdleConfig struct {
	Rooms, PerRoom int
	// InFlight bounds concurrent dials. Default 200.
	InFlight int
	// Settle bounds the wait for the join traffic to end; Quiet ends it
	// early when no frame arrived for that long. Defaults 60 s, 1 s.
	Settle, Quiet time.Duration
}

// RunIdle measures what idle members cost the server: /debug/mem (after
// two forced GCs) before any connection, and again once every member is in
// and the join traffic has settled. The bare server gets the same
// connections, none of which joins anything.
func RunIdle(ctx context.Context, t Target, cfg IdleConfig) (r Result) {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 60 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = time.Second
	}
	before, err := t.Mem(ctx)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	c := newCrowd(t, cfg.Rooms, cfg.PerRoom)
	defer c.close()
	start := time.Now()
	c.dialAll(ctx, cfg.InFlight)
	if !c.settle(ctx, cfg.Quiet, cfg.Settle) {
		in, pairs := c.missing()
		r.problem("join traffic did not complete (%d not in, %d pairs unaware)", in, pairs)
	}
	r.set("settle_s", time.Since(start).Seconds())
	after, err := t.Mem(ctx)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	open := c.opened.Load() - c.dropped.Load()
	c.close()

	n := float64(cfg.Rooms * cfg.PerRoom)
	r.set("conns", n)
	r.set("open", float64(open))
	r.set("heap_stack_per_conn", (float64(after.HeapInuse+after.StackInuse)-float64(before.HeapInuse+before.StackInuse))/n)
	r.set("heap_per_conn", (float64(after.HeapInuse)-float64(before.HeapInuse))/n)
	r.set("stack_per_conn", (float64(after.StackInuse)-float64(before.StackInuse))/n)
	r.set("rss_per_conn", (float64(after.RSS)-float64(before.RSS))/n)
	r.set("goroutines_per_conn", float64(after.Goroutines-before.Goroutines)/n)
	r.set("rss_after", float64(after.RSS))
	c.report(&r)
	return r
}
