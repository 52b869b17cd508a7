package loadgen

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// StormConfig is a join storm with memory: Members join one room at once.
type StormConfig struct {
	Members int
	// InFlight bounds concurrent dials. Default 200.
	InFlight int
	// Joiners is the number of goroutines writing wsroom's join frames.
	// Default 16.
	Joiners int
	// Timeout bounds the wait for every member to be in; Stall ends it
	// early when no frame arrived for that long. Defaults 60 s, 5 s.
	Timeout, Stall time.Duration
	// Quiet is how long without frames ends the join traffic after every
	// member is in, QuietMax bounds that wait. Defaults 1 s, 30 s.
	Quiet, QuietMax time.Duration
}

func (cfg StormConfig) withDefaults() StormConfig {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.Joiners <= 0 {
		cfg.Joiners = 16
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 60 * time.Second
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 5 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = time.Second
	}
	if cfg.QuietMax <= 0 {
		cfg.QuietMax = 30 * time.Second
	}
	return cfg
}

// RunJoinStorm runs a join storm and measures what members cost.
//
// The server's memory is read (/debug/mem, which collects garbage first,
// and VmRSS from /proc) before the first dial. wsroom's members then
// connect without joining — the subprotocol is offered, no join frame is
// sent — and the memory is read again: the cost of a connected, unjoined
// member. Then every member sends its join frame at once (Joiners
// goroutines), and the clock runs from the first join frame until the last
// member has its welcome. Peers join a connection as soon as it opens, so
// for them there is no unjoined phase: the clock runs from the first dial
// until the last member has its own join event.
//
// After every member is in, the join traffic (welcomes, presence or join
// events) runs until no frame arrives for Quiet (at most QuietMax), and
// the memory is read a third time: the cost of a joined member. Members
// only look for their own welcome or join event; what else they receive
// is counted as frames, not checked.
func RunJoinStorm(ctx context.Context, t Target, cfg StormConfig) (r Result) {
	cfg = cfg.withDefaults()
	n := cfg.Members
	fn := float64(n)
	r.set("members", fn)
	l, err := readLimits(t.PID)
	if err == nil {
		err = l.check(n, 0)
	}
	if err != nil {
		r.Err = err.Error()
		return r
	}
	mem0, err := t.Mem(ctx)
	if err != nil {
		r.Err = err.Error()
		return r
	}
	rss0, _ := procRSS(t.PID)

	c := newInOnlyCrowd(t, n)
	c.deferJoin = t.Protocol == Wsroom
	defer c.close()
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout+cfg.QuietMax+2*time.Minute)
	defer cancel()

	cpuStart, cpuStartOK := t.cpu()
	selfStart := selfCPU()
	machStart := sampleMachine()
	var mach0 machineSample
	var self0 time.Duration
	dialStart := time.Now()
	c.dialAll(ctx, cfg.InFlight)
	var start time.Time // the joins start
	var cpu0 time.Duration
	cpu0OK := false
	if c.deferJoin {
		connect := time.Since(dialStart)
		r.set("connect_s", connect.Seconds())
		if cpu, ok := t.cpu(); ok && cpuStartOK {
			r.set("connect_cpu_s", (cpu - cpuStart).Seconds())
		}
		open := float64(c.opened.Load() - c.dropped.Load())
		r.set("unjoined_open", open)
		rssA, _ := procRSS(t.PID)
		memA, err := t.Mem(ctx)
		if err != nil {
			r.Err = err.Error()
			c.report(&r)
			return r
		}
		r.set("rss_per_unjoined", (float64(memA.RSS)-float64(mem0.RSS))/fn)
		r.set("heap_stack_per_unjoined", (float64(memA.HeapInuse+memA.StackInuse)-float64(mem0.HeapInuse+mem0.StackInuse))/fn)
		r.set("goroutines_per_unjoined", float64(memA.Goroutines-mem0.Goroutines)/fn)
		if rss0 > 0 && rssA > 0 {
			r.set("proc_rss_per_unjoined", (float64(rssA)-float64(rss0))/fn)
		}
		cpu0, cpu0OK = t.cpu()
		mach0, self0 = sampleMachine(), selfCPU()
		start = time.Now()
		c.lastFrame.Store(start.UnixNano())
		c.joinAll(cfg.Joiners)
		r.set("join_frames_s", time.Since(start).Seconds())
	} else {
		start, cpu0, cpu0OK = dialStart, cpuStart, cpuStartOK
		mach0, self0 = machStart, selfStart
	}

	allIn := c.waitEveryIn(ctx, cfg.Timeout-time.Since(start), cfg.Stall)
	inAt := time.Now()
	if allIn {
		inAt = time.Unix(0, c.lastIn.Load())
	}
	cpu1, cpu1OK := t.cpu()
	mach1, self1 := sampleMachine(), selfCPU()
	if cpu0OK && cpu1OK {
		r.otherCores(mach0, mach1, time.Since(start), cpu1-cpu0, self1-self0)
		r.set("cpu_s", (cpu1 - cpu0).Seconds())
		if cpuStartOK {
			r.set("cpu_total_s", (cpu1 - cpuStart).Seconds())
		}
	}
	in := c.nIn.Load()
	r.set("in", float64(in))
	if allIn && in == int64(n) {
		r.set("join_s", inAt.Sub(start).Seconds())
		r.set("total_s", inAt.Sub(start).Seconds()+r.Metrics["connect_s"])
	} else {
		r.problem("%d of %d members not in after %.1fs", int64(n)-in, n, time.Since(start).Seconds())
	}
	framesIn := c.frames.Load()

	quietStart := time.Now()
	if !waitQuiet(ctx, &c.lastFrame, cfg.Quiet, cfg.QuietMax) {
		after := "the last member was in"
		if in < int64(n) {
			after = "the wait for the members ended"
		}
		r.problem("join traffic still running %v after %s", cfg.QuietMax, after)
	}
	r.set("settle_s", time.Since(quietStart).Seconds())
	r.set("client_cpu_s", (selfCPU() - selfStart).Seconds())
	r.set("frames_in", float64(framesIn))
	r.set("frames", float64(c.frames.Load()))
	rssB, _ := procRSS(t.PID)
	memB, err := t.Mem(ctx)
	if err != nil {
		r.problem("memory after the joins: %v", err)
	} else {
		r.set("rss_per_member", (float64(memB.RSS)-float64(mem0.RSS))/fn)
		r.set("heap_stack_per_member", (float64(memB.HeapInuse+memB.StackInuse)-float64(mem0.HeapInuse+mem0.StackInuse))/fn)
		r.set("goroutines_per_member", float64(memB.Goroutines-mem0.Goroutines)/fn)
		r.set("rss_after", float64(memB.RSS))
		if rss0 > 0 && rssB > 0 {
			r.set("proc_rss_per_member", (float64(rssB)-float64(rss0))/fn)
		}
		if u, ok := r.Metrics["rss_per_unjoined"]; ok && u > 0 {
			r.set("rss_joined_ratio", r.Metrics["rss_per_member"]/u)
		}
		if u, ok := r.Metrics["proc_rss_per_unjoined"]; ok && u > 0 {
			if j, ok := r.Metrics["proc_rss_per_member"]; ok {
				r.set("proc_rss_joined_ratio", j/u)
			}
		}
	}
	c.close()
	c.report(&r)
	return r
}

// joinAll sends every open member's join frame, from joiners goroutines
// at once.
func (c *crowd) joinAll(joiners int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(joiners, len(c.members)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(c.members) {
					return
				}
				m := &c.members[i]
				if m.conn == nil {
					continue
				}
				if err := m.conn.WriteText(m.joinFrame()); err != nil {
					// The reader sees the broken connection too, and
					// counts the member as dropped.
					c.reason("join: " + shortErr(err))
				}
			}
		}()
	}
	wg.Wait()
}

// waitEveryIn waits until every member of an inOnly crowd is in or out,
// for at most timeout, or until no frame arrived for stall. It reports
// whether it did not give up.
func (c *crowd) waitEveryIn(ctx context.Context, timeout, stall time.Duration) bool {
	deadline := time.NewTimer(max(timeout, 0))
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.everyIn:
			return true
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
			if time.Since(time.Unix(0, c.lastFrame.Load())) >= stall {
				return false
			}
		}
	}
}

// waitQuiet waits until last (Unix ns) is quiet old, for at most limit.
// It reports whether it got quiet.
func waitQuiet(ctx context.Context, last *atomic.Int64, quiet, limit time.Duration) bool {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		if time.Since(time.Unix(0, last.Load())) >= quiet {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
		}
	}
}
