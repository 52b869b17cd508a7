package wsroom

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// hub is a room's live state on this server: the members connected here and
// the subscription that brings the room's publications to them. It exists
// while at least one member of this server is joining or in the room.
type hub struct {
	srv  *Server
	name string
	refs int // members joining or joined; guarded by srv.mu

	subOnce sync.Once
	subErr  error
	unsub   func()

	// sendMu orders this server's publications to the room with in-process
	// backends, so that message IDs and the order of every member's stream
	// agree (publish.go). It is never held across a network call.
	sendMu sync.Mutex

	mu      sync.RWMutex
	members []*member
	byName  map[string]*member // the newest member of each name
	plain   int                // members speaking the plain-text protocol

	// The highest message ID delivered here, and the last ones delivered,
	// so that a catch-up from the store after a broker outage delivers
	// each message once. Until a message is delivered, maxID is where the
	// first welcome given here ended. synced says maxID is known: a
	// message was delivered, or a welcome read the history. Guarded by
	// seenMu.
	seenMu sync.Mutex
	maxID  uint64
	synced bool
	seen   [64]uint64
	seenAt int
	catch  sync.WaitGroup // catch-ups in flight

	presence presence

	// The room's member names as this server's members were told them,
	// kept only when the broker can lose publications (a networked one),
	// so that after an outage their lists are set right (reconcile).
	// touched, while the store is read, records what publications said
	// meanwhile of each name (true: present). Guarded by knownMu.
	knownMu sync.Mutex
	known   map[string]struct{} // nil: not kept
	touched map[string]bool

	// Flow control: how many members here are behind (outbox.go), and a
	// channel closed, and replaced, each time one catches up.
	behind  atomic.Int32
	drainMu sync.Mutex
	drained chan struct{}
}

func newHub(s *Server, name string) *hub {
	h := &hub{srv: s, name: name, byName: make(map[string]*member), drained: make(chan struct{})}
	h.presence.h = h
	return h
}

// setBehind counts a member falling behind or catching up.
func (h *hub) setBehind(behind bool) {
	if behind {
		h.behind.Add(1)
		return
	}
	h.behind.Add(-1)
	h.drainMu.Lock()
	close(h.drained)
	h.drained = make(chan struct{})
	h.drainMu.Unlock()
}

// congested reports whether most of the room's members here are behind:
// then the publishers, not the readers, are too fast.
func (h *hub) congested() bool {
	b := int(h.behind.Load())
	return b > 0 && b*2 > h.size()
}

// throttle holds a publisher of this server while the room is congested,
// at most for d: its reading goroutine stops reading, so the burst slows
// to what the room takes instead of overflowing everyone's queue. A member
// that falls behind a room that keeps up is still closed as too slow when
// its queue overflows.
func (h *hub) throttle(ctx context.Context, d time.Duration) {
	if !h.congested() {
		return
	}
	h.srv.stats.throttled.Add(1)
	t := time.NewTimer(d)
	defer t.Stop()
	for h.congested() {
		h.drainMu.Lock()
		ch := h.drained
		h.drainMu.Unlock()
		if !h.congested() {
			return
		}
		select {
		case <-ch:
		case <-t.C:
			return
		case <-ctx.Done():
			return
		}
	}
}

// subscribe starts the room's subscription, once, for the hub's life: its
// context is the server's, not the request's of the member that opened it.
func (h *hub) subscribe() error {
	h.subOnce.Do(func() {
		ctx, cancel := context.WithTimeout(h.srv.ctx, h.srv.backendTimeout())
		defer cancel()
		h.unsub, h.subErr = h.srv.opts.Broker.Subscribe(ctx, h.name, h.receive)
		if h.subErr == nil && !h.srv.memBroker {
			h.seedKnown(ctx)
		}
	})
	return h.subErr
}

