package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"
)

// event is what the tests read of a wsroom.v1 server event.
type event struct {
	Type     string    `json:"type,omitempty"`
	Room     string    `json:"room,omitempty"`
	Name     string    `json:"name,omitempty"`
	Members  []string  `json:"members,omitempty"`
	Count    int       `json:"count,omitempty"`
	History  []message `json:"history,omitempty"`
	Gap      bool      `json:"gap,omitempty"`
	Joined   []string  `json:"joined,omitempty"`
	Left     []string  `json:"left,omitempty"`
	ID       string    `json:"id,omitempty"`
	From     string    `json:"from,omitempty"`
	Text     string    `json:"text,omitempty"`
	Messages []message `json:"messages,omitempty"`
	More     bool      `json:"more,omitempty"`
	Code     string    `json:"code,omitempty"`
	Message  string    `json:"message,omitempty"`
}

// message is a chat message in a welcome or a history page.
type message struct {
	ID   string `json:"id,omitempty"`
	From string `json:"from,omitempty"`
	Text string `json:"text,omitempty"`
}

func (e event) msg() message { return message{ID: e.ID, From: e.From, Text: e.Text} }

// item is one thing a client received: an event, or a binary message.
type item struct {
	ev  event
	bin []byte // non-nil for a binary message
}

// client is a member's connection speaking wsroom.v1. A goroutine reads
// everything the server sends into items, until the connection ends.
type client struct {
	t    testing.TB
	name string
	srv  *server
	room string
	conn *websocket.Conn

	mu     sync.Mutex
	items  []item
	signal chan struct{} // closed, and replaced, when an item arrives or the connection ends
	ended  bool
	endErr error // why the connection ended: a websocket.CloseError for a close frame

	done   chan struct{} // closed when the reading goroutine has returned
	cursor int           // next item next looks at; the test's goroutine only
}

// dial connects to room on srv, without joining.
func dial(ctx context.Context, t testing.TB, srv *server, room string) *client {
	t.Helper()
	c, err := tryDial(ctx, t, srv, room, "")
	if err != nil {
		t.Fatalf("dial %s: %v", srv.name, err)
	}
	return c
}

// tryDial connects to room on srv; query is added to the URL ("since=5").
func tryDial(ctx context.Context, t testing.TB, srv *server, room, query string) (*client, error) {
	u := srv.ws + "/chat/" + url.PathEscape(room)
	if query != "" {
		u += "?" + query
	}
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{Subprotocols: []string{"wsroom.v1"}})
	if err != nil {
		return nil, err
	}
	conn.SetReadLimit(8 << 20)
	c := &client{t: t, srv: srv, room: room, conn: conn, signal: make(chan struct{}), done: make(chan struct{})}
	go c.read()
	t.Cleanup(c.close)
	return c, nil
}

// connect dials room on srv and joins as name: the welcome must come.
func connect(ctx context.Context, t testing.TB, srv *server, room, name string) (*client, event) {
	t.Helper()
	c := dial(ctx, t, srv, room)
	return c, c.join(ctx, name)
}

// join joins as name and returns the welcome.
func (c *client) join(ctx context.Context, name string) event {
	c.t.Helper()
	e := c.tryJoin(ctx, name)
	if e.Type != "welcome" {
		c.t.Fatalf("%s joining on %s: got %+v, want a welcome", name, c.srv.name, e)
	}
	return e
}

// tryJoin sends a join and returns the welcome or the error event.
func (c *client) tryJoin(ctx context.Context, name string) event {
	c.t.Helper()
	c.name = name
	c.write(ctx, map[string]any{"type": "join", "name": name})
	return c.next(ctx, "welcome or error for "+name, func(it item) bool {
		return it.ev.Type == "welcome" || it.ev.Type == "error"
	}).ev
}

func (c *client) write(ctx context.Context, v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		c.t.Fatal(err)
	}
	if err := c.conn.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatalf("%s on %s: write: %v", c.name, c.srv.name, err)
	}
}

// say sends a chat message.
func (c *client) say(ctx context.Context, text string) {
	c.t.Helper()
	c.write(ctx, map[string]any{"type": "message", "text": text})
}

// sendBinary sends a binary message.
func (c *client) sendBinary(ctx context.Context, data []byte) {
	c.t.Helper()
	if err := c.conn.Write(ctx, websocket.MessageBinary, data); err != nil {
		c.t.Fatalf("%s on %s: write binary: %v", c.name, c.srv.name, err)
	}
}

// members asks for the whole member list (one page of 100 is enough here).
func (c *client) members(ctx context.Context) []string {
	c.t.Helper()
	c.write(ctx, map[string]any{"type": "members", "limit": 100})
	e := c.next(ctx, "members or error", func(it item) bool { return it.ev.Type == "members" || it.ev.Type == "error" }).ev
	if e.Type != "members" {
		c.t.Fatalf("%s: members answered %+v", c.name, e)
	}
	return e.Members
}

// history reads the room's whole history, oldest first, page by page.
func (c *client) history(ctx context.Context) []message {
	c.t.Helper()
	var all []message
	before := ""
	for page := 0; page < 100; page++ {
		req := map[string]any{"type": "history", "limit": 100}
		if before != "" {
			req["before"] = before
		}
		c.write(ctx, req)
		e := c.next(ctx, "history or error", func(it item) bool { return it.ev.Type == "history" || it.ev.Type == "error" }).ev
		if e.Type != "history" {
			c.t.Fatalf("%s: history answered %+v", c.name, e)
		}
		all = append(append([]message{}, e.Messages...), all...)
		if !e.More || len(e.Messages) == 0 {
			return all
		}
		before = e.Messages[0].ID
	}
	c.t.Fatalf("%s: history longer than 100 pages", c.name)
	return nil
}

