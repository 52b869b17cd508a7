package wsroom_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

func TestIdentify(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, ev wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			switch tok := ev.Request.Header.Get("Authorization"); {
			case tok == "":
				return wsroom.IdentifyReply{}, nil // anonymous: the client picks a name
			case tok == "Bearer broken":
				return wsroom.IdentifyReply{}, errors.New("session store down")
			case strings.HasPrefix(tok, "Bearer user:"):
				if ev.Room != "members-only" {
					return wsroom.IdentifyReply{}, &wsroom.RejectError{Status: http.StatusNotFound, Message: "no such room"}
				}
				return wsroom.IdentifyReply{Name: strings.TrimPrefix(tok, "Bearer user:")}, nil
			}
			return wsroom.IdentifyReply{}, &wsroom.RejectError{Status: http.StatusUnauthorized, Message: "bad token"}
		},
	}})
	auth := func(tok string) http.Header { return http.Header{"Authorization": {tok}} }

	// Named by the hook: joined on connect, without a join frame.
	c, err := e.dialErr("/chat/members-only", true, auth("Bearer user:alice"))
	assert.Success(t, err)
	w := c.expect("welcome")
	assert.Equal(t, "name from the session", "alice", w.Name)
	// Its client may still send a join: it is ignored, and cannot rename.
	c.send(map[string]any{"type": "join", "name": "mallory"})
	c.say("still me")
	assert.Equal(t, "join ignored, no rename", "alice", c.until("message").From)

	for _, tc := range []struct {
		path, tok string
		status    string
	}{
		{"/chat/members-only", "Bearer nope", "401"},
		{"/chat/other", "Bearer user:bob", "404"},
		{"/chat/members-only", "Bearer broken", "403"},
		{"/chat/members-only", "Bearer user:bad\u202Ename", "403"},
	} {
		_, err := e.dialErr(tc.path, true, auth(tc.tok))
		assert.True(t, tc.tok+" refused with "+tc.status, err != nil && strings.Contains(err.Error(), tc.status))
	}

	// Anonymous clients still choose their names.
	_, w = e.join("members-only", "guest")
	assert.Equal(t, "members", []string{"alice", "guest"}, w.Members)

	// An identified member resumes from the URL.
	c.say("one")
	id := c.until("message").ID
	c.say("two")
	c.until("message")
	assert.Success(t, c.c.Close(websocket.StatusNormalClosure, ""))
	waitFor(t, "alice gone", func() bool { return e.srv.Stats().Members == 1 })
	c2, err := e.dialErr("/chat/members-only?since="+id, true, auth("Bearer user:alice"))
	assert.Success(t, err)
	assert.Equal(t, "resumed", []string{"two"}, texts(c2.expect("welcome").History))
}

func TestOnJoin(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var seen []wsroom.JoinEvent
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{
		OnJoin: func(ctx context.Context, ev wsroom.JoinEvent) (wsroom.JoinReply, error) {
			mu.Lock()
			seen = append(seen, ev)
			mu.Unlock()
			switch ev.Name {
			case "mallory":
				return wsroom.JoinReply{}, wsroom.Reject("banned", "mallory is banned")
			case "oops":
				return wsroom.JoinReply{}, errors.New("internal detail that must not leak")
			case "Bob":
				return wsroom.JoinReply{Name: "bob"}, nil
			case "rename-bad":
				return wsroom.JoinReply{Name: "bad\x00"}, nil
			}
			return wsroom.JoinReply{}, nil
		},
	}})
	c := e.dial("/chat/r", true)
	c.send(map[string]any{"type": "join", "name": "mallory"})
	ev := c.expect("error")
	assert.Equal(t, "rejected code", "banned", ev.Code)
	assert.Equal(t, "rejected message", "mallory is banned", ev.Message)
	c.send(map[string]any{"type": "join", "name": "oops"})
	ev = c.expect("error")
	assert.Equal(t, "generic code", "join_refused", ev.Code)
	assert.True(t, "no leak", !strings.Contains(ev.Message, "internal"))
	c.send(map[string]any{"type": "join", "name": "rename-bad"})
	assert.Equal(t, "renamed to a bad name", "bad_name", c.expect("error").Code)
	c.send(map[string]any{"type": "join", "name": "Bob", "since": "7"})
	assert.Equal(t, "renamed", "bob", c.expect("welcome").Name)
	mu.Lock()
	defer mu.Unlock()
	last := seen[len(seen)-1]
	assert.Equal(t, "room", "r", last.Room)
	assert.True(t, "resume", last.Resume)
	assert.True(t, "request", last.Request != nil && last.Request.URL.Path == "/chat/r")
}

func TestOnMessage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{
		OnMessage: func(ctx context.Context, ev wsroom.MessageEvent) (wsroom.MessageReply, error) {
			if ev.Binary {
				if len(ev.Data) == 0 {
					return wsroom.MessageReply{Drop: true}, nil
				}
				return wsroom.MessageReply{Data: append([]byte("stamped:"), ev.Data...)}, nil
			}
			switch {
			case strings.Contains(ev.Text, "spam"):
				return wsroom.MessageReply{Drop: true}, nil
			case strings.Contains(ev.Text, "darn"):
				return wsroom.MessageReply{Text: strings.ReplaceAll(ev.Text, "darn", "****")}, nil
			case strings.HasPrefix(ev.Text, "/"):
				return wsroom.MessageReply{}, wsroom.Reject("unknown_command", "no such command")
			case ev.Text == "boom":
				return wsroom.MessageReply{}, errors.New("secret")
			}
			return wsroom.MessageReply{}, nil
		},
	}})
	a, _ := e.join("r", "alice")
	b, _ := e.join("r", "bob")
	a.expect("join")
	a.say("buy spam")
	a.say("/dance")
	assert.Equal(t, "refused", "unknown_command", a.expect("error").Code)
	a.say("boom")
	ev := a.expect("error")
	assert.Equal(t, "generic", "message_refused", ev.Code)
	assert.True(t, "no leak", !strings.Contains(ev.Message, "secret"))
	a.say("darn it")
	assert.Equal(t, "rewritten for bob", "**** it", b.expect("message").Text)
	assert.Equal(t, "rewritten for alice", "**** it", a.expect("message").Text)

	ctx := testContext(t)
	assert.Success(t, a.c.Write(ctx, websocket.MessageBinary, nil))
	assert.Success(t, a.c.Write(ctx, websocket.MessageBinary, []byte("ink")))
	typ, data, err := b.readFrame(ctx)
	assert.Success(t, err)
	assert.Equal(t, "binary", websocket.MessageBinary, typ)
	assert.Equal(t, "replaced data", "stamped:ink", string(data))
}