// seedKnown reads the room's member names, which its members will be told
// of from here on.
func (h *hub) seedKnown(ctx context.Context) {
	h.knownMu.Lock()
	h.touched = map[string]bool{}
	h.knownMu.Unlock()
	names, _, err := h.srv.opts.Store.Members(ctx, h.name, "", 0)
	h.knownMu.Lock()
	defer h.knownMu.Unlock()
	touched := h.touched
	h.touched = nil
	if err != nil {
		h.srv.log.Warn("wsroom: member list unavailable: it is not set right after a broker outage", "room", h.name, "err", err)
		return
	}
	h.known = make(map[string]struct{}, len(names))
	for _, n := range names {
		h.known[n] = struct{}{}
	}
	for n, present := range touched {
		h.setKnown(n, present)
	}
}

// setKnown records that name is (present) or is not a member. Called with
// knownMu held.
func (h *hub) setKnown(name string, present bool) {
	if h.touched != nil {
		h.touched[name] = present
	}
	if h.known == nil {
		return
	}
	if present {
		h.known[name] = struct{}{}
	} else {
		delete(h.known, name)
	}
}

// learn records what a publication says of the room's members, and
// returns what of it this server's members are still to hear: nil for a
// departure they were told of already. That happens after a broker outage,
// when reconcile has announced a departure from the store and the
// departing member's server publishes it again once it can (the cluster
// outage test caught alice hearing dave leave twice). Arrivals always
// pass: the names are read from the store, which lists a newcomer before
// its join is published.
func (h *hub) learn(p *Publication) *Publication {
	h.knownMu.Lock()
	defer h.knownMu.Unlock()
	if h.known == nil && h.touched == nil {
		return p
	}
	switch p.Type {
	case PubJoin:
		h.setKnown(p.Name, true)
	case PubLeave:
		told := h.told(p.Name)
		h.setKnown(p.Name, false)
		if !told {
			return nil
		}
	case PubPresence:
		for _, n := range p.Joined {
			h.setKnown(n, true)
		}
		var left []string
		for _, n := range p.Left {
			if h.told(n) {
				left = append(left, n)
			}
			h.setKnown(n, false)
		}
		if len(left) < len(p.Left) {
			if len(left)+len(p.Joined) == 0 {
				return nil
			}
			q := *p
			q.Left = left
			p = &q
		}
	}
	return p
}

// told reports whether this server's members may have been told that name
// is a member: true unless the names are kept and name is not among them.
// Called with knownMu held.
func (h *hub) told(name string) bool {
	if h.known == nil {
		return true
	}
	_, ok := h.known[name]
	return ok
}

// reconcile sets this server's members right after a broker outage, in
// which arrivals and departures may have been lost: one presence event
// with the differences between the names they were told of and the
// store's. Names that publications changed while the store was read are
// left out: what those said stands.
func (h *hub) reconcile(ctx context.Context) {
	h.knownMu.Lock()
	if h.known == nil {
		h.knownMu.Unlock()
		return
	}
	h.touched = map[string]bool{}
	h.knownMu.Unlock()
	names, _, err := h.srv.opts.Store.Members(ctx, h.name, "", 0)
	h.knownMu.Lock()
	touched := h.touched
	h.touched = nil
	if err != nil {
		h.knownMu.Unlock()
		h.srv.log.Warn("wsroom: member list unavailable after a broker outage", "room", h.name, "err", err)
		return
	}
	now := make(map[string]struct{}, len(names))
	var joined, left []string
	for _, n := range names {
		now[n] = struct{}{}
		if _, ok := h.known[n]; !ok {
			if _, changed := touched[n]; !changed {
				joined = append(joined, n)
				h.known[n] = struct{}{}
			}
		}
	}
	for n := range h.known {
		if _, ok := now[n]; !ok {
			if _, changed := touched[n]; !changed {
				left = append(left, n)
			}
		}
	}
	for _, n := range left {
		delete(h.known, n)
	}
	h.knownMu.Unlock()
	if len(joined)+len(left) == 0 {
		return
	}
	slices.Sort(joined)
	slices.Sort(left)
	h.deliver(&Publication{Room: h.name, Type: PubPresence, Joined: joined, Left: left}, &route{})
}

