package loadgen

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
)

// AckedConfig is one room whose senders send in a closed loop: each sends
// its next message as soon as the server has sent its last one back to
// it, so the room carries as many messages as the server acknowledges.
type AckedConfig struct {
	// Members of the room; the first Senders of them send.
	Members, Senders int
	// Warmup is sent before the measured phase of Duration; sending stops
	// at its end.
	Warmup, Duration time.Duration
	// MaxMessages bounds each sender's messages. Default 100,000.
	MaxMessages int
	// RoomPrefix names the room: RoomPrefix + "0". Default "r".
	RoomPrefix string
	// InFlight bounds concurrent dials. Default 200.
	InFlight int
	// Settle bounds the wait for the join traffic to end; Quiet ends it
	// early when no frame arrived for that long. Defaults 60 s, 1 s.
	Settle, Quiet time.Duration
	// AckTimeout is how long a sender waits for its message to come back
	// before it stops, a problem. Default 10 s.
	AckTimeout time.Duration
	// Drain bounds the wait for the last deliveries after the last send;
	// Stall ends it early when no frame arrived for that long. Defaults
	// 60 s, 5 s.
	Drain, Stall time.Duration
}

func (cfg AckedConfig) withDefaults() AckedConfig {
	if cfg.MaxMessages <= 0 {
		cfg.MaxMessages = 100_000
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 60 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = time.Second
	}
	if cfg.AckTimeout <= 0 {
		cfg.AckTimeout = 10 * time.Second
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 60 * time.Second
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 5 * time.Second
	}
	return cfg
}

