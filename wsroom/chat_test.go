package wsroom_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

func TestJoinWelcomeAndBroadcast(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	alice, w := e.join("general", "alice")
	assert.Equal(t, "room", "general", w.Room)
	assert.Equal(t, "name", "alice", w.Name)
	assert.Equal(t, "members", []string{"alice"}, w.Members)
	assert.Equal(t, "history", 0, len(w.History))

	bob, w := e.join("general", "bob")
	assert.Equal(t, "members", []string{"alice", "bob"}, w.Members)
	assert.Equal(t, "join seen by alice", "bob", alice.expect("join").Name)

	// A client cannot forge from, id or ts.
	bob.send(map[string]any{"type": "message", "text": "hi", "from": "alice", "id": "1", "ts": 5})
	var ids []string
	for _, c := range []*client{alice, bob} {
		m := c.expect("message")
		assert.Equal(t, "from", "bob", m.From)
		assert.Equal(t, "text", "hi", m.Text)
		assert.True(t, "id set", m.ID != "" && m.ID != "1")
		assert.True(t, "ts set", time.Since(time.UnixMilli(m.TS)) < time.Minute)
		ids = append(ids, m.ID)
	}
	assert.Equal(t, "same id for everyone", ids[0], ids[1])
	assert.Success(t, bob.c.Close(websocket.StatusNormalClosure, "bye"))
	assert.Equal(t, "leave", "bob", alice.expect("leave").Name)
}

func TestDefaultRoomAndRoomsAreSeparate(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{DefaultRoom: "hall"})
	a := e.dial("/chat", true)
	a.send(map[string]any{"type": "join", "name": "alice"})
	assert.Equal(t, "default room", "hall", a.expect("welcome").Room)
	b, _ := e.join("other", "bob")
	b.say("only in other")
	assert.Equal(t, "bob's own message", "only in other", b.expect("message").Text)
	// alice, in another room, sees neither bob's join nor his message; her
	// next event is her own.
	a.say("in hall")
	assert.Equal(t, "alice's next event", "in hall", a.expect("message").Text)
	// The same name can be used in two rooms.
	_, w := e.join("other", "alice")
	assert.Equal(t, "members of other", []string{"alice", "bob"}, w.Members)
}

func TestWelcomeHistoryAndPaging(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{WelcomeHistory: 3, HistoryPage: 4})
	a, _ := e.join("r", "alice")
	var ids []string
	for i := range 10 {
		a.say(fmt.Sprint("m", i))
		ids = append(ids, a.expect("message").ID)
	}
	b, w := e.join("r", "bob")
	assert.Equal(t, "welcome history", 3, len(w.History))
	assert.Equal(t, "oldest first", "m7", w.History[0].Text)
	assert.Equal(t, "newest", ids[9], w.History[2].ID)
	assert.Equal(t, "history from", "alice", w.History[0].From)

	b.send(map[string]any{"type": "history", "before": w.History[0].ID, "limit": 2})
	h := b.expect("history")
	assert.Equal(t, "page", []string{"m5", "m6"}, texts(h.Messages))
	assert.True(t, "more", h.More)
	// The page size is capped by HistoryPage; a numeric ID is accepted.
	id, _ := strconv.ParseUint(ids[5], 10, 64)
	b.sendText(fmt.Sprintf(`{"type":"history","before":%d,"limit":50}`, id))
	h = b.expect("history")
	assert.Equal(t, "capped page", []string{"m1", "m2", "m3", "m4"}, texts(h.Messages))
	assert.True(t, "more", h.More)
	b.send(map[string]any{"type": "history", "before": ids[2]})
	h = b.expect("history")
	assert.Equal(t, "first page", []string{"m0", "m1"}, texts(h.Messages))
	assert.True(t, "no more", !h.More)
	b.send(map[string]any{"type": "history"})
	assert.Equal(t, "latest page", []string{"m6", "m7", "m8", "m9"}, texts(b.expect("history").Messages))
}

