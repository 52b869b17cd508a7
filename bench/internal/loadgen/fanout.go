package loadgen

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"wsroom.dev/internal/debugmem"
)

// RoomsConfig is a many-rooms scenario: Rooms × PerRoom members, every one
// of them sending Rate messages per second to its room.
type RoomsConfig struct {
	Rooms, PerRoom int
	// Rate is the messages per second of each member.
	Rate float64
	// Warmup is sent at the same rate before the measured phase of
	// Duration. Sending stops at the end of the measured phase.
	Warmup, Duration time.Duration
	// Sources are the loopback addresses the members dial from, member i
	// from Sources[i % len]: each has its own ephemeral ports. Empty: the
	// system's choice (127.0.0.1).
	Sources []string
	// RoomPrefix names the rooms: RoomPrefix + "0", "1", … Default "r".
	RoomPrefix string
	// Mem: read the server's memory (/debug/mem and /proc) before the
	// first dial and after the drain, and check first that the machine
	// can hold the connections.
	Mem bool
	// InFlight bounds concurrent dials. Default 200.
	InFlight int
	// Senders is the number of goroutines writing the members' messages,
	// each its share of members in phase order. Default 16.
	Senders int
	// Settle bounds the wait for the join traffic to end; Quiet ends it
	// early when no frame arrived for that long. Defaults 60 s, 1 s.
	Settle, Quiet time.Duration
	// MaxLag is the send lag (p99: how late the members' writes started
	// against their schedule) past which the load generator has not kept
	// its schedule, and the run is not the load it claims: a problem.
	// Default 50 ms.
	MaxLag time.Duration
	// Drain bounds the wait for the last deliveries after the last send;
	// Stall ends it early when no frame arrived for that long. Defaults
	// 60 s, 5 s.
	Drain, Stall time.Duration
}

func (cfg RoomsConfig) withDefaults() RoomsConfig {
	if cfg.InFlight <= 0 {
		cfg.InFlight = 200
	}
	if cfg.Senders <= 0 {
		cfg.Senders = 16
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 60 * time.Second
	}
	if cfg.Quiet <= 0 {
		cfg.Quiet = time.Second
	}
	if cfg.Drain <= 0 {
		cfg.Drain = 60 * time.Second
	}
	if cfg.Stall <= 0 {
		cfg.Stall = 5 * time.Second
	}
	if cfg.MaxLag <= 0 {
		cfg.MaxLag = 50 * time.Millisecond
	}
	return cfg
}

// fanPlan is when every member sends, and what the readers need to
// classify deliveries. Its fields are set before crowd.recording is, and
// read-only after.
type fanPlan struct {
	period time.Duration
	phase  []time.Duration // per member, in [0, period)
	start  int64           // Unix ns: the first round starts
	t0, t1 int64           // Unix ns: the measured phase; sending stops at t1
	maxSeq int             // messages a member can send, at most
	words  int             // bitset words per sender
}

// fanRecv is what a member received from the others of its room; its
// reader owns it.
type fanRecv struct {
	next []int32  // per sender (local index): the highest sequence number seen + 1
	seen []uint64 // per sender: a bitset of sequence numbers
	lat  []int64  // latencies of the messages sent in the measured phase, ns
	win  int64    // deliveries that arrived within the measured phase
}

// fan-out counters, by the readers.
type fanCounts struct {
	dups      atomic.Int64 // a message of the same sender and number again
	reordered atomic.Int64 // a message after a later one of the same sender
	misrouted atomic.Int64 // a message from a member of another room
	own       atomic.Int64 // the member's own messages, sent back to it
}

