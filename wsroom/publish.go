package wsroom

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Publishing: a message goes to the store (which gives it its ID), then to
// the broker, which brings it to the members of the room on every server,
// this one included.
//
// No lock is held across a call to the store or the broker, so a slow
// backend delays only the messages that wait for it, and the publishers of
// a room do not queue behind each other's round trips. Order: a member's
// messages reach everyone in the order it sent them (its reading goroutine
// publishes them one after another, and a broker keeps one publisher's
// order); the messages of different members reach everyone in one order,
// the broker's. With the in-process MemoryStore and MemoryBroker, where no
// call leaves the process, this server's publications to a room are
// sequenced under the room's lock, so that order is also the order of
// message IDs.

// sequence orders this server's publications to the room h when the
// backends are in-process; it returns the function that ends the
// sequenced section.
func (s *Server) sequence(h *hub) func() {
	if !s.inProcess || h == nil {
		return func() {}
	}
	h.sendMu.Lock()
	return h.sendMu.Unlock
}

// backendTimeout is the bound on one call to the store or the broker.
func (s *Server) backendTimeout() time.Duration { return s.opts.BackendTimeout }

// backendCtx bounds a call to the store or the broker by BackendTimeout.
// In-process backends need no bound, and get none (it would cost a timer
// per message).
func (s *Server) backendCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	if s.inProcess {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, s.opts.BackendTimeout)
}

// startPublication starts a publication of this server to the room: in sequence, and
// after the coalesced presence. A filtered publication is delivered here,
// to this server's members only, and done is true.
func (s *Server) startPublication(ctx context.Context, p *Publication, rt *route) (unlock func(), done bool) {
	h := s.lookup(p.Room)
	unlock = s.sequence(h)
	if h != nil {
		h.presence.flush(ctx)
	}
	if rt.filter != nil {
		if h != nil {
			h.deliver(p, rt)
		}
		return unlock, true
	}
	return unlock, false
}

// publishMessage stores m (unless it is addressed to some members only) and
// publishes it.
func (s *Server) publishMessage(ctx context.Context, room string, m Message, rt *route) (Message, error) {
	unlock, done := s.startPublication(ctx, &Publication{Room: room, Type: PubMessage, Message: m}, rt)
	defer unlock()
	if done {
		return m, nil
	}
	bctx, cancel := s.backendCtx(ctx)
	defer cancel()
	if len(rt.to) == 0 {
		var err error
		if m, err = s.opts.Store.Append(bctx, room, m); err != nil {
			return Message{}, fmt.Errorf("wsroom: store message in %q: %w", room, err)
		}
	}
	p := &Publication{Room: room, Type: PubMessage, Message: m, To: rt.to, Except: rt.except, Origin: s.id}
	if err := s.opts.Broker.Publish(bctx, p); err != nil {
		return m, fmt.Errorf("wsroom: publish to %q: %w", room, err)
	}
	return m, nil
}

// publish sends a publication that is not stored. A filtered one is
// delivered to this server's members only.
func (s *Server) publish(ctx context.Context, p *Publication, rt *route) error {
	unlock, done := s.startPublication(ctx, p, rt)
	defer unlock()
	if done {
		return nil
	}
	p.To, p.Except, p.Origin = rt.to, rt.except, s.id
	bctx, cancel := s.backendCtx(ctx)
	defer cancel()
	if err := s.opts.Broker.Publish(bctx, p); err != nil {
		return fmt.Errorf("wsroom: publish to %q: %w", p.Room, err)
	}
	return nil
}

// reserve reserves a member name for a connection of this server, under
// the server's lease. A lease found lost is renewed once.
func (s *Server) reserve(ctx context.Context, room, name, connID string, replace bool) (Reservation, Owner, error) {
	s.lease.start()
	for attempt := 0; ; attempt++ {
		res := Reservation{Room: room, Name: name, Owner: Owner{Server: s.lease.id(), Conn: connID}}
		bctx, cancel := s.backendCtx(ctx)
		replaced, err := s.opts.Store.Reserve(bctx, res, ReserveOptions{
			Max: max(s.opts.MaxMembers, 0), Lease: s.opts.LeaseTime, Replace: replace,
		})
		cancel()
		switch {
		case errors.Is(err, ErrLeaseExpired) && attempt == 0:
			s.lease.lost(res.Owner.Server)
			continue
		case err != nil && !errors.Is(err, ErrNameTaken) && !errors.Is(err, ErrRoomFull):
			// The store may have made the reservation before it failed:
			// release it, or it would live as long as the lease.
			s.lease.releaseLater(res)
		}
		return res, replaced, err
	}
}

// releaseName frees a member's name and reports whether its departure is
// due: not when the name was no longer the member's (a newer connection
// replaced it, or its lease was lost and the departure announced). A
// release that fails is retried with the lease's refresh.
func (s *Server) releaseName(ctx context.Context, res Reservation) (due bool) {
	bctx, cancel := s.backendCtx(ctx)
	defer cancel()
	err := s.opts.Store.Release(bctx, res)
	switch {
	case err == nil:
		return true
	case errors.Is(err, ErrNotMember):
		return false
	}
	s.log.Error("wsroom: release failed; retried at the next lease refresh", "room", res.Room, "name", res.Name, "err", err)
	s.lease.releaseLater(res)
	return true
}

// evict closes the connection, on whichever server, whose reservation of
// res.Name a newer one took over.
func (s *Server) evict(ctx context.Context, res Reservation, replaced Owner) {
	p := &Publication{Room: res.Room, Type: PubRemove, Name: res.Name, Owner: replaced, Reason: "replaced by a newer connection"}
	if err := s.publish(ctx, p, &route{}); err != nil {
		s.log.Warn("wsroom: could not close a replaced connection", "room", res.Room, "name", res.Name, "err", err)
	}
}