// RunAcked runs a closed-loop room.
//
// Every member joins the room; once the join traffic has settled, each
// sender writes "b:SEQ:UNIXNANO" (SEQ from 0), waits until the server has
// sent that message back to it, and writes the next, through Warmup and
// Duration. Every member checks, as in RunRooms, that it gets every other
// member's messages once and in the order each sent them.
//
// messages_per_s counts the messages whose sender got them back within
// the measured phase; ack_p50_ms and ack_p99_ms are the time from a write
// to its return, of the messages written in it; p50_ms and p99_ms the
// latency of their deliveries to the other members. Server and backend
// CPU are read at the start and end of the measured phase.
func RunAcked(ctx context.Context, t Target, cfg AckedConfig) (r Result) {
	cfg = cfg.withDefaults()
	if cfg.Members <= 0 || cfg.Senders <= 0 || cfg.Senders > cfg.Members || cfg.Duration <= 0 {
		r.Err = fmt.Sprintf("acked: nothing to run (%d members, %d senders, duration %v)", cfg.Members, cfg.Senders, cfg.Duration)
		return r
	}
	c := newCrowd(t, 1, cfg.Members)
	defer c.close()
	if cfg.RoomPrefix != "" {
		c.prefix = cfg.RoomPrefix
	}
	plan := &fanPlan{period: cfg.Duration, maxSeq: cfg.MaxMessages}
	plan.words = (plan.maxSeq + 63) / 64

	start := time.Now()
	c.dialAll(ctx, cfg.InFlight)
	if !c.settle(ctx, cfg.Quiet, cfg.Settle) {
		in, pairs := c.missing()
		r.problem("join traffic did not complete (%d not in, %d pairs unaware) after %.1fs", in, pairs, time.Since(start).Seconds())
	}
	r.set("settle_s", time.Since(start).Seconds())

	var senders []*member
	for i := range cfg.Senders {
		m := &c.members[i]
		if m.conn != nil && !m.ended.Load() && m.isIn() {
			m.ackCh = make(chan struct{}, 1)
			senders = append(senders, m)
		}
	}
	if len(senders) < cfg.Senders {
		r.problem("%d of %d senders are not in", cfg.Senders-len(senders), cfg.Senders)
	}
	begin := time.Now().Add(20 * time.Millisecond)
	plan.start = begin.UnixNano()
	plan.t0 = begin.Add(cfg.Warmup).UnixNano()
	plan.t1 = begin.Add(cfg.Warmup + cfg.Duration).UnixNano()
	var fc fanCounts
	c.fan, c.fanCounts = plan, &fc
	c.recording.Store(true) // publishes the plan, the counters and ackCh

	type loop struct {
		lat []int64 // ack latencies, ns
		win int64   // acks within the measured phase
		err error
	}
	loops := make([]loop, len(senders))
	var wg sync.WaitGroup
	for k, m := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := &loops[k]
			l.lat, l.win, l.err = c.ackLoop(ctx, m, cfg.AckTimeout)
		}()
	}

	var cpu0, cpu1, back0, back1, self0, self1 time.Duration
	var mach0, mach1 machineSample
	var cpuOK, backOK bool
	if sleepUntil(ctx, time.Unix(0, plan.t0)) {
		var ok0, ok1, bok0, bok1 bool
		cpu0, ok0 = t.cpu()
		back0, bok0 = t.backendCPU()
		self0 = selfCPU()
		mach0 = sampleMachine()
		if sleepUntil(ctx, time.Unix(0, plan.t1)) {
			cpu1, ok1 = t.cpu()
			back1, bok1 = t.backendCPU()
			self1 = selfCPU()
			mach1 = sampleMachine()
			cpuOK, backOK = ok0 && ok1, bok0 && bok1
		}
	}
	wg.Wait()
	lastSend := time.Now()
	c.lastFrame.Store(lastSend.UnixNano()) // the stall counts from here
	why := c.drain(ctx, cfg.Drain, cfg.Stall)
	drained := time.Since(lastSend)
	c.recording.Store(false)
	c.close()

	// Every reader and sender has returned: their state is ours.
	expected, delivered, win := c.fanTotals()
	var lat, acks []int64
	var acked int64
	for i := range c.members {
		if fr := c.members[i].fr; fr != nil {
			lat = append(lat, fr.lat...)
		}
	}
	sent := 0
	for i := range c.members {
		sent += c.members[i].sent
	}
	for _, l := range loops {
		acks = append(acks, l.lat...)
		acked += l.win
		if l.err != nil {
			r.problem("a sender stopped: %v", l.err)
		}
	}
	slices.Sort(lat)
	slices.Sort(acks)

	window := time.Duration(plan.t1 - plan.t0)
	r.set("members", float64(cfg.Members))
	r.set("senders", float64(len(senders)))
	r.set("sent", float64(sent))
	r.set("acked", float64(acked))
	r.set("messages_per_s", float64(acked)/window.Seconds())
	r.set("expected", float64(expected))
	r.set("delivered", float64(delivered))
	r.set("loss", float64(expected-delivered))
	r.set("duplicates", float64(fc.dups.Load()))
	r.set("reordered", float64(fc.reordered.Load()))
	r.set("misrouted", float64(fc.misrouted.Load()))
	r.set("window_deliveries", float64(win))
	r.set("deliveries_per_s", float64(win)/window.Seconds())
	r.set("drain_s", drained.Seconds())
	if len(acks) > 0 {
		r.set("ack_p50_ms", ms(percentile(acks, 0.50)))
		r.set("ack_p99_ms", ms(percentile(acks, 0.99)))
	}
	if len(lat) > 0 {
		r.set("p50_ms", ms(percentile(lat, 0.50)))
		r.set("p99_ms", ms(percentile(lat, 0.99)))
		r.set("max_ms", ms(lat[len(lat)-1]))
	}
	if cpuOK {
		cpu, self := cpu1-cpu0, self1-self0
		r.set("cpu_s", cpu.Seconds())
		r.set("cpu_cores", cpu.Seconds()/window.Seconds())
		if acked > 0 {
			r.set("cpu_us_per_message", float64(cpu.Nanoseconds())/1e3/float64(acked))
		}
		r.set("client_cpu_s", self.Seconds())
		r.set("client_cores", self.Seconds()/window.Seconds())
		var back time.Duration
		if backOK {
			back = back1 - back0
			r.set("backend_cores", back.Seconds()/window.Seconds())
			if acked > 0 {
				r.set("backend_us_per_message", float64(back.Nanoseconds())/1e3/float64(acked))
			}
		}
		// Others: neither the server, nor its backends, nor this process.
		r.otherCores(mach0, mach1, window, cpu+back, self)
	} else if t.CPU != nil && ctx.Err() == nil {
		r.problem("server CPU not measured")
	}
	if why != "" {
		r.problem("%s after the last send (%.1fs)", why, drained.Seconds())
	}
	if loss := expected - delivered; loss > 0 {
		r.problem("loss: %d of %d deliveries", loss, expected)
	}
	if d := fc.dups.Load(); d > 0 {
		r.problem("%d duplicate deliveries", d)
	}
	if d := fc.reordered.Load(); d > 0 {
		r.problem("%d deliveries out of their sender's order", d)
	}
	if d := fc.misrouted.Load(); d > 0 {
		r.problem("%d deliveries from another room", d)
	}
	c.report(&r)
	return r
}

// ackLoop is a closed-loop sender: from the plan's start until its t1, it
// writes m's next message and waits for it to come back. It returns the
// time each message written within the measured phase took to come back,
// and how many came back within it.
func (c *crowd) ackLoop(ctx context.Context, m *member, timeout time.Duration) (lat []int64, win int64, err error) {
	plan := c.fan
	if !sleepUntil(ctx, time.Unix(0, plan.start)) {
		return nil, 0, ctx.Err()
	}
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	buf := make([]byte, 0, 96)
	for m.sent < plan.maxSeq {
		sent := time.Now().UnixNano()
		if sent >= plan.t1 {
			return lat, win, nil
		}
		seq := m.sent
		buf = append(buf[:0], `{"type":"message","text":"`...)
		buf = appendText(buf, seq, sent)
		buf = append(buf, `"}`...)
		if err := m.conn.WriteText(buf); err != nil {
			m.sendFailed = true
			return lat, win, fmt.Errorf("message %d: %w", seq, err)
		}
		m.sent++
		timer.Reset(timeout)
		for m.acked.Load() <= int64(seq) {
			if m.ended.Load() {
				return lat, win, fmt.Errorf("the connection ended waiting for message %d", seq)
			}
			select {
			case <-m.ackCh:
			case <-timer.C:
				return lat, win, fmt.Errorf("message %d did not come back within %v", seq, timeout)
			case <-ctx.Done():
				return lat, win, ctx.Err()
			}
		}
		back := time.Now().UnixNano()
		if sent >= plan.t0 {
			lat = append(lat, back-sent)
		}
		if back >= plan.t0 && back < plan.t1 {
			win++
		}
	}
	return lat, win, nil
}

