package wsroom

import (
	"context"
	"slices"
	"sync"
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

	// sendMu orders this server's publications to the room, so that a
	// message ID and its place in every member's stream agree.
	sendMu sync.Mutex

	mu      sync.RWMutex
	members []*member
	byName  map[string]*member
	plain   int // members speaking the plain-text protocol

	pmu     sync.Mutex
	pending map[string]int8 // coalesced presence: +1 joined, -1 left
	ptimer  *time.Timer
	pclosed bool
	pwg     sync.WaitGroup // presence flush in flight
}

func newHub(s *Server, name string) *hub {
	return &hub{srv: s, name: name, byName: make(map[string]*member)}
}

// subscribe starts the room's subscription, once.
func (h *hub) subscribe(ctx context.Context) error {
	h.subOnce.Do(func() {
		h.unsub, h.subErr = h.srv.opts.Broker.Subscribe(ctx, h.name, h.receive)
	})
	return h.subErr
}

// close ends the hub once its last member is gone: the pending presence is
// sent, the timer stopped and waited for, the subscription cancelled.
func (h *hub) close(ctx context.Context) {
	h.sendMu.Lock()
	h.flushPresenceLocked(ctx)
	h.sendMu.Unlock()
	h.pmu.Lock()
	h.pclosed = true
	if h.ptimer != nil {
		h.ptimer.Stop()
		h.ptimer = nil
	}
	h.pmu.Unlock()
	h.pwg.Wait()
	if h.unsub != nil {
		h.unsub()
	}
}

func (h *hub) add(m *member) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m.idx = len(h.members)
	h.members = append(h.members, m)
	h.byName[m.name] = m
	if m.plain {
		h.plain++
	}
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
	if p.Origin == h.srv.id && p.Type == PubPresence && h.srv.shuttingDown() {
		return // our own departures, for the other servers: ours are closing
	}
	if p.Type == PubRemove {
		h.mu.RLock()
		m := h.byName[p.Name]
		h.mu.RUnlock()
		if m != nil {
			m.kill(ReasonRemoved, websocket.StatusPolicyViolation, p.Reason, nil)
		}
		return
	}
	h.deliver(p, &route{to: p.To, except: p.Except})
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
	n := 0
	if len(r.to) > 0 {
		for _, name := range r.to {
			if m := h.byName[name]; m != nil && h.admits(r, m) {
				m.enqueue(e)
				n++
			}
		}
	} else {
		for _, m := range h.members {
			if h.admits(r, m) {
				m.enqueue(e)
				n++
			}
		}
	}
	h.srv.stats.deliveries.Add(int64(n))
}

func (h *hub) admits(r *route, m *member) bool {
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
		line(text.Message(p.Message))
	case PubJoin:
		e.json = encodeNamed("join", p.Name)
		line(text.Join(p.Name))
	case PubLeave:
		e.json = encodeNamed("leave", p.Name)
		line(text.Leave(p.Name))
	case PubPresence:
		e.json = encodePresence(p.Joined, p.Left)
		if plain {
			for _, l := range text.Presence(p.Joined, p.Left) {
				line(l)
			}
		}
	case PubBinary:
		if p.Data == nil {
			p.Data = []byte{}
		}
		e.binary = p.Data
	default:
		h.srv.log.Warn("wsroom: unknown publication type", "room", h.name, "type", p.Type)
		return nil
	}
	return e
}

// announce tells the room that name joined or left. In a big room, and
// during shutdown, the announcements are coalesced into one presence event
// per PresenceInterval (or when the hub closes).
func (h *hub) announce(ctx context.Context, typ, name string) {
	t := h.srv.opts.PresenceThreshold
	if h.srv.shuttingDown() || t > 0 && h.size() >= t {
		h.pmu.Lock()
		if !h.pclosed {
			if h.pending == nil {
				h.pending = make(map[string]int8)
			}
			d := int8(1)
			if typ == PubLeave {
				d = -1
			}
			if h.pending[name]+d == 0 {
				delete(h.pending, name)
			} else {
				h.pending[name] += d
			}
			if h.ptimer == nil {
				h.ptimer = time.AfterFunc(h.srv.opts.PresenceInterval, h.presenceTick)
			}
			h.pmu.Unlock()
			return
		}
		h.pmu.Unlock()
	}
	p := &Publication{Room: h.name, Type: typ, Name: name, Origin: h.srv.id}
	if typ == PubJoin {
		p.Except = []string{name} // its welcome says it all
	}
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	h.flushPresenceLocked(ctx)
	if err := h.srv.opts.Broker.Publish(ctx, p); err != nil {
		h.srv.log.Warn("wsroom: announce failed", "room", h.name, "type", typ, "name", name, "err", err)
	}
}

func (h *hub) presenceTick() {
	h.pmu.Lock()
	if h.pclosed {
		h.pmu.Unlock()
		return
	}
	h.pwg.Add(1)
	h.pmu.Unlock()
	defer h.pwg.Done()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h.sendMu.Lock()
	defer h.sendMu.Unlock()
	h.flushPresenceLocked(ctx)
}

// flushPresenceLocked publishes the coalesced presence, if any. Called with
// sendMu held, before any other publication, so that nobody speaks before
// its arrival is told.
func (h *hub) flushPresenceLocked(ctx context.Context) {
	h.pmu.Lock()
	pending := h.pending
	h.pending = nil
	if h.ptimer != nil {
		h.ptimer.Stop()
		h.ptimer = nil
	}
	h.pmu.Unlock()
	if len(pending) == 0 {
		return
	}
	var joined, left []string
	for name, d := range pending {
		if d > 0 {
			joined = append(joined, name)
		} else {
			left = append(left, name)
		}
	}
	slices.Sort(joined)
	slices.Sort(left)
	p := &Publication{Room: h.name, Type: PubPresence, Joined: joined, Left: left, Origin: h.srv.id}
	if err := h.srv.opts.Broker.Publish(ctx, p); err != nil {
		h.srv.log.Warn("wsroom: presence failed", "room", h.name, "err", err)
	}
}
