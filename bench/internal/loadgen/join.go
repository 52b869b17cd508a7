package loadgen

import (
	"context"
	"time"
)

// JoinConfig is a join storm: Members join one room at once.
type JoinConfig struct {
	Members int
	// InFlight bounds concurrent dials. Default 200.
	InFlight int
	// Timeout bounds the run; Quiet ends it early when no frame arrived
	// for that long after the dials. Defaults 60 s, 5 s.
	Timeout, Quiet time.Duration
}

// RunJoin runs a join storm. The clock starts before the first dial and
// stops when the join traffic is complete: every member is in and knows
// of every member whose join completed after its own (see tracker). Server
// CPU is measured over the same span.
func RunJoin(ctx context.Context, t Target, cfg JoinConfig) (r Result) {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = 5 * time.Second
	}
	c := newCrowd(t, 1, cfg.Members)
	defer c.close()

	cpu0, cpuOK := t.cpu()
	self0 := selfCPU()
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	c.dialAll(ctx, cfg.InFlight)
	dialed := time.Since(start)
	completed := c.settle(ctx, cfg.Quiet, cfg.Timeout-dialed)
	end := time.Now()
	cpu1, cpu1OK := t.cpu()
	r.set("client_cpu_s", (selfCPU() - self0).Seconds())
	frames := c.frames.Load()
	if completed {
		end = time.Unix(0, c.completeAt.Load())
		frames = c.framesDone.Load()
	}
	c.close()

	r.set("members", float64(cfg.Members))
	r.set("dial_s", dialed.Seconds())
	if completed {
		r.set("join_s", end.Sub(start).Seconds())
	} else {
		r.set("gave_up_s", end.Sub(start).Seconds())
	}
	r.set("frames", float64(frames))
	if cpuOK && cpu1OK {
		r.set("cpu_s", (cpu1 - cpu0).Seconds())
	}
	if !completed {
		in, pairs := c.missing()
		r.set("not_in", float64(in))
		r.set("pairs_unaware", float64(pairs))
		r.problem("incomplete after %.1fs: %d members not in, %d pairs unaware of each other", end.Sub(start).Seconds(), in, pairs)
	}
	c.report(&r)
	return r
}