// PGRoomConfig is the pg-room scenario: one room in closed loop (Room) on
// one server, with the in-process store and with PostgreSQL's, the broker
// in process for both.
type PGRoomConfig struct {
	Store backend
	Room  AckedConfig
}

// RunPGRoom runs each variant on a fresh server: mem (memory store, the
// reference) and pg (PostgreSQL store). Its metrics are RunAcked's,
// prefixed with the variant's key, and pg_ratio: pg's messages/s ÷ mem's.
func RunPGRoom(ctx context.Context, t Target, cfg PGRoomConfig) (r Result) {
	if t.Launch == nil {
		r.Err = "pg-room starts its own servers: the runner gave no Launch"
		return r
	}
	if !checkBackends(ctx, &r, cfg.Store) {
		return r
	}
	id := runID()
	for _, v := range pgRoomVariants(cfg.Store) {
		if ctx.Err() != nil {
			r.problem("canceled")
			return r
		}
		rc := cfg.Room
		rc.RoomPrefix = fmt.Sprintf("%s-%s-", id, v.Key)
		got, err := runVariant(ctx, t, v, func(t Target) Result { return RunAcked(ctx, t, rc) })
		if err != nil {
			r.problem("%s: %v", v.Label, err)
			continue
		}
		for k, x := range got.Metrics {
			r.set(v.Key+"_"+k, x)
		}
		if got.Err != "" {
			r.problem("%s: %s", v.Label, got.Err)
		}
		for _, p := range got.Problems {
			r.problem("%s: %s", v.Label, p)
		}
	}
	if pg, mem := r.Metrics["pg_messages_per_s"], r.Metrics["mem_messages_per_s"]; pg > 0 && mem > 0 {
		r.set("pg_ratio", pg/mem)
	}
	return r
}

func pgRoomVariants(store backend) []clusterVariant {
	return []clusterVariant{
		{Variant: Variant{Key: "mem", Label: "memory store"}, servers: 1},
		{Variant: Variant{Key: "pg", Label: "PostgreSQL store"}, servers: 1, flags: []string{"-store", store.url}, comms: []string{store.comm}},
	}
}

// PGRoomScenario is the pg-room scenario.
func PGRoomScenario(cfg PGRoomConfig) Scenario {
	var vs []Variant
	for _, v := range pgRoomVariants(cfg.Store) {
		vs = append(vs, v.Variant)
	}
	rc := cfg.Room.withDefaults()
	return Scenario{
		Name: "pg-room",
		About: fmt.Sprintf("wsroom only: one server, the broker in process; one room of %d members, %d of which send in a closed loop (each message as soon as the server sent the last one back), %v warm-up, %v measured; every member checks it gets every other member's messages once and in order. With the PostgreSQL store, and with the memory store for reference, each on a fresh server",
			rc.Members, rc.Senders, rc.Warmup, rc.Duration),
		Columns: []Column{
			{Key: "messages_per_s", Header: "messages/s", Format: Rate, Better: +1, Ratio: true},
			{Key: "ratio", Header: "÷ memory store", Format: Fraction, Better: +1},
			{Key: "ack_p50_ms", Header: "ack p50", Format: Millis, Better: -1},
			{Key: "ack_p99_ms", Header: "ack p99", Format: Millis, Better: -1},
			{Key: "p99_ms", Header: "delivery p99", Format: Millis, Better: -1},
			{Key: "deliveries_per_s", Header: "deliveries/s", Format: Rate, Better: +1},
			{Key: "cpu_us_per_message", Header: "server CPU/message", Format: Micros, Better: -1},
			{Key: "backend_us_per_message", Header: "PostgreSQL CPU/message", Format: Micros, Better: -1},
			{Key: "cpu_cores", Header: "server cores", Format: Fraction, Better: -1},
			{Key: "backend_cores", Header: "PostgreSQL cores", Format: Fraction, Better: 0},
			{Key: "client_cores", Header: "client cores", Format: Fraction, Better: 0},
			{Key: "other_cores", Header: "others' cores", Format: Fraction, Better: 0},
			{Key: "loss", Header: "lost", Format: Count, Better: -1},
			{Key: "duplicates", Header: "dups", Format: Count, Better: -1},
			{Key: "reordered", Header: "reordered", Format: Count, Better: -1},
			{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
		},
		Headline:   "pg_messages_per_s",
		Variants:   vs,
		WsroomOnly: true,
		OwnServers: true,
		Run:        func(ctx context.Context, t Target) Result { return RunPGRoom(ctx, t, cfg) },
	}
}
