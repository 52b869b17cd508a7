package wsroom

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"
	"unicode/utf8"
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

// ServeHTTP serves the chat endpoint for this room, and the HTTP fallback
// as Server.ServeHTTP does. It returns when the connection ends.
func (r *Room) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodGet && r.s.servePost(w, req) {
		return
	}
	if r.s.isStream(req) {
		r.s.serveStream(w, req, r.name)
		return
	}
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
// is not kept in the history. data is copied: the caller may reuse it once
// BroadcastBinary returns.
func (r *Room) BroadcastBinary(ctx context.Context, data []byte, opts ...BroadcastOption) error {
	if err := r.check("broadcast"); err != nil {
		return err
	}
	rt := makeRoute(opts)
	return r.s.publish(ctx, &Publication{Room: r.name, Type: PubBinary, Data: bytes.Clone(data)}, &rt)
}

// Members returns the names of the room's members, on every server, sorted.
func (r *Room) Members(ctx context.Context) ([]string, error) {
	names, _, err := r.s.opts.Store.Members(ctx, r.name, "", 0)
	if err != nil {
		return nil, fmt.Errorf("wsroom: members of %q: %w", r.name, err)
	}
	return names, nil
}

// Count returns how many members the room has, on every server.
func (r *Room) Count(ctx context.Context) (int, error) {
	_, n, err := r.s.opts.Store.Members(ctx, r.name, "", 1)
	if err != nil {
		return 0, fmt.Errorf("wsroom: members of %q: %w", r.name, err)
	}
	return n, nil
}

// Remove closes the named member's connection, on whichever server it is,
// with close code 1008 and reason (cut, on a character boundary, to the
// 123 bytes a close frame holds). The member leaves with ReasonRemoved;
// its departure is announced as usual. Remove fails with an error wrapping
// ErrNotMember when nobody of that name is in the room.
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
	reason = truncateUTF8(reason, maxCloseReason)
	return r.s.publish(ctx, &Publication{Room: r.name, Type: PubRemove, Name: name, Reason: reason}, &route{})
}

// maxCloseReason is the most bytes of reason a close frame holds.
const maxCloseReason = 123

// truncateUTF8 cuts s to at most n bytes without splitting a character.
func truncateUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