// RunRooms runs a many-rooms scenario (rooms-*, scale-*).
//
// Every member joins its room; once the join traffic has settled, every
// member sends Rate messages per second, on a schedule of its own: member
// phases are spread evenly over one period, jittered and shuffled across
// rooms, so that the server sees a steady rate rather than bursts. Each
// text is "b:SEQ:UNIXNANO", SEQ counting the member's messages from 0. A
// member checks that it receives every other member's messages of its
// room exactly once and in the order each sender sent them: a repeat is a
// duplicate, a message after a later one of the same sender is
// reordered, a message from another room is misrouted, and what never
// arrives is lost. The server's copy of a member's own messages is not
// counted.
//
// Server CPU is read at the start and at the end of the measured phase
// (Duration, after Warmup); CPU per delivery divides it by the deliveries
// that arrived within the phase, as do deliveries/s. Latency percentiles
// are over every delivery of the messages sent within the phase. After the
// last send the readers get up to Drain (Stall without frames) for the
// rest; lost counts what did not arrive by then.
func RunRooms(ctx context.Context, t Target, cfg RoomsConfig) (r Result) {
	cfg = cfg.withDefaults()
	n := cfg.Rooms * cfg.PerRoom
	r.set("conns", float64(n))
	r.set("rooms", float64(cfg.Rooms))
	if n == 0 || cfg.Rate <= 0 || cfg.Duration <= 0 {
		r.Err = fmt.Sprintf("rooms: nothing to run (%d members, rate %v, duration %v)", n, cfg.Rate, cfg.Duration)
		return r
	}
	var mem0 debugmem.Report
	var rss0 uint64
	if cfg.Mem {
		l, err := readLimits(t.PID)
		if err == nil {
			err = l.check(n, len(cfg.Sources))
		}
		if err != nil {
			r.Err = err.Error()
			return r
		}
		if mem0, err = t.Mem(ctx); err != nil {
			r.Err = err.Error()
			return r
		}
		rss0, _ = procRSS(t.PID)
	}

	c := newCrowd(t, cfg.Rooms, cfg.PerRoom)
	defer c.close()
	if cfg.RoomPrefix != "" {
		c.prefix = cfg.RoomPrefix
	}
	if err := c.setSources(cfg.Sources); err != nil {
		r.Err = err.Error()
		return r
	}
	period := time.Duration(float64(time.Second) / cfg.Rate)
	plan := &fanPlan{
		period: period,
		phase:  spreadPhases(n, period),
		maxSeq: int(math.Ceil(float64(cfg.Warmup+cfg.Duration)/float64(period))) + 1,
	}
	plan.words = (plan.maxSeq + 63) / 64

	start := time.Now()
	c.dialAll(ctx, cfg.InFlight)
	r.set("dial_s", time.Since(start).Seconds())
	if !c.settle(ctx, cfg.Quiet, cfg.Settle) {
		in, pairs := c.missing()
		r.problem("join traffic did not complete (%d not in, %d pairs unaware) after %.1fs", in, pairs, time.Since(start).Seconds())
	}
	r.set("settle_s", time.Since(start).Seconds())

	// The schedule starts a little ahead, so that every sender is ready.
	begin := time.Now().Add(20 * time.Millisecond)
	plan.start = begin.UnixNano()
	plan.t0 = begin.Add(cfg.Warmup).UnixNano()
	plan.t1 = begin.Add(cfg.Warmup + cfg.Duration).UnixNano()
	var fc fanCounts
	c.fan, c.fanCounts = plan, &fc
	c.recording.Store(true) // publishes plan and counters to the readers
	var senders sync.WaitGroup
	lags := make([][]int64, cfg.Senders)
	for s := range cfg.Senders {
		senders.Add(1)
		go func() {
			defer senders.Done()
			lags[s] = c.sendShard(ctx, s, cfg.Senders)
		}()
	}

	// The measured phase, on the schedule's clock.
	var cpu0, cpu1 time.Duration
	var cpuOK bool
	var self0, self1 time.Duration
	var mach0, mach1 machineSample
	var back0, back1 time.Duration
	var backOK bool
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
			cpuOK = ok0 && ok1
			backOK = bok0 && bok1
		}
	}
	senders.Wait()
	lastSend := time.Now()
	c.lastFrame.Store(lastSend.UnixNano()) // the stall counts from here
	why := c.drain(ctx, cfg.Drain, cfg.Stall)
	drained := time.Since(lastSend)

	var rss1 uint64
	var mem1 debugmem.Report
	var memErr error
	if cfg.Mem {
		rss1, _ = procRSS(t.PID)
		mem1, memErr = t.Mem(ctx)
	}
	c.recording.Store(false)
	c.close()

	// Every reader has returned: their state is ours.
	expected, delivered, win := c.fanTotals()
	var lat []int64
	for i := range c.members {
		if fr := c.members[i].fr; fr != nil {
			lat = append(lat, fr.lat...)
		}
	}
	slices.Sort(lat)
	var allLags []int64
	for _, l := range lags {
		allLags = append(allLags, l...)
	}
	slices.Sort(allLags)
	sent := 0
	for i := range c.members {
		sent += c.members[i].sent
	}

	window := time.Duration(plan.t1 - plan.t0)
	r.set("members", float64(n))
	r.set("rate", cfg.Rate)
	r.set("sent", float64(sent))
	r.set("expected", float64(expected))
	r.set("delivered", float64(delivered))
	r.set("loss", float64(expected-delivered))
	r.set("duplicates", float64(fc.dups.Load()))
	r.set("reordered", float64(fc.reordered.Load()))
	r.set("misrouted", float64(fc.misrouted.Load()))
	r.set("own", float64(fc.own.Load()))
	r.set("window_deliveries", float64(win))
	r.set("deliveries_per_s", float64(win)/window.Seconds())
	r.set("drain_s", drained.Seconds())
	if len(lat) > 0 {
		r.set("p50_ms", ms(percentile(lat, 0.50)))
		r.set("p99_ms", ms(percentile(lat, 0.99)))
		r.set("max_ms", ms(lat[len(lat)-1]))
	}
	if len(allLags) > 0 {
		r.set("send_lag_p99_ms", ms(percentile(allLags, 0.99)))
		r.set("send_lag_max_ms", ms(allLags[len(allLags)-1]))
	}
	if cpuOK {
		cpu := cpu1 - cpu0
		r.set("cpu_s", cpu.Seconds())
		r.set("cpu_cores", cpu.Seconds()/window.Seconds())
		if win > 0 {
			r.set("cpu_us_per_delivery", float64(cpu.Nanoseconds())/1e3/float64(win))
		}
		r.set("client_cpu_s", (self1 - self0).Seconds())
		r.set("client_cores", (self1-self0).Seconds()/window.Seconds())
		r.otherCores(mach0, mach1, window, cpu, self1-self0)
		if backOK {
			back := back1 - back0
			r.set("backend_cores", back.Seconds()/window.Seconds())
			if win > 0 {
				r.set("backend_us_per_delivery", float64(back.Nanoseconds())/1e3/float64(win))
			}
		}
	} else if t.CPU != nil && ctx.Err() == nil {
		r.problem("server CPU not measured")
	}
	if cfg.Mem {
		fn := float64(n)
		if rss0 > 0 && rss1 > 0 {
			r.set("proc_rss_per_conn", (float64(rss1)-float64(rss0))/fn)
			r.set("proc_rss_after", float64(rss1))
		}
		if memErr != nil {
			r.problem("memory after the phase: %v", memErr)
		} else {
			r.set("rss_per_conn", (float64(mem1.RSS)-float64(mem0.RSS))/fn)
			r.set("heap_stack_per_conn", (float64(mem1.HeapInuse+mem1.StackInuse)-float64(mem0.HeapInuse+mem0.StackInuse))/fn)
			r.set("goroutines_per_conn", float64(mem1.Goroutines-mem0.Goroutines)/fn)
			r.set("rss_after", float64(mem1.RSS))
		}
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
	if n := c.sendErrs.Load(); n > 0 {
		r.problem("%d members could not send (%s)", n, c.sendErrText())
	}
	if len(allLags) > 0 {
		if p := percentile(allLags, 0.99); p > int64(cfg.MaxLag) {
			r.problem("the load generator fell behind its schedule: send lag p99 %.1f ms", ms(p))
		}
	}
	c.report(&r)
	return r
}

