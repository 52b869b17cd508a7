package wsroom_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

type ctxKey struct{}

// TestMemberOutlivesRequestDeadline: behind a middleware that gives every
// request a deadline (chi's middleware.Timeout, say), a member keeps
// working after it, its hooks still see the request's values, and its
// departure is announced.
func TestMemberOutlivesRequestDeadline(t *testing.T) {
	t.Parallel()
	seen := make(chan any, 10)
	l := newLeaves()
	srv, err := wsroom.New(&wsroom.Options{Logger: quiet, Hooks: wsroom.Hooks{
		OnMessage: func(ctx context.Context, e wsroom.MessageEvent) (wsroom.MessageReply, error) {
			seen <- ctx.Value(ctxKey{})
			if err := ctx.Err(); err != nil {
				return wsroom.MessageReply{}, err
			}
			return wsroom.MessageReply{}, nil
		},
		OnLeave: l.hook,
	}})
	assert.Success(t, err)
	timeout := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			ctx, cancel := context.WithTimeout(context.WithValue(r.Context(), ctxKey{}, "from the middleware"), 300*time.Millisecond)
			defer cancel()
			h.ServeHTTP(w, r.WithContext(ctx))
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", timeout(srv))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer srv.Shutdown(context.Background())
	e := &env{t: t, srv: srv, ts: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http")}
	a, _ := e.join("r", "ann")
	b, _ := e.join("r", "bob")
	a.until("join")
	sleepFor(t, 600*time.Millisecond) // past the request's deadline
	b.say("still here")
	assert.Equal(t, "a message after the deadline", "still here", a.until("message").Text)
	assert.Equal(t, "the hook sees the request's values", any("from the middleware"), <-seen)
	assert.Success(t, b.c.Close(websocket.StatusNormalClosure, ""))
	assert.Equal(t, "bob's departure announced", "bob", a.until("leave").Name)
	assert.Equal(t, "OnLeave", "bob", l.wait(t).Name)
}

// sleepFor lets time pass in a test that is about time, bounded by the
// test's context.
func sleepFor(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-time.After(d):
	case <-testContext(t).Done():
		t.Fatal("test context ended")
	}
}

// TestHookPanic: a panic in a hook closes its member with 1011, announces
// its departure once, frees its name and logs the panic with its stack;
// the server goes on.
func TestHookPanic(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	l := newLeaves()
	e := newEnv(t, &wsroom.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), Hooks: wsroom.Hooks{
		OnMessage: func(ctx context.Context, ev wsroom.MessageEvent) (wsroom.MessageReply, error) {
			if ev.Text == "boom" {
				panic("hook bug")
			}
			return wsroom.MessageReply{}, nil
		},
		OnJoin: func(ctx context.Context, ev wsroom.JoinEvent) (wsroom.JoinReply, error) {
			if ev.Name == "crash" {
				panic("join hook bug")
			}
			return wsroom.JoinReply{}, nil
		},
		OnLeave: l.hook,
	}})
	a, _ := e.join("p", "ann")
	b, _ := e.join("p", "bob")
	a.until("join")
	b.say("boom")
	assert.Equal(t, "close code", websocket.StatusInternalError, b.closed())
	assert.Equal(t, "departure announced", "bob", a.until("leave").Name)
	ev := l.wait(t)
	assert.Equal(t, "reason", wsroom.ReasonError, ev.Reason)
	assert.Equal(t, "code", 1011, ev.Code)
	assert.Contains(t, logs.String(), "hook bug")
	assert.Contains(t, logs.String(), "goroutine") // the stack
	// The name is free again, and the room works.
	b2, _ := e.join("p", "bob")
	b2.say("fine")
	assert.Equal(t, "room goes on", "fine", a.until("message").Text)

	c := e.dial("/chat/p", true)
	c.send(map[string]any{"type": "join", "name": "crash"})
	assert.Equal(t, "a panic in OnJoin", websocket.StatusInternalError, c.closed())
	names, err := e.srv.Room("p").Members(testContext(t))
	assert.Success(t, err)
	assert.Equal(t, "nobody left behind", []string{"ann", "bob"}, names)
	assert.Equal(t, "one leave event for bob, none for the refused join", 1, len(l.all()))
}

// TestLeaveReasonIsTheFirst: a member closed for a limit while its writer
// is busy leaves for that limit, every time: the library's close frame,
// which makes the writer's next write fail, is not a reason of its own.
func TestLeaveReasonIsTheFirst(t *testing.T) {
	t.Parallel()
	l := newLeaves()
	e := newEnv(t, &wsroom.Options{RateLimit: -1, SendQueue: -1, SendQueueBytes: -1, MaxMessageBytes: 4096, Hooks: wsroom.Hooks{OnLeave: l.hook}})
	room := e.srv.Room("busy")
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			room.Broadcast(context.Background(), wsroom.Message{Text: strings.Repeat("x", 2000)})
		}
	}()
	defer func() { close(stop); <-done }()
	for i := range 20 {
		c, _ := e.join("busy", fmt.Sprint("m", i))
		if i%2 == 0 {
			c.sendText(strings.Repeat("y", 5000)) // too big: 1009
		} else {
			assert.Success(t, c.c.Write(testContext(t), websocket.MessageText, []byte{'{', 0xff}))
		}
		ev := l.wait(t)
		want := 1009
		if i%2 == 1 {
			want = 1007
		}
		assert.Equal(t, fmt.Sprintf("round %d: reason", i), wsroom.ReasonPolicy, ev.Reason)
		assert.Equal(t, fmt.Sprintf("round %d: code", i), want, ev.Code)
	}
}