// close ends the hub once its last member is gone: the pending presence is
// sent, the timer stopped and waited for, the subscription cancelled, and
// a catch-up in flight waited for.
func (h *hub) close(ctx context.Context) {
	h.presence.close(ctx)
	if h.unsub != nil {
		h.unsub()
	}
	h.catch.Wait()
}

// add adds a member that holds its name.
func (h *hub) add(m *member) {
	h.addPending(m)
	h.register(m)
}

// addPending adds a member that is about to reserve its name: it receives
// the room's events, but To and removals do not reach it by name yet.
func (h *hub) addPending(m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m.idx = len(h.members)
	h.members = append(h.members, m)
	if m.plain {
		h.plain++
	}
}

// register makes a member that now holds its name reachable by it.
func (h *hub) register(m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.byName[m.name] = m
}

func (h *hub) remove(m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	last := h.members[len(h.members)-1]
	h.members[m.idx] = last
	last.idx = m.idx
	h.members[len(h.members)-1] = nil
	h.members = h.members[:len(h.members)-1]
	if h.byName[m.name] == m {
		delete(h.byName, m.name)
		for _, o := range h.members { // an older connection of the name, if any
			if o.name == m.name {
				h.byName[o.name] = o
			}
		}
	}
	if m.plain {
		h.plain--
	}
}

func (h *hub) size() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	return len(h.members)
}

// receive is the hub's Broker subscription.
func (h *hub) receive(p *Publication) {
	switch p.Type {
	case PubPresence:
		if p.Origin == h.srv.id && h.srv.shuttingDown() {
			return // our own departures, for the other servers: ours are closing
		}
		if p = h.learn(p); p == nil {
			return
		}
	case PubRemove:
		h.removeMember(p)
		return
	case PubResync:
		h.catchUp()
		return
	case PubJoin, PubLeave:
		if p = h.learn(p); p == nil {
			return
		}
	case PubMessage:
		if id := p.Message.ID; id != 0 && !h.firstSight(id) {
			return
		}
	}
	h.deliver(p, &route{to: p.To, except: p.Except})
}

// removeMember closes the members a PubRemove names: every connection of
// the name, or only the one of p.Owner.
func (h *hub) removeMember(p *Publication) {
	code, reason := websocket.StatusPolicyViolation, ReasonRemoved
	if !p.Owner.IsZero() {
		code, reason = StatusReplaced, ReasonReplaced
	}
	h.mu.RLock()
	var victims []*member
	for _, m := range h.members {
		if m.name == p.Name && (p.Owner.IsZero() || m.res.Owner == p.Owner) {
			victims = append(victims, m)
		}
	}
	h.mu.RUnlock()
	for _, m := range victims {
		m.t.kill(reason, code, p.Reason, nil)
	}
}

// firstSight records a message ID delivered here and reports whether it is
// new. IDs mostly arrive in order: only one at or below the highest seen is
// looked up among the last ones.
func (h *hub) firstSight(id uint64) bool {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	h.synced = true
	if id <= h.maxID {
		for _, s := range h.seen {
			if s == id {
				return false
			}
		}
	} else {
		h.maxID = id
	}
	h.seen[h.seenAt] = id
	h.seenAt = (h.seenAt + 1) % len(h.seen)
	return true
}

// welcomed records that a member's welcome held the room's history up to
// the message ID floor (0: the room had none), so that a catch-up in a
// room where nothing was delivered here yet starts there. Only the first
// welcome counts, and only until a message is delivered: a later welcome
// may already hold messages that the broker lost for the earlier members.
func (h *hub) welcomed(floor uint64) {
	h.seenMu.Lock()
	defer h.seenMu.Unlock()
	if !h.synced {
		h.synced = true
		h.maxID = floor
	}
}