// spreadPhases returns n phases spread evenly over period, each jittered
// within its slot, in shuffled order: member i starts at phase[i].
func spreadPhases(n int, period time.Duration) []time.Duration {
	phase := make([]time.Duration, n)
	slot := float64(period) / float64(n)
	for k, i := range rand.Perm(n) {
		phase[i] = time.Duration((float64(k) + rand.Float64()) * slot)
	}
	return phase
}

// sleepUntil waits until t and reports true, or false if ctx ends first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sendShard writes the messages of shard s of shards: the members that
// are in, whose rank by phase is s modulo shards, each at start + phase +
// k × period until t1. It returns how late each write started (ns).
func (c *crowd) sendShard(ctx context.Context, s, shards int) []int64 {
	plan := c.fan
	var mine []int
	for i := range c.members {
		m := &c.members[i]
		if m.conn != nil && !m.ended.Load() && m.isIn() {
			mine = append(mine, i)
		}
	}
	slices.SortFunc(mine, func(a, b int) int { return cmp.Compare(plan.phase[a], plan.phase[b]) })
	var own []int
	for k := s; k < len(mine); k += shards {
		own = append(own, mine[k])
	}
	lags := make([]int64, 0, len(own)*plan.maxSeq)
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	buf := make([]byte, 0, 96)
	for round := int64(0); ; round++ {
		base := plan.start + round*int64(plan.period)
		if base >= plan.t1 {
			return lags
		}
		for _, i := range own {
			due := base + int64(plan.phase[i])
			if due >= plan.t1 {
				break // the rest of the round is later still
			}
			if d := time.Duration(due - time.Now().UnixNano()); d > 100*time.Microsecond {
				timer.Reset(d)
				select {
				case <-timer.C:
				case <-ctx.Done():
					return lags
				}
			}
			m := &c.members[i]
			if m.sendFailed || m.sent >= plan.maxSeq {
				continue
			}
			now := time.Now().UnixNano()
			lags = append(lags, now-due)
			buf = append(buf[:0], `{"type":"message","text":"`...)
			buf = appendText(buf, m.sent, now)
			buf = append(buf, `"}`...)
			if err := m.conn.WriteText(buf); err != nil {
				m.sendFailed = true
				c.sendFailed(err)
				continue
			}
			m.sent++
		}
	}
}