func texts(ms []msg) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Text)
	}
	return out
}

func TestResume(t *testing.T) {
	t.Parallel()
	store := wsroom.NewMemoryStore(&wsroom.MemoryStoreOptions{History: 5})
	e := newEnv(t, &wsroom.Options{Store: store})
	a, _ := e.join("r", "alice")
	b, _ := e.join("r", "bob")
	a.expect("join")
	a.say("seen")
	seen := b.expect("message").ID
	a.expect("message")
	assert.Success(t, b.c.Close(websocket.StatusNormalClosure, ""))
	a.expect("leave")
	a.say("missed 1")
	a.say("missed 2")
	a.expect("message")
	a.expect("message") // both stored

	c := e.dial("/chat/r", true)
	c.send(map[string]any{"type": "join", "name": "bob", "since": seen})
	w := c.expect("welcome")
	assert.Equal(t, "missed", []string{"missed 1", "missed 2"}, texts(w.History))
	assert.True(t, "no gap", !w.Gap)

	// The resume can also come from the URL.
	d := e.dial("/chat/r?since="+seen, true)
	d.send(map[string]any{"type": "join", "name": "carol"})
	assert.Equal(t, "missed, from the URL", []string{"missed 1", "missed 2"}, texts(d.expect("welcome").History))

	// Beyond what the store keeps, the gap is flagged and the most recent
	// messages come instead.
	for i := range 6 {
		a.say(fmt.Sprint("later ", i))
	}
	for a.until("message").Text != "later 5" {
	}
	f := e.dial("/chat/r", true)
	f.send(map[string]any{"type": "join", "name": "dave", "since": seen})
	w = f.expect("welcome")
	assert.True(t, "gap", w.Gap)
	assert.Equal(t, "most recent kept", "later 5", w.History[len(w.History)-1].Text)
}

