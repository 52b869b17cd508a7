package wsroom

import (
	"context"
	"slices"
	"sync"
	"time"
)

// presence coalesces a big room's arrivals and departures on this server
// into one presence event per PresenceInterval, so that a join storm into a
// room of N members costs O(N) frames, not O(N²).
type presence struct {
	h *hub

	mu      sync.Mutex
	pending map[string]int8 // +1 joined, -1 left
	timer   *time.Timer
	closed  bool
	wg      sync.WaitGroup // a timer's flush in flight
}

// announce tells the room that name joined or left. In a big room, and
// during shutdown, the announcements are coalesced. A departure that
// cannot be published (the broker is down) is announced again at the
// lease's refresh; an arrival is not (its member may be gone by then).
func (h *hub) announce(ctx context.Context, typ, name string) {
	s := h.srv
	if t := s.opts.PresenceThreshold; s.shuttingDown() || t > 0 && h.size() >= t {
		if h.presence.add(typ, name) {
			return
		}
	}
	p := &Publication{Room: h.name, Type: typ, Name: name, Origin: s.id}
	if typ == PubJoin {
		p.Except = []string{name} // its welcome says it all
	}
	unlock := s.sequence(h)
	defer unlock()
	h.presence.flush(ctx)
	ctx, cancel := s.backendCtx(ctx)
	defer cancel()
	if err := s.opts.Broker.Publish(ctx, p); err != nil {
		s.log.Warn("wsroom: announce failed", "room", h.name, "type", typ, "name", name, "err", err)
		if typ == PubLeave {
			s.lease.announceLater(h.name, name)
		}
	}
}

// add records an arrival or a departure to coalesce; false when the hub is
// closing and the announcement must go out at once.
func (p *presence) add(typ, name string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	if p.pending == nil {
		p.pending = make(map[string]int8)
	}
	d := int8(1)
	if typ == PubLeave {
		d = -1
	}
	if p.pending[name]+d == 0 {
		delete(p.pending, name)
	} else {
		p.pending[name] += d
	}
	if p.timer == nil {
		p.timer = time.AfterFunc(p.h.srv.opts.PresenceInterval, p.tick)
	}
	return true
}

func (p *presence) tick() {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.wg.Add(1)
	p.mu.Unlock()
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(p.h.srv.ctx), presenceTimeout)
	defer cancel()
	unlock := p.h.srv.sequence(p.h)
	defer unlock()
	p.flush(ctx)
}

// flush publishes the coalesced presence, if any. A publication of this
// server to the room calls it first, so that nobody speaks before its
// arrival is told.
func (p *presence) flush(ctx context.Context) {
	p.mu.Lock()
	pending := p.pending
	p.pending = nil
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
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
	s := p.h.srv
	pub := &Publication{Room: p.h.name, Type: PubPresence, Joined: joined, Left: left, Origin: s.id}
	ctx, cancel := s.backendCtx(ctx)
	defer cancel()
	if err := s.opts.Broker.Publish(ctx, pub); err != nil {
		s.log.Warn("wsroom: presence failed", "room", p.h.name, "err", err)
		s.lease.announceLater(p.h.name, left...)
	}
}

// close sends what is pending and stops the timer, waiting for a flush in
// flight.
func (p *presence) close(ctx context.Context) {
	unlock := p.h.srv.sequence(p.h)
	p.flush(ctx)
	unlock()
	p.mu.Lock()
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
		p.timer = nil
	}
	p.mu.Unlock()
	p.wg.Wait()
}
