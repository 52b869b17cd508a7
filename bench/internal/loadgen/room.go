package loadgen

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"wsroom.dev/bench/internal/wsclient"
)

// dialer is shared by every client: a 4 KiB read buffer per connection
// (40 MiB for ten thousand); larger frames are read straight into the
// message buffer.
var dialer = &wsclient.Dialer{ReadBufferSize: 4096}

// crowd is a set of members spread over rooms: member i is named "u<i>"
// and is in room "<prefix><i/perRoom>" (prefix "r" unless set before the
// dials). Each open member has a reader goroutine, which owns the member's
// counters until the crowd is closed.
type crowd struct {
	target   Target
	members  []member
	perRoom  int
	prefix   string     // of the room names
	trackers []*tracker // per room; nil for Bare and with inOnly
	dialers  []*wsclient.Dialer

	// deferJoin: wsroom members do not send their join frame when they
	// connect (joinAll sends it later). inOnly: members only tell when
	// they are in (their welcome, or their own join event), without
	// parsing what else the room says; the pair tracking is off.
	deferJoin bool
	inOnly    bool
	nIn       atomic.Int64
	nOut      atomic.Int64  // inOnly: members that ended or failed before they were in
	lastIn    atomic.Int64  // Unix ns of the last member getting in
	everyIn   chan struct{} // inOnly: closed when every member is in or lost
	inOnce    sync.Once

	// fan is the plan of a scenario where every member sends (rooms,
	// scale), and what its readers count; nil when one member sends.
	fan       *fanPlan
	fanCounts *fanCounts
	sendErrs  atomic.Int64
	sendErrs1 []string // the first few, guarded by mu

	// Messages, set before the first send.
	messages  int          // per member expected
	recording atomic.Bool  // deliveries are counted
	expected  int64        // deliveries expected in all
	delivered atomic.Int64 // unique deliveries
	dups      atomic.Int64
	reordered atomic.Int64  // deliveries after a later message
	allIn     chan struct{} // closed when every member is finished
	allOnce   sync.Once
	// A member is finished once it has every message (doneMembers) or
	// once it can get no more: it failed to open or its connection ended
	// (lostMembers).
	doneMembers atomic.Int64
	lostMembers atomic.Int64

	// Joins.
	roomsDone  atomic.Int64
	completeAt atomic.Int64 // Unix ns of the last room's completion
	complete   chan struct{}
	frames     atomic.Int64 // text and binary messages received
	framesDone atomic.Int64 // frames when the join traffic completed
	lastFrame  atomic.Int64 // Unix ns of the last frame anyone received

	live      atomic.Bool // members ending now are dropped members
	opened    atomic.Int64
	dialErrs  atomic.Int64
	dropped   atomic.Int64
	errEvts   atomic.Int64
	wg        sync.WaitGroup
	closeOnce sync.Once

	mu      sync.Mutex
	reasons map[string]int // why members dropped or failed to dial
	errs    []string       // error events, the first few
}

// member is one client. Its fields after conn belong to its reader, but
// for those marked otherwise.
type member struct {
	c     *crowd
	idx   int
	local int // index in its room
	conn  *wsclient.Conn

	ended atomic.Bool  // the reader has returned
	in    atomic.Bool  // inOnly: the member is in
	fanN  atomic.Int64 // fan: unique deliveries from the other members
	fr    *fanRecv     // fan: what the member received, per sender

	// Owned by the member's sender (fan).
	sent       int
	sendFailed bool

	// A closed-loop sender's (RunAcked): its own messages the server sent
	// back, the highest number + 1, written by its reader, which signals
	// each on ackCh. ackCh is set before the crowd records.
	acked atomic.Int64
	ackCh chan struct{}

	seen     []uint64 // bitset of received message sequence numbers
	next     int      // the highest sequence number received + 1
	got      int      // unique messages received
	lat      []int64  // delivery latencies, ns
	lastRecv int64    // Unix ns of the last delivery
}