func TestWelcomeHasNoDuplicatesUnderLoad(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: -1})
	a, _ := e.join("r", "alice")
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		// A steady stream, well within what every client can read.
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for i := 0; i < 100_000; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			if a.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"message","text":"x"}`)) != nil {
				return
			}
		}
	}()
	for i := range 5 {
		c := e.dial("/chat/r", true)
		c.send(map[string]any{"type": "join", "name": fmt.Sprint("joiner", i)})
		w := c.expect("welcome")
		seen := map[string]bool{}
		last := uint64(0)
		for _, m := range w.History {
			seen[m.ID] = true
			last = max(last, parseID(t, m.ID))
		}
		// The next events must all be new messages, in increasing order.
		for range 20 {
			ev := c.until("message")
			assert.True(t, "not in the welcome", !seen[ev.ID])
			id := parseID(t, ev.ID)
			assert.True(t, "after the welcome's history", id > last)
			last = id
		}
	}
	close(stop)
	wg.Wait()
}

// heldBroker holds the publication of the message "held" until release
// is closed: the message is in the store, on its way to the members.
type heldBroker struct {
	*wsroom.MemoryBroker
	publishing chan struct{}
	release    chan struct{}
}

func (b heldBroker) Publish(ctx context.Context, p *wsroom.Publication) error {
	if p.Type == wsroom.PubMessage && p.Message.Text == "held" {
		close(b.publishing)
		<-b.release
	}
	return b.MemoryBroker.Publish(ctx, p)
}

// TestWelcomeThenLiveNoDuplicate: a message stored but not yet delivered
// when a member joins is in the member's welcome; its delivery, arriving
// after the welcome, is not sent to that member again.
func TestWelcomeThenLiveNoDuplicate(t *testing.T) {
	t.Parallel()
	b := heldBroker{wsroom.NewMemoryBroker(), make(chan struct{}), make(chan struct{})}
	e := newEnv(t, &wsroom.Options{Broker: b})
	ann, _ := e.join("r", "ann")
	ann.say("held")
	<-b.publishing
	bob, w := e.join("r", "bob")
	assert.Equal(t, "the stored message is in bob's welcome", 1, len(w.History))
	close(b.release)
	assert.Equal(t, "ann gets it live", "held", ann.until("message").Text)
	ann.say("next")
	assert.Equal(t, "bob's next message is the next one", "next", bob.until("message").Text)
}

func parseID(t testing.TB, s string) uint64 {
	t.Helper()
	v, err := strconv.ParseUint(s, 10, 64)
	assert.Success(t, err)
	return v
}

func TestNameRules(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{MaxNameLength: 8, RateLimit: -1})
	_, _ = e.join("r", "taken")
	c := e.dial("/chat/r", true)
	for _, tc := range []struct{ name, code string }{
		{"", "bad_name"},
		{"   ", "bad_name"},
		{"toolongname", "bad_name"},
		{"a\x00b", "bad_name"},
		{"bell\a", "bad_name"},
		{"evil\u202Eoc", "bad_name"}, // right-to-left override
		{"zero\u200Bw", "bad_name"},  // zero-width space
		{"line\u2028x", "bad_name"},
		{"taken", "name_taken"},
	} {
		c.send(map[string]any{"type": "join", "name": tc.name})
		ev := c.expect("error")
		assert.Equal(t, "code for "+strconv.Quote(tc.name), tc.code, ev.Code)
	}
	// Not joined yet: messages and history are refused.
	c.say("hello?")
	assert.Equal(t, "message before join", "not_joined", c.expect("error").Code)
	c.send(map[string]any{"type": "history"})
	assert.Equal(t, "history before join", "not_joined", c.expect("error").Code)
	// Surrounding space is trimmed; a retry works.
	c.send(map[string]any{"type": "join", "name": "  黄晓安 "})
	assert.Equal(t, "trimmed", "黄晓安", c.expect("welcome").Name)
	c.send(map[string]any{"type": "join", "name": "again"})
	assert.Equal(t, "second join", "already_joined", c.expect("error").Code)
}

func TestNameReleasedOnLeave(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a, _ := e.join("r", "alice")
	assert.Success(t, a.c.Close(websocket.StatusNormalClosure, ""))
	ctx := testContext(t)
	for {
		names, err := e.srv.Room("r").Members(ctx)
		assert.Success(t, err)
		if len(names) == 0 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal("name not released")
		case <-time.After(5 * time.Millisecond):
		}
	}
	_, w := e.join("r", "alice")
	assert.Equal(t, "rejoined", "alice", w.Name)
}

func TestBadRequests(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: -1})
	c, _ := e.join("r", "alice")
	for _, frame := range []string{
		`not json`,
		`[1,2]`,
		`{"type":"message"}`,
		`{"type":"message","text":""}`,
		`{"type":"dance"}`,
		`{"text":"no type"}`,
		`{"type":"history","before":"abc"}`,
		`{"type":"history","limit":-1}`,
		`{"type":"message","text":"x"} trailing`,
	} {
		c.sendText(frame)
		ev := c.expect("error")
		assert.Equal(t, "code for "+frame, "bad_request", ev.Code)
		assert.True(t, "message for "+frame, ev.Message != "")
	}
	// The connection survives bad requests.
	c.say("still here")
	assert.Equal(t, "after bad requests", "still here", c.expect("message").Text)
}

func TestBinaryRelay(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a, _ := e.join("canvas", "alice")
	b, _ := e.join("canvas", "bob")
	a.expect("join")
	plain := e.dial("/chat/canvas", false)
	plain.sendText("login:carol")
	plain.line() // members present
	plain.line() // its own arrival
	data := []byte{0, 1, 2, 0xff, 0xfe}
	assert.Success(t, a.c.Write(testContext(t), websocket.MessageBinary, data))
	for _, c := range []*client{b, plain} {
		typ, got, err := c.readFrame(testContext(t))
		for err == nil && typ != websocket.MessageBinary {
			typ, got, err = c.readFrame(testContext(t))
		}
		assert.Success(t, err)
		assert.Equal(t, "relayed as binary", data, got)
	}
	// The sender does not get its own binary message back.
	a.say("marker")
	for {
		typ, got, err := a.readFrame(testContext(t))
		assert.Success(t, err)
		assert.True(t, "no binary echo to the sender", typ == websocket.MessageText)
		if strings.Contains(string(got), "marker") {
			break
		}
	}
}

func TestRoomTornDownWhenEmpty(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a, _ := e.join("r1", "alice")
	b, _ := e.join("r2", "bob")
	assert.Equal(t, "rooms", int64(2), e.srv.Stats().Rooms)
	assert.Equal(t, "members", int64(2), e.srv.Stats().Members)
	assert.Success(t, a.c.Close(websocket.StatusNormalClosure, ""))
	assert.Success(t, b.c.Close(websocket.StatusNormalClosure, ""))
	waitFor(t, "rooms torn down", func() bool {
		s := e.srv.Stats()
		return s.Rooms == 0 && s.Members == 0 && s.Connections == 0
	})
}

// waitFor polls cond until it holds, within the test timeout.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx := testContext(t)
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v", what, testTimeout)
		case <-time.After(2 * time.Millisecond):
		}
	}
}

func TestPresenceCoalescedInBigRooms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{PresenceThreshold: 3, PresenceInterval: 50 * time.Millisecond})
	a, _ := e.join("big", "a")
	b, _ := e.join("big", "b")
	assert.Equal(t, "small room: a join event", "b", a.expect("join").Name)
	var cs []*client
	for i := range 5 {
		c, w := e.join("big", fmt.Sprint("n", i))
		assert.True(t, "welcome lists the joiner", len(w.Members) == 3+i)
		cs = append(cs, c)
	}
	// a sees the five arrivals as presence events only, each name once.
	joined := map[string]int{}
	for len(joined) < 5 {
		ev := a.expect("presence")
		for _, n := range ev.Joined {
			joined[n]++
		}
		assert.Equal(t, "left", 0, len(ev.Left))
	}
	for n, k := range joined {
		assert.Equal(t, "announced once: "+n, 1, k)
	}
	// A message flushes pending presence first, so nobody speaks before
	// their arrival is told.
	assert.Success(t, cs[4].c.Close(websocket.StatusNormalClosure, ""))
	waitFor(t, "n4 gone", func() bool { return e.srv.Stats().Members == 6 })
	b.say("after n4 left")
	var ev evt
	for ev = a.expect("presence"); len(ev.Left) == 0; ev = a.expect("presence") {
	}
	assert.Equal(t, "left", []string{"n4"}, ev.Left)
	assert.Equal(t, "then the message", "after n4 left", a.expect("message").Text)
}

func TestConcurrentSendersSameOrderForAll(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: -1})
	const members, each = 6, 40
	cs := make([]*client, members)
	for i := range members {
		cs[i], _ = e.join("r", fmt.Sprint("m", i))
	}
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range each {
				b := fmt.Appendf(nil, `{"type":"message","text":"%d-%d"}`, i, k)
				if err := c.c.Write(context.Background(), websocket.MessageText, b); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var first []string
	for i, c := range cs {
		var got []string
		for len(got) < members*each {
			ev, err := c.next()
			assert.Success(t, err)
			if ev.Type == "message" {
				got = append(got, ev.ID+":"+ev.Text)
			}
		}
		if i == 0 {
			first = got
			continue
		}
		assert.Equal(t, fmt.Sprint("order seen by member ", i), first, got)
	}
	// Per sender, messages arrive in the order sent.
	next := make([]int, members)
	for _, s := range first {
		var sender, k int
		fmt.Sscanf(s[strings.Index(s, ":")+1:], "%d-%d", &sender, &k)
		assert.Equal(t, "sender order", next[sender], k)
		next[sender]++
	}
}