// catchUp delivers, after the broker may have lost publications, the
// messages the store holds above the highest ID delivered here (or held
// by the first welcome). It runs on a goroutine of its own, which close
// waits for: deliver must not block.
func (h *hub) catchUp() {
	h.seenMu.Lock()
	from, synced := h.maxID, h.synced
	h.seenMu.Unlock()
	h.catch.Add(1)
	go func() {
		defer h.catch.Done()
		ctx, cancel := context.WithTimeout(h.srv.ctx, h.srv.backendTimeout())
		defer cancel()
		h.reconcile(ctx) // arrivals first, then what they said
		if !synced {
			return // no welcome read the history (WelcomeHistory < 0, or the store failed)
		}
		msgs, _, err := h.srv.opts.Store.After(ctx, h.name, from, h.srv.opts.ResumeLimit)
		if err != nil {
			h.srv.log.Warn("wsroom: catch-up after a broker outage failed", "room", h.name, "err", err)
			return
		}
		for _, m := range msgs {
			if h.firstSight(m.ID) {
				h.deliver(&Publication{Room: h.name, Type: PubMessage, Message: m}, &route{})
			}
		}
	}()
}

// deliver encodes p once and queues it for every local member on its
// route. It never blocks on a connection.
func (h *hub) deliver(p *Publication, r *route) {
	h.mu.RLock()
	defer h.mu.RUnlock()
	e := h.build(p)
	if e == nil {
		return
	}
	// In a small room, an event is written on this goroutine to each
	// member whose connection is idle: one system call each, no
	// hand-off. In a big one, it is queued for each member's writer, which
	// batches what piles up into one frame.
	direct := len(h.members) <= directMax
	n := 0
	if len(r.to) > 0 {
		for _, name := range r.to {
			if m := h.byName[name]; m != nil && h.admits(r, m, e) {
				send(m.t, e, direct)
				n++
			}
		}
	} else {
		for _, m := range h.members {
			if h.admits(r, m, e) {
				send(m.t, e, direct)
				n++
			}
		}
	}
	h.srv.stats.deliveries.Add(int64(n))
}

// directMax is the largest room whose events are written on the
// delivering goroutine (see deliver).
const directMax = 10

// directSender is the optional capability of a transport that writes an
// event on the caller's goroutine when its connection is idle.
type directSender interface {
	sendDirect(e *event)
}

func send(t transport, e *event, direct bool) {
	if direct {
		if d, ok := t.(directSender); ok {
			d.sendDirect(e)
			return
		}
	}
	t.send(e)
}

func (h *hub) admits(r *route, m *member, e *event) bool {
	if e.id != 0 && e.id <= m.welcomed.Load() {
		return false // its welcome held it
	}
	if len(r.except) > 0 && r.skips(m.name) {
		return false
	}
	return r.filter == nil || r.filter(MemberInfo{Room: h.name, Name: m.name, Plain: m.plain})
}

// build encodes a publication for the wire: JSON always, plain text when a
// plain member is here. Called with h.mu held.
func (h *hub) build(p *Publication) *event {
	text := h.srv.opts.Text
	plain := h.plain > 0
	e := &event{}
	line := func(s string) {
		if plain && s != "" {
			e.plain = append(e.plain, []byte(s))
		}
	}
	switch p.Type {
	case PubMessage:
		e.json = encodeMessage(p.Message)
		e.id = p.Message.ID
		if plain {
			line(text.Message(text.escapeMessage(p.Message)))
		}
	case PubJoin:
		e.json = encodeNamed("join", p.Name)
		if plain {
			line(text.Join(text.Escape(p.Name)))
		}
	case PubLeave:
		e.json = encodeNamed("leave", p.Name)
		if plain {
			line(text.Leave(text.Escape(p.Name)))
		}
	case PubPresence:
		e.json = encodePresence(p.Joined, p.Left)
		if plain {
			for _, l := range text.Presence(text.escapeAll(p.Joined), text.escapeAll(p.Left)) {
				line(l)
			}
		}
	case PubBinary:
		data := p.Data
		if data == nil {
			data = []byte{}
		}
		e.binary = data
	default:
		h.srv.log.Warn("wsroom: unknown publication type", "room", h.name, "type", p.Type)
		return nil
	}
	return e
}

// presenceTimeout bounds the publication of coalesced presence from a
// timer.
const presenceTimeout = 10 * time.Second