// sendFailed counts a member whose write failed.
func (c *crowd) sendFailed(err error) {
	c.sendErrs.Add(1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sendErrs1) < 3 {
		c.sendErrs1 = append(c.sendErrs1, shortErr(err))
	}
}

func (c *crowd) sendErrText() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return strings.Join(c.sendErrs1, "; ")
}

// fanDeliver records a message from member from (its name) with text.
func (m *member) fanDeliver(from, text []byte, now int64) {
	c, plan := m.c, m.c.fan
	seq, sent, ok := parseText(text)
	j, ok2 := parseName(from)
	if !ok || !ok2 || seq >= plan.maxSeq {
		return
	}
	if j == m.idx {
		c.fanCounts.own.Add(1)
		if m.ackCh != nil && int64(seq) >= m.acked.Load() {
			m.acked.Store(int64(seq) + 1)
			select {
			case m.ackCh <- struct{}{}:
			default:
			}
		}
		return
	}
	l := m.localOf(j)
	if l < 0 {
		c.fanCounts.misrouted.Add(1)
		return
	}
	fr := m.fr
	if fr == nil {
		fr = &fanRecv{next: make([]int32, c.perRoom), seen: make([]uint64, c.perRoom*plan.words)}
		m.fr = fr
	}
	w, bit := l*plan.words+seq/64, uint64(1)<<(seq%64)
	if fr.seen[w]&bit != 0 {
		c.fanCounts.dups.Add(1)
		return
	}
	fr.seen[w] |= bit
	if int32(seq) < fr.next[l] {
		c.fanCounts.reordered.Add(1)
	} else {
		fr.next[l] = int32(seq) + 1
	}
	if sent >= plan.t0 {
		fr.lat = append(fr.lat, now-sent)
	}
	if now >= plan.t0 && now < plan.t1 {
		fr.win++
	}
	m.lastRecv = now
	m.fanN.Add(1)
}

// roomSent returns, per room, the messages its members sent. It is final
// once the senders have returned.
func (c *crowd) roomSent() []int {
	sent := make([]int, len(c.members)/c.perRoom)
	for i := range c.members {
		sent[i/c.perRoom] += c.members[i].sent
	}
	return sent
}

// drain waits until every member still connected has every message of
// the others of its room, for at most timeout, or until no frame arrived
// for stall. It returns why it gave up, or "".
func (c *crowd) drain(ctx context.Context, timeout, stall time.Duration) string {
	sent := c.roomSent()
	done := func() bool {
		for i := range c.members {
			m := &c.members[i]
			if m.conn == nil || m.ended.Load() {
				continue
			}
			if m.fanN.Load() < int64(sent[i/c.perRoom]-m.sent) {
				return false
			}
		}
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !done() {
		select {
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
	return ""
}

// fanTotals returns the deliveries expected (every message sent to every
// other member of its room, whether that member stayed or not), those
// that arrived, and those that arrived within the measured phase. Call it
// once the readers have returned.
func (c *crowd) fanTotals() (expected, delivered, win int64) {
	sent := c.roomSent()
	for i := range c.members {
		m := &c.members[i]
		expected += int64(sent[i/c.perRoom] - m.sent)
		delivered += m.fanN.Load()
		if m.fr != nil {
			win += m.fr.win
		}
	}
	return expected, delivered, win
}
