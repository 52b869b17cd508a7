package wsroom

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Room is a handle on one room of a Server: the server side of the room's
// API, and an http.Handler that serves the chat endpoint for this room
// whatever the route. A Room holds no state of its own; it is cheap to
// create and safe for concurrent use.
type Room struct {
	s    *Server
	name string
}

var _ http.Handler = (*Room)(nil)

// Name returns the room's name.
func (r *Room) Name() string { return r.name }

// ServeHTTP serves the chat endpoint for this room. It returns when the
// connection ends.
func (r *Room) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.s.serveChat(w, req, r.name)
}

func (r *Room) check(op string) error {
	if err := checkName(r.name, maxRoomLength); err != nil {
		return fmt.Errorf("wsroom: %s %q: %w", op, r.name, err)
	}
	if r.s.shuttingDown() {
		return fmt.Errorf("wsroom: %s %q: %w", op, r.name, ErrShutdown)
	}
	return nil
}

// Broadcast sends a text message to the room's members on every server and
// returns it as stored, with its ID. m.From may name a member or be empty
// for a message from the server; m.Time defaults to now. Options narrow the
// recipients; a message sent To or Filtered to some members is not kept in
// the history (and has no ID).
//
// Broadcast never waits for a member's connection: it returns once the
// message is stored and queued for every member.
func (r *Room) Broadcast(ctx context.Context, m Message, opts ...BroadcastOption) (Message, error) {
	if err := r.check("broadcast"); err != nil {
		return Message{}, err
	}
	if m.Text == "" {
		return Message{}, fmt.Errorf("wsroom: broadcast to %q: empty text", r.name)
	}
	if m.Time.IsZero() {
		m.Time = time.Now()
	}
	m.ID = 0
	rt := makeRoute(opts)
	return r.s.publishMessage(ctx, r.name, m, &rt)
}

// BroadcastBinary sends data as a binary frame to the room's members. It
// is not kept in the history.
func (r *Room) BroadcastBinary(ctx context.Context, data []byte, opts ...BroadcastOption) error {
	if err := r.check("broadcast"); err != nil {
		return err
	}
	rt := makeRoute(opts)
	return r.s.publish(ctx, &Publication{Room: r.name, Type: PubBinary, Data: data}, &rt)
}

// Members returns the names of the room's members, on every server, sorted.
func (r *Room) Members(ctx context.Context) ([]string, error) {
	names, _, err := r.s.opts.Store.Members(ctx, r.name, "", 0)
	if err != nil {
		return nil, fmt.Errorf("wsroom: members of %q: %w", r.name, err)
	}
	return names, nil
}

// Remove closes the named member's connection, on whichever server it is,
// with close code 1008 and reason (at most 123 bytes are sent). The member
// leaves with ReasonRemoved; its departure is announced as usual. Remove
// fails with an error wrapping ErrNotMember when nobody of that name is in
// the room.
func (r *Room) Remove(ctx context.Context, name, reason string) error {
	if err := r.check("remove"); err != nil {
		return err
	}
	names, err := r.Members(ctx)
	if err != nil {
		return err
	}
	if _, found := slices.BinarySearch(names, name); !found {
		return fmt.Errorf("wsroom: remove %q from %q: %w", name, r.name, ErrNotMember)
	}
	if len(reason) > 123 {
		reason = reason[:123]
	}
	return r.s.publish(ctx, &Publication{Room: r.name, Type: PubRemove, Name: name, Reason: reason}, &route{})
}

// publishMessage stores m (unless it is addressed to some members only) and
// publishes it, in order with this server's other publications to the room.
func (s *Server) publishMessage(ctx context.Context, room string, m Message, rt *route) (Message, error) {
	h := s.lookup(room)
	if h != nil {
		h.sendMu.Lock()
		defer h.sendMu.Unlock()
		h.flushPresenceLocked(ctx)
	}
	if rt.filter != nil {
		if h != nil {
			h.deliver(&Publication{Room: room, Type: PubMessage, Message: m}, rt)
		}
		return m, nil
	}
	if len(rt.to) == 0 {
		var err error
		if m, err = s.opts.Store.Append(ctx, room, m); err != nil {
			return Message{}, fmt.Errorf("wsroom: store message in %q: %w", room, err)
		}
	}
	p := &Publication{Room: room, Type: PubMessage, Message: m, To: rt.to, Except: rt.except, Origin: s.id}
	if err := s.opts.Broker.Publish(ctx, p); err != nil {
		return m, fmt.Errorf("wsroom: publish to %q: %w", room, err)
	}
	return m, nil
}

// publish sends a publication that is not stored, in order with this
// server's other publications to the room. A filtered one is delivered to
// this server's members only.
func (s *Server) publish(ctx context.Context, p *Publication, rt *route) error {
	h := s.lookup(p.Room)
	if h != nil {
		h.sendMu.Lock()
		defer h.sendMu.Unlock()
		h.flushPresenceLocked(ctx)
	}
	if rt.filter != nil {
		if h != nil {
			h.deliver(p, rt)
		}
		return nil
	}
	p.To, p.Except, p.Origin = rt.to, rt.except, s.id
	if err := s.opts.Broker.Publish(ctx, p); err != nil {
		return fmt.Errorf("wsroom: publish to %q: %w", p.Room, err)
	}
	return nil
}

// errorCode maps a store error to the error event a client sees.
func errorCode(err error) string {
	switch {
	case errors.Is(err, ErrNameTaken):
		return CodeNameTaken
	case errors.Is(err, ErrRoomFull):
		return CodeRoomFull
	case errors.Is(err, ErrBadName):
		return CodeBadName
	}
	return CodeUnavailable
}
