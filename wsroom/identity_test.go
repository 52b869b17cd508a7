package wsroom_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

func identifyByHeader(ctx context.Context, ev wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
	return wsroom.IdentifyReply{Name: ev.Request.Header.Get("X-User")}, nil
}

func user(name string) http.Header { return http.Header{"X-User": {name}} }

// TestDuplicateIdentityReplaces: by default a second tab of an identified
// user takes the name over; the first tab is closed with 4001, and the room
// sees no departure and no second arrival.
func TestDuplicateIdentityReplaces(t *testing.T) {
	t.Parallel()
	l := newLeaves()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{Identify: identifyByHeader, OnLeave: l.hook}})
	other, _ := e.join("r", "bob")
	tab1, err := e.dialErr("/chat/r", true, user("alice"))
	assert.Success(t, err)
	tab1.expect("welcome")
	assert.Equal(t, "alice arrives", "alice", other.until("join").Name)

	tab2, err := e.dialErr("/chat/r", true, user("alice"))
	assert.Success(t, err)
	w := tab2.expect("welcome")
	assert.Equal(t, "the new tab is alice", "alice", w.Name)
	assert.Equal(t, "the old tab is closed: replaced", wsroom.StatusReplaced, tab1.closed())
	ev := l.wait(t)
	assert.Equal(t, "OnLeave reason", wsroom.ReasonReplaced, ev.Reason)
	assert.Equal(t, "OnLeave code", 4001, ev.Code)

	tab2.say("from the new tab")
	m := other.until("message")
	assert.Equal(t, "from", "alice", m.From)
	// Nothing about alice came between her arrival and her message.
	names, err := e.srv.Room("r").Members(testContext(t))
	assert.Success(t, err)
	assert.Equal(t, "members", []string{"alice", "bob"}, names)
	tab2.say("again")
	other.until("message")
	assert.Success(t, tab2.c.Close(websocket.StatusNormalClosure, ""))
	assert.Equal(t, "her departure is announced once she really goes", "alice", other.until("leave").Name)
}

// TestDuplicateIdentityReplacedSilently checks the other member's stream
// in full: no leave and no join for the replaced tab.
func TestDuplicateIdentityReplacedSilently(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{Identify: identifyByHeader}})
	other, _ := e.join("r", "bob")
	tab1, err := e.dialErr("/chat/r", true, user("alice"))
	assert.Success(t, err)
	tab1.expect("welcome")
	other.expect("join")
	tab2, err := e.dialErr("/chat/r", true, user("alice"))
	assert.Success(t, err)
	tab2.expect("welcome")
	tab1.closed()
	waitFor(t, "old tab gone", func() bool { return e.srv.Stats().Members == 2 })
	e.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: "marker"})
	assert.Equal(t, "next event for bob", "marker", other.expect("message").Text)
}

// TestDuplicateIdentityRefused: with DuplicateRefuse the second tab's
// upgrade gets 409 while the first is connected.
func TestDuplicateIdentityRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Duplicates: wsroom.DuplicateRefuse, Hooks: wsroom.Hooks{Identify: identifyByHeader}})
	tab1, err := e.dialErr("/chat/r", true, user("alice"))
	assert.Success(t, err)
	tab1.expect("welcome")
	_, err = e.dialErr("/chat/r", true, user("alice"))
	assert.True(t, "refused with 409", err != nil && strings.Contains(err.Error(), "409"))
	assert.Success(t, tab1.c.Close(websocket.StatusNormalClosure, ""))
	waitFor(t, "first tab gone", func() bool { return e.srv.Stats().Members == 0 })
	tab2, err := e.dialErr("/chat/r", true, user("alice"))
	assert.Success(t, err)
	tab2.expect("welcome")
}

// TestIdentifiedJoinFrameIgnored: an identified client that still sends a
// join (as an older page would) is not told off.
func TestIdentifiedJoinFrameIgnored(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{Identify: identifyByHeader}})
	c, err := e.dialErr("/chat/r", true, user("alice"))
	assert.Success(t, err)
	c.expect("welcome")
	c.send(map[string]any{"type": "join", "name": "alice"})
	c.say("hi")
	assert.Equal(t, "no error, just the message", "message", c.expect("message").Type)
}