// next waits for the first item after the cursor that matches, moves the
// cursor past it and returns it. It fails the test when ctx ends or the
// connection ends first.
func (c *client) next(ctx context.Context, what string, match func(item) bool) item {
	c.t.Helper()
	it, err := c.tryNext(ctx, match)
	if err != nil {
		c.t.Fatalf("%s on %s waiting for %s: %v; received %s", c.name, c.srv.name, what, err, c.dump())
	}
	return it
}

// seen waits for an item that matches among everything received, from
// the first; it leaves the cursor alone.
func (c *client) seen(ctx context.Context, what string, match func(item) bool) item {
	c.t.Helper()
	it, err := c.find(ctx, new(int), match)
	if err != nil {
		c.t.Fatalf("%s on %s waiting for %s: %v; received %s", c.name, c.srv.name, what, err, c.dump())
	}
	return it
}

func (c *client) tryNext(ctx context.Context, match func(item) bool) (item, error) {
	return c.find(ctx, &c.cursor, match)
}

// find waits for the first item at or after *from that matches and moves
// *from past it.
func (c *client) find(ctx context.Context, from *int, match func(item) bool) (item, error) {
	for {
		c.mu.Lock()
		for i := *from; i < len(c.items); i++ {
			if match(c.items[i]) {
				*from = i + 1
				it := c.items[i]
				c.mu.Unlock()
				return it, nil
			}
		}
		*from = len(c.items)
		ended, endErr, signal := c.ended, c.endErr, c.signal
		c.mu.Unlock()
		if ended {
			return item{}, fmt.Errorf("connection ended: %w", endErr)
		}
		select {
		case <-signal:
		case <-ctx.Done():
			return item{}, ctx.Err()
		}
	}
}

// message waits for a chat message with this text.
func (c *client) message(ctx context.Context, text string) event {
	c.t.Helper()
	return c.next(ctx, fmt.Sprintf("message %q", text), func(it item) bool {
		return it.ev.Type == "message" && it.ev.Text == text
	}).ev
}

// binary waits for a binary message.
func (c *client) binary(ctx context.Context) []byte {
	c.t.Helper()
	return c.next(ctx, "a binary message", func(it item) bool { return it.bin != nil }).bin
}

// all returns everything received so far.
func (c *client) all() []item {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]item(nil), c.items...)
}

// acked returns the messages this client received with an ID: those the
// servers acknowledged as stored.
func (c *client) acked() []message {
	var ms []message
	for _, it := range c.all() {
		switch it.ev.Type {
		case "message":
			if it.ev.ID != "" {
				ms = append(ms, it.ev.msg())
			}
		case "welcome", "history":
			ms = append(append(ms, it.ev.History...), it.ev.Messages...)
		}
	}
	return ms
}

// departures counts, per name, the departures this client was told of, by
// leave and presence events.
func (c *client) departures() map[string]int {
	n := map[string]int{}
	for _, it := range c.all() {
		switch it.ev.Type {
		case "leave":
			n[it.ev.Name]++
		case "presence":
			for _, name := range it.ev.Left {
				n[name]++
			}
		}
	}
	return n
}

// closed waits until the server ends the connection and returns its close
// code (-1 if it ended without a close frame).
func (c *client) closed(ctx context.Context) (websocket.StatusCode, string, error) {
	select {
	case <-c.done:
	case <-ctx.Done():
		return 0, "", fmt.Errorf("%s on %s: the connection was not closed: %w", c.name, c.srv.name, ctx.Err())
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	var ce websocket.CloseError
	if errors.As(c.endErr, &ce) {
		return ce.Code, ce.Reason, nil
	}
	return -1, "", nil
}

// isOpen reports whether the connection has not ended.
func (c *client) isOpen() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.ended
}

// leave closes the connection normally.
func (c *client) leave() {
	c.conn.Close(websocket.StatusNormalClosure, "bye")
}

func (c *client) close() {
	c.conn.CloseNow()
	<-c.done
}

func (c *client) read() {
	defer close(c.done)
	for {
		typ, b, err := c.conn.Read(context.Background())
		var got []item
		if err == nil && typ == websocket.MessageBinary {
			got = []item{{bin: b}}
		} else if err == nil {
			for _, line := range bytes.Split(b, []byte("\n")) {
				var e event
				if jerr := json.Unmarshal(line, &e); jerr != nil {
					err = fmt.Errorf("bad event %q: %w", line, jerr)
					break
				}
				got = append(got, item{ev: e})
			}
		}
		c.mu.Lock()
		c.items = append(c.items, got...)
		if err != nil {
			c.ended, c.endErr = true, err
		}
		close(c.signal)
		c.signal = make(chan struct{})
		c.mu.Unlock()
		if err != nil {
			return
		}
	}
}

// dump is what the client received, for a failure message.
func (c *client) dump() string {
	var sb strings.Builder
	for _, it := range c.all() {
		if it.bin != nil {
			fmt.Fprintf(&sb, "\n  binary %d bytes", len(it.bin))
			continue
		}
		b, _ := json.Marshal(it.ev)
		fmt.Fprintf(&sb, "\n  %s", b)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		fmt.Fprintf(&sb, "\n  ended: %v", c.endErr)
	}
	return sb.String()
}