func newCrowd(t Target, rooms, perRoom int) *crowd {
	n := rooms * perRoom
	c := &crowd{
		target:   t,
		members:  make([]member, n),
		perRoom:  perRoom,
		prefix:   "r",
		complete: make(chan struct{}),
		allIn:    make(chan struct{}),
		everyIn:  make(chan struct{}),
		reasons:  make(map[string]int),
		dialers:  []*wsclient.Dialer{dialer},
	}
	for i := range c.members {
		c.members[i] = member{c: c, idx: i, local: i % perRoom}
	}
	if t.Protocol != Bare {
		c.trackers = make([]*tracker, rooms)
		for r := range c.trackers {
			c.trackers[r] = newTracker(perRoom, c.roomComplete)
		}
	}
	c.live.Store(true)
	return c
}

func (c *crowd) roomComplete(at time.Time) {
	for {
		old := c.completeAt.Load()
		if at.UnixNano() <= old || c.completeAt.CompareAndSwap(old, at.UnixNano()) {
			break
		}
	}
	if c.roomsDone.Add(1) == int64(len(c.trackers)) {
		c.framesDone.Store(c.frames.Load())
		close(c.complete)
	}
}

func (c *crowd) reason(why string) {
	c.mu.Lock()
	c.reasons[why]++
	c.mu.Unlock()
}

// reasonList returns the reasons with their counts, most frequent first.
func (c *crowd) reasonList() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := slices.SortedFunc(maps.Keys(c.reasons), func(a, b string) int { return c.reasons[b] - c.reasons[a] })
	s := ""
	for i, k := range keys {
		if i == 3 {
			s += fmt.Sprintf("; %d more kinds", len(keys)-3)
			break
		}
		if i > 0 {
			s += "; "
		}
		s += fmt.Sprintf("%d× %s", c.reasons[k], k)
	}
	return s
}

// newInOnlyCrowd returns a crowd of one room whose members only tell when
// they are in: for a storm, where tracking who told whom would cost the
// client more than the server.
func newInOnlyCrowd(t Target, members int) *crowd {
	c := newCrowd(t, 1, members)
	c.trackers, c.inOnly = nil, true
	return c
}

// setSources makes member i dial from sources[i % len(sources)]: each
// loopback source address has its own ephemeral ports towards the server.
func (c *crowd) setSources(sources []string) error {
	if len(sources) == 0 {
		return nil
	}
	c.dialers = c.dialers[:0]
	for _, s := range sources {
		ip := net.ParseIP(s)
		if ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("source address %q: not a loopback address", s)
		}
		c.dialers = append(c.dialers, &wsclient.Dialer{
			ReadBufferSize: dialer.ReadBufferSize,
			NetDialer:      &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}},
		})
	}
	return nil
}

// dialAll opens every member's connection, at most inFlight at a time,
// and starts its reader.
func (c *crowd) dialAll(ctx context.Context, inFlight int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(inFlight, len(c.members)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= len(c.members) {
					return
				}
				c.members[i].open(ctx)
			}
		}()
	}
	wg.Wait()
	c.lastFrame.Store(time.Now().UnixNano()) // quiet time counts from here
}

func (m *member) name() string { return "u" + strconv.Itoa(m.idx) }

func (m *member) tracker() *tracker {
	if m.c.trackers == nil {
		return nil
	}
	return m.c.trackers[m.idx/m.c.perRoom]
}

// open dials and joins. A failure counts as a dropped member.
func (m *member) open(ctx context.Context) {
	c := m.c
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	path := fmt.Sprintf("/chat/%s%d?name=%s", c.prefix, m.idx/c.perRoom, m.name())
	proto := ""
	if c.target.Protocol == Wsroom {
		proto = Subprotocol
	}
	conn, err := c.dialers[m.idx%len(c.dialers)].Dial(ctx, c.target.memberURL(m.idx, path), proto)
	if err != nil {
		c.dialErrs.Add(1)
		c.lose()
		c.out()
		c.reason("dial: " + shortErr(err))
		return
	}
	if c.target.Protocol == Wsroom && !c.deferJoin {
		if err := conn.WriteText(m.joinFrame()); err != nil {
			conn.CloseNow()
			c.dialErrs.Add(1)
			c.lose()
			c.out()
			c.reason("join: " + shortErr(err))
			return
		}
	}
	m.conn = conn
	c.opened.Add(1)
	c.wg.Add(1)
	go m.read()
}

// joinFrame is the member's wsroom join frame.
func (m *member) joinFrame() []byte {
	return []byte(`{"type":"join","name":"` + m.name() + `"}`)
}

