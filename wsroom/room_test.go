package wsroom_test

import (
	"testing"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

func TestRoomAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ctx := testContext(t)
	room := e.srv.Room("r")
	assert.Equal(t, "name", "r", room.Name())
	a, _ := e.join("r", "alice")
	b, _ := e.join("r", "bob")
	a.expect("join")
	plain := e.dial("/chat/r", false)
	plain.sendText("login:carol")
	plain.line()
	plain.line()
	a.expect("join")
	b.expect("join")

	names, err := room.Members(ctx)
	assert.Success(t, err)
	assert.Equal(t, "members", []string{"alice", "bob", "carol"}, names)

	m, err := room.Broadcast(ctx, wsroom.Message{Text: "server notice"})
	assert.Success(t, err)
	assert.True(t, "stored with an ID", m.ID != 0)
	ev := a.expect("message")
	assert.Equal(t, "from the server", "", ev.From)
	assert.Equal(t, "same ID", m.ID, parseID(t, ev.ID))
	b.expect("message")
	assert.Equal(t, "plain, bare", "server notice", plain.line())

	_, err = room.Broadcast(ctx, wsroom.Message{From: "bot", Text: "psst"}, wsroom.To("bob"))
	assert.Success(t, err)
	ev = b.expect("message")
	assert.Equal(t, "private", "psst", ev.Text)
	assert.Equal(t, "not stored: no id", "", ev.ID)

	_, err = room.Broadcast(ctx, wsroom.Message{Text: "not for alice"}, wsroom.Except("alice"))
	assert.Success(t, err)
	assert.Equal(t, "except", "not for alice", b.expect("message").Text)
	assert.Equal(t, "plain except", "not for alice", plain.line())

	_, err = room.Broadcast(ctx, wsroom.Message{Text: "plain only"}, wsroom.Filter(func(m wsroom.MemberInfo) bool { return m.Plain }))
	assert.Success(t, err)
	assert.Equal(t, "filtered", "plain only", plain.line())

	assert.Success(t, room.BroadcastBinary(ctx, []byte{9}, wsroom.To("alice")))

	// alice got neither the private message, nor the Except, nor the
	// filtered one: her next frames are the binary one, then this.
	_, err = room.Broadcast(ctx, wsroom.Message{Text: "to all"})
	assert.Success(t, err)
	typ, data, err := a.readFrame(ctx)
	assert.Success(t, err)
	assert.Equal(t, "binary to alice", websocket.MessageBinary, typ)
	assert.Equal(t, "binary data", []byte{9}, data)
	assert.Equal(t, "alice's next", "to all", a.expect("message").Text)

	// History holds only what everyone could see.
	_, w := e.join("r", "dave")
	assert.Equal(t, "history", []string{"server notice", "not for alice", "to all"}, texts(w.History))

	err = room.Remove(ctx, "nobody", "")
	assert.ErrorIs(t, wsroom.ErrNotMember, err)
	_, err = room.Broadcast(ctx, wsroom.Message{})
	assert.True(t, "empty text refused", err != nil)
	_, err = e.srv.Room("bad\x00").Broadcast(ctx, wsroom.Message{Text: "x"})
	assert.ErrorIs(t, wsroom.ErrBadName, err)
	// Broadcasting to a room nobody is in stores the message for later.
	_, err = e.srv.Room("empty").Broadcast(ctx, wsroom.Message{Text: "for later"})
	assert.Success(t, err)
	_, w = e.join("empty", "eve")
	assert.Equal(t, "history of an empty room", []string{"for later"}, texts(w.History))
}

// TestTwoServers runs two Servers on one store and broker, as two processes
// behind a load balancer would run on Redis or PostgreSQL and a shared
// broker: nothing may assume one process holds the whole room.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	store, broker := wsroom.NewMemoryStore(nil), wsroom.NewMemoryBroker()
	one := newEnv(t, &wsroom.Options{Store: store, Broker: broker})
	two := newEnv(t, &wsroom.Options{Store: store, Broker: broker})
	ctx := testContext(t)

	a, _ := one.join("r", "alice")
	b, w := two.join("r", "bob")
	assert.Equal(t, "members across servers", []string{"alice", "bob"}, w.Members)
	assert.Equal(t, "join crosses", "bob", a.expect("join").Name)

	c := two.dial("/chat/r", true)
	c.send(map[string]any{"type": "join", "name": "alice"})
	assert.Equal(t, "name unique across servers", "name_taken", c.expect("error").Code)

	a.say("from one")
	ma, mb := a.expect("message"), b.expect("message")
	assert.Equal(t, "same message everywhere", ma, mb)
	b.say("from two")
	assert.Equal(t, "crosses back", "from two", a.expect("message").Text)
	b.expect("message")

	_, err := one.srv.Room("r").Broadcast(ctx, wsroom.Message{Text: "dm"}, wsroom.To("bob"))
	assert.Success(t, err)
	assert.Equal(t, "To reaches the other server", "dm", b.expect("message").Text)

	_, err = one.srv.Room("r").Broadcast(ctx, wsroom.Message{Text: "local"}, wsroom.Filter(func(wsroom.MemberInfo) bool { return true }))
	assert.Success(t, err)
	assert.Equal(t, "a Filter stays on its server", "local", a.expect("message").Text)

	assert.Success(t, one.srv.Room("r").Remove(ctx, "bob", "moved"))
	assert.Equal(t, "removed from the other server", websocket.StatusPolicyViolation, b.closed())
	assert.Equal(t, "leave crosses", "bob", a.until("leave").Name)
	names, err := one.srv.Room("r").Members(ctx)
	assert.Success(t, err)
	assert.Equal(t, "members", []string{"alice"}, names)
	assert.Equal(t, "two has no room left", int64(0), two.srv.Stats().Rooms)

	// When one server shuts down, the others learn its members left, and
	// their names are free again.
	carol, _ := two.join("r", "carol")
	a.until("join")
	assert.Success(t, one.srv.Shutdown(ctx))
	assert.Equal(t, "alice's close", websocket.StatusGoingAway, a.closed())
	ev := carol.until("presence")
	assert.Equal(t, "departures of the server that shut down", []string{"alice"}, ev.Left)
	_, w = two.join("r", "alice")
	assert.Equal(t, "alice's name is free", []string{"alice", "carol"}, w.Members)
}
