package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// acceptOptions lets every origin in: the load generator sends no Origin
// header, and a browser pointed at the benchmark should not be refused.
var acceptOptions = &websocket.AcceptOptions{InsecureSkipVerify: true}

// coderChat is a minimal room written directly on github.com/coder/websocket,
// in the style of coder's chat example: per member a queue of 256 events
// and a writer goroutine, a member whose queue is full closed with
// StatusPolicyViolation.
type coderChat struct {
	mu    sync.Mutex
	rooms map[string]*coderRoom
}

// coderRoom is the members of a room.
type coderRoom struct {
	mu      sync.RWMutex
	members map[*coderMember]struct{}
}

// coderMember is a connection in a room. Its writer goroutine owns the
// writes and the close for being slow.
type coderMember struct {
	msgs chan []byte
	slow chan struct{} // closed once when msgs was full
	kick atomic.Bool   // slow is closed
}

func newCoder() (chat, echo http.Handler, stop func()) {
	c := &coderChat{rooms: make(map[string]*coderRoom)}
	return c, http.HandlerFunc(coderEcho), func() {}
}

func (cs *coderChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, acceptOptions)
	if err != nil {
		return // Accept has replied
	}
	defer c.CloseNow()
	c.SetReadLimit(maxMessageSize)
	ctx := r.Context()
	roomName, name := r.PathValue("room"), r.URL.Query().Get("name")

	m := &coderMember{msgs: make(chan []byte, sendBuffer), slow: make(chan struct{})}
	wctx, cancel := context.WithCancel(ctx)
	written := make(chan struct{})
	go func() {
		defer close(written)
		m.writeLoop(wctx, c)
	}()
	defer func() {
		cancel()
		<-written
	}()

	room := cs.join(roomName, m)
	room.broadcast(joinEvent(name))
	defer func() {
		cs.leave(roomName, room, m)
		room.broadcast(leaveEvent(name))
	}()

	for {
		typ, b, err := c.Read(ctx)
		if err != nil {
			return
		}
		if typ == websocket.MessageText {
			room.broadcast(chatEvent(name, b))
		}
	}
}

// writeLoop writes the member's queue until ctx is done or a write fails,
// and closes the connection when the member was too slow.
func (m *coderMember) writeLoop(ctx context.Context, c *websocket.Conn) {
	for {
		select {
		case msg := <-m.msgs:
			if err := writeTimeout(ctx, 5*time.Second, c, msg); err != nil {
				c.CloseNow()
				return
			}
		case <-m.slow:
			c.Close(websocket.StatusPolicyViolation, "connection too slow to keep up with messages")
			return
		case <-ctx.Done():
			return
		}
	}
}

func writeTimeout(ctx context.Context, timeout time.Duration, c *websocket.Conn, msg []byte) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return c.Write(ctx, websocket.MessageText, msg)
}

func (cs *coderChat) join(roomName string, m *coderMember) *coderRoom {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	room := cs.rooms[roomName]
	if room == nil {
		room = &coderRoom{members: make(map[*coderMember]struct{})}
		cs.rooms[roomName] = room
	}
	room.mu.Lock()
	room.members[m] = struct{}{}
	room.mu.Unlock()
	return room
}

func (cs *coderChat) leave(roomName string, room *coderRoom, m *coderMember) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	room.mu.Lock()
	delete(room.members, m)
	if len(room.members) == 0 {
		delete(cs.rooms, roomName)
	}
	room.mu.Unlock()
}

// broadcast queues msg for every member without blocking; a member whose
// queue is full is closed by its writer.
func (r *coderRoom) broadcast(msg []byte) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for m := range r.members {
		select {
		case m.msgs <- msg:
		default:
			if m.kick.CompareAndSwap(false, true) {
				close(m.slow)
			}
		}
	}
}

// coderEcho is coder's echo example without its subprotocol check, rate
// limiter and per-message timeout.
func coderEcho(w http.ResponseWriter, r *http.Request) {
	c, err := websocket.Accept(w, r, acceptOptions)
	if err != nil {
		return
	}
	defer c.CloseNow()
	c.SetReadLimit(maxMessageSize)
	ctx := r.Context()
	for {
		if err := coderEchoMessage(ctx, c); err != nil {
			return
		}
	}
}

// coderEchoMessage reads a message from c and writes it back.
func coderEchoMessage(ctx context.Context, c *websocket.Conn) error {
	typ, r, err := c.Reader(ctx)
	if err != nil {
		return fmt.Errorf("coder echo: read: %w", err)
	}
	w, err := c.Writer(ctx, typ)
	if err != nil {
		return fmt.Errorf("coder echo: write: %w", err)
	}
	if _, err := io.Copy(w, r); err != nil {
		return fmt.Errorf("coder echo: copy: %w", err)
	}
	if err := w.Close(); err != nil {
		return fmt.Errorf("coder echo: write: %w", err)
	}
	return nil
}