// read is the member's reader goroutine.
func (m *member) read() {
	c := m.c
	defer c.wg.Done()
	for {
		op, p, err := m.conn.ReadMessage()
		if err != nil {
			m.ended.Store(true)
			if c.recording.Load() && m.ackCh != nil {
				select { // wake its closed-loop sender
				case m.ackCh <- struct{}{}:
				default:
				}
			}
			if c.live.Load() {
				c.dropped.Add(1)
				c.reason(endReason(err))
				if c.messages == 0 || m.got < c.messages {
					c.lose()
				}
				if c.inOnly && !m.in.Load() {
					c.out()
				}
			}
			return
		}
		now := time.Now().UnixNano()
		c.lastFrame.Store(now)
		c.frames.Add(1)
		if op != wsclient.OpText {
			continue
		}
		for len(p) > 0 {
			var line []byte
			line, p = nextLine(p)
			switch {
			case len(line) == 0:
			case c.inOnly:
				m.handleIn(line, now)
			default:
				m.handle(line, now)
			}
		}
	}
}

// handle takes one event.
func (m *member) handle(line []byte, now int64) {
	c := m.c
	e, ok := parseEvent(line)
	if !ok {
		return
	}
	t := m.tracker()
	switch e.kind {
	case kindMessage:
		switch {
		case !c.recording.Load():
		case c.fan != nil:
			m.fanDeliver(e.from, e.text, now)
		default:
			m.deliver(e.text, now)
		}
	case kindJoin:
		if t == nil {
			return
		}
		j, ok := parseName(e.name)
		if !ok {
			return
		}
		if j == m.idx {
			if c.target.Protocol == Peer {
				t.markIn(m.local)
			}
			return
		}
		t.announced(m.local, m.localOf(j))
	case kindPresence:
		if t == nil {
			return
		}
		done := 0
		for _, name := range e.joined {
			if j, ok := parseName(name); ok && j != m.idx && t.announce(m.local, m.localOf(j)) {
				done++
			}
		}
		t.addDone(done)
	case kindWelcome:
		if t == nil {
			return
		}
		done := 0
		for _, name := range e.members {
			if j, ok := parseName(name); ok && j != m.idx && t.welcome(m.local, m.localOf(j)) {
				done++
			}
		}
		t.addDone(done)
		t.markIn(m.local)
	case kindError:
		if c.errEvts.Add(1) <= 3 {
			c.mu.Lock()
			c.errs = append(c.errs, e.errText)
			c.mu.Unlock()
		}
	}
}

// handleIn takes one event of an inOnly crowd: a welcome (wsroom) or the
// member's own join event (peers) puts it in; the rest is only counted as
// frames, except errors.
func (m *member) handleIn(line []byte, now int64) {
	typ, ok := stringField(line, keyType)
	if !ok {
		m.handle(line, now) // errors and the unusual go the slow way
		return
	}
	switch string(typ) {
	case "welcome":
		m.markIn(now)
	case "join":
		if m.c.target.Protocol != Peer {
			return
		}
		if name, ok := stringField(line, keyName); ok {
			if j, ok := parseName(name); ok && j == m.idx {
				m.markIn(now)
			}
		}
	case "error":
		m.handle(line, now)
	}
}

// markIn records, once, that an inOnly member is in.
func (m *member) markIn(now int64) {
	c := m.c
	if !m.in.CompareAndSwap(false, true) {
		return
	}
	for {
		old := c.lastIn.Load()
		if now <= old || c.lastIn.CompareAndSwap(old, now) {
			break
		}
	}
	c.nIn.Add(1)
	c.checkEveryIn()
}

// out records, for an inOnly crowd, a member that will never be in.
func (c *crowd) out() {
	if c.inOnly {
		c.nOut.Add(1)
		c.checkEveryIn()
	}
}

// checkEveryIn closes everyIn once every member is in or out.
func (c *crowd) checkEveryIn() {
	if c.nIn.Load()+c.nOut.Load() >= int64(len(c.members)) {
		c.inOnce.Do(func() { close(c.everyIn) })
	}
}

// localOf returns member j's index in m's room, or -1 if j is in another.
func (m *member) localOf(j int) int {
	base := m.idx - m.local
	if j < base || j >= base+m.c.perRoom {
		return -1
	}
	return j - base
}

// deliver records a message delivery.
func (m *member) deliver(text []byte, now int64) {
	c := m.c
	seq, sent, ok := parseText(text)
	if !ok || seq < 0 || seq >= c.messages {
		return
	}
	if m.seen == nil {
		m.seen = make([]uint64, (c.messages+63)/64)
		m.lat = make([]int64, 0, c.messages)
	}
	bit := uint64(1) << (seq % 64)
	if m.seen[seq/64]&bit != 0 {
		c.dups.Add(1)
		return
	}
	m.seen[seq/64] |= bit
	if seq < m.next {
		c.reordered.Add(1)
	} else {
		m.next = seq + 1
	}
	m.lat = append(m.lat, now-sent)
	m.lastRecv = now
	m.got++
	c.delivered.Add(1)
	if m.got == c.messages {
		c.doneMembers.Add(1)
		c.checkFinished()
	}
}

// lose records a member that can receive nothing more.
func (c *crowd) lose() {
	c.lostMembers.Add(1)
	c.checkFinished()
}

// checkFinished closes allIn once messages are being sent and every member
// is finished.
func (c *crowd) checkFinished() {
	if c.recording.Load() && c.doneMembers.Load()+c.lostMembers.Load() >= int64(len(c.members)) {
		c.allOnce.Do(func() { close(c.allIn) })
	}
}

// sender returns the first member that is in and still connected, or nil.
func (c *crowd) sender() *member {
	for i := range c.members {
		m := &c.members[i]
		if m.conn == nil || m.ended.Load() {
			continue
		}
		if m.isIn() {
			return m
		}
	}
	return nil
}

// isIn reports whether the member is in: it has its welcome or its own
// join event (bare: it is connected).
func (m *member) isIn() bool {
	if m.c.inOnly {
		return m.in.Load()
	}
	t := m.tracker()
	return t == nil || t.isIn(m.local)
}

// settle waits until the join traffic is complete, or no frame arrived for
// quiet, or timeout. It reports whether the traffic completed.
func (c *crowd) settle(ctx context.Context, quiet, timeout time.Duration) (completed bool) {
	if c.trackers == nil {
		return true
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-c.complete:
			return true
		case <-ctx.Done():
			return false
		case <-deadline.C:
			return false
		case <-tick.C:
			if time.Since(time.Unix(0, c.lastFrame.Load())) >= quiet {
				return false
			}
		}
	}
}

// missing returns how many members are not in and how many pairs of
// members have not heard of each other, over all rooms.
func (c *crowd) missing() (members, pairs int64) {
	for _, t := range c.trackers {
		m, p := t.missing()
		members += m
		pairs += p
	}
	return members, pairs
}

// close ends the run: drops stop counting, the target is stopped, every
// connection closes and every reader has returned.
func (c *crowd) close() {
	c.closeOnce.Do(c.doClose)
}

func (c *crowd) doClose() {
	c.live.Store(false)
	c.recording.Store(false)
	c.target.stop()
	for i := range c.members {
		if conn := c.members[i].conn; conn != nil {
			conn.CloseNow()
		}
	}
	c.wg.Wait()
}

// report adds the member problems to r.
func (c *crowd) report(r *Result) {
	dropped := c.dialErrs.Load() + c.dropped.Load()
	r.set("dropped", float64(dropped))
	if dropped > 0 {
		r.problem("%d members dropped or failed (%s)", dropped, c.reasonList())
	}
	if n := c.errEvts.Load(); n > 0 {
		c.mu.Lock()
		r.problem("%d error events (%v)", n, c.errs)
		c.mu.Unlock()
	}
}

// endReason describes why a reader ended.
func endReason(err error) string {
	var ce *wsclient.CloseError
	if errors.As(err, &ce) {
		switch {
		case ce.Code == wsclient.StatusNoStatusRcvd:
			return "closed by server, empty close frame"
		case ce.Reason == "":
			return fmt.Sprintf("closed by server %d", ce.Code)
		}
		return fmt.Sprintf("closed by server %d %s", ce.Code, ce.Reason)
	}
	return shortErr(err)
}

// shortErr trims an error to its last, most specific part.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 80 {
		s = "…" + s[len(s)-80:]
	}
	return s
}
