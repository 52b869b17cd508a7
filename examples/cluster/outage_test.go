package cluster

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// The lease of the servers in the outage tests: an outage of a store
// shorter than the lease minus two refreshes leaves the members
// connected; a longer one costs the servers their leases. A call to an
// unreachable Redis takes about 2s to fail (go-redis dials again and
// again), so the Redis servers get a longer one.
const (
	faultLease      = 5 * time.Second
	redisFaultLease = 8 * time.Second
	faultRefresh    = 500 * time.Millisecond
)

func faultArgs(store, broker string, lease time.Duration) []string {
	return []string{"-store", store, "-broker", broker, "-lease", lease.String(), "-lease-refresh", faultRefresh.String()}
}

// TestOutages stops a backend under two or three chat servers and starts
// it again, on private backend servers.
func TestOutages(t *testing.T) {
	t.Parallel()
	chat := newChatBinary(t)
	t.Run("redis", func(t *testing.T) { t.Parallel(); testRedisOutage(t, chat) })
	t.Run("postgres", func(t *testing.T) { t.Parallel(); testPostgresOutage(t, chat) })
	t.Run("nats", func(t *testing.T) { t.Parallel(); testNATSOutage(t, chat) })
}

// testRedisOutage kills Redis (store and broker) twice: for less than a
// lease, then for longer.
func testRedisOutage(t *testing.T, chat *chatBinary) {
	rd, url := startRedis(t)
	bin := chat.path(t)
	a := startServer(t, bin, "A", faultArgs(url, url, redisFaultLease)...)
	b := startServer(t, bin, "B", faultArgs(url, url, redisFaultLease)...)
	ctx := testContext(t, 90*time.Second)
	room := newRoom("redis-outage")
	alice, _ := connect(ctx, t, a, room, "alice")
	bob, _ := connect(ctx, t, b, room, "bob")
	dave, _ := connect(ctx, t, b, room, "dave")
	alice.seen(ctx, "dave's join", joinOf("dave"))
	alice.say(ctx, "before")
	bob.message(ctx, "before")

	// A short outage: a message is refused with unavailable (go-redis
	// tries to dial for about 2s first), the members stay, and the servers
	// recover by themselves. dave leaves meanwhile: his departure can be
	// neither recorded nor published until Redis is back.
	failed := b.logs.count("wsroom: announce failed")
	rd.kill()
	down := time.Now()
	dave.leave()
	expectUnavailable(ctx, t, alice, "message", func() { alice.say(ctx, "while Redis is down") })
	if err := poll(ctx, 50*time.Millisecond, func() bool { return b.logs.count("wsroom: announce failed") > failed }); err != nil {
		t.Fatalf("B did not try to announce dave's departure: %v", err)
	}
	rd.start()
	up := time.Now()
	m := sendUntilAcked(ctx, t, alice, "after the short outage")
	bob.message(ctx, m.Text)
	t.Logf("short outage: down %v; a message went through %v after Redis was back", up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	// dave's name is released at B's next lease refresh, and his
	// departure published then: members whose server's subscription is
	// back by then hear it (at most once); the member list, from the
	// store, is right either way.
	want := []string{"alice", "bob"}
	var got []string
	if err := poll(ctx, 100*time.Millisecond, func() bool { got = alice.members(ctx); return slices.Equal(got, want) }); err != nil {
		t.Fatalf("members after the outage: %v, want %v", got, want)
	}
	for _, c := range []*client{alice, bob} {
		if n := c.departures()["dave"]; n > 1 {
			t.Fatalf("%s heard dave leave %d times", c.name, n)
		}
	}
	t.Logf("dave's departure in the outage: alice heard it %d times, bob %d", alice.departures()["dave"], bob.departures()["dave"])
	for _, c := range []*client{alice, bob} {
		if !c.isOpen() {
			t.Fatalf("%s's connection ended in an outage shorter than the lease", c.name)
		}
	}

	// A frozen Redis (SIGSTOP: connections stay open, nothing answers): a
	// message waits for BackendTimeout (5s) and is refused; nothing hangs.
	rd.freeze()
	frozen := time.Now()
	expectUnavailable(ctx, t, bob, "message", func() { bob.say(ctx, "while Redis is frozen") })
	a.alive(ctx)
	rd.thaw()
	thawed := time.Now()
	m = sendUntilAcked(ctx, t, bob, "after the freeze")
	alice.message(ctx, m.Text)
	t.Logf("frozen %v; a message went through %v after the thaw", thawed.Sub(frozen).Round(time.Millisecond), time.Since(thawed).Round(time.Millisecond))

	// An outage longer than the lease: everything that needs Redis is
	// refused, the servers go on serving, and once Redis is back they find
	// their leases lost and close their members with 1012.
	carol := dial(ctx, t, a, room)
	carol.name = "carol"
	members := []*client{alice, bob}
	var settle func()
	leaseLost(ctx, t, redisFaultLease, func() { settle = burst(ctx, t, 3, alice, bob); rd.kill() }, func() {
		settle()
		expectUnavailable(ctx, t, alice, "message", func() { alice.say(ctx, "while Redis is down") })
		expectUnavailable(ctx, t, bob, "binary", func() { bob.sendBinary(ctx, []byte("stroke")) })
		expectUnavailable(ctx, t, alice, "members", func() { alice.write(ctx, map[string]any{"type": "members"}) })
		expectUnavailable(ctx, t, bob, "history", func() { bob.write(ctx, map[string]any{"type": "history"}) })
		expectUnavailable(ctx, t, carol, "join", func() { carol.write(ctx, map[string]any{"type": "join", "name": "carol"}) })
		a.alive(ctx)
		b.alive(ctx)
	}, rd.start, members)
	joinUntilWelcome(ctx, t, carol, "carol") // refused in the outage, the connection stayed open
	rejoined := rejoin(ctx, t, members)
	for _, c := range rejoined {
		c.seen(ctx, "carol in the room", func(it item) bool { return joinOf("carol")(it) || slices.Contains(it.ev.Members, "carol") })
	}
	m = sendUntilAcked(ctx, t, rejoined[1], "after the long outage")
	rejoined[0].message(ctx, m.Text)
	carol.message(ctx, m.Text)
	a.alive(ctx)
	b.alive(ctx)
	checkAcked(ctx, t, carol, append(append(members, rejoined...), carol))
}

// testPostgresOutage crashes the PostgreSQL store (the broker is NATS)
// twice: for less than a lease, then for longer.
func testPostgresOutage(t *testing.T, chat *chatBinary) {
	pg, store := startPostgres(t)
	_, broker := startNATS(t)
	bin := chat.path(t)
	a := startServer(t, bin, "A", faultArgs(store, broker, faultLease)...)
	b := startServer(t, bin, "B", faultArgs(store, broker, faultLease)...)
	ctx := testContext(t, 90*time.Second)
	room := newRoom("pg-outage")
	alice, _ := connect(ctx, t, a, room, "alice")
	bob, _ := connect(ctx, t, b, room, "bob")
	carol, _ := connect(ctx, t, b, room, "carol")
	alice.seen(ctx, "carol's join", joinOf("carol"))
	alice.say(ctx, "before")
	bob.message(ctx, "before")

	settle := burst(ctx, t, 10, alice, bob)
	pg.crash(ctx)
	down := time.Now()
	settle()
	expectUnavailable(ctx, t, alice, "message", func() { alice.say(ctx, "while PostgreSQL is down") })
	expectUnavailable(ctx, t, bob, "history", func() { bob.write(ctx, map[string]any{"type": "history"}) })
	expectUnavailable(ctx, t, alice, "members", func() { alice.write(ctx, map[string]any{"type": "members"}) })
	dave := dial(ctx, t, a, room)
	dave.name = "dave"
	expectUnavailable(ctx, t, dave, "join", func() { dave.write(ctx, map[string]any{"type": "join", "name": "dave"}) })
	// The broker is up: binary messages, which are not stored, still go.
	alice.sendBinary(ctx, []byte("stroke"))
	if got := string(bob.binary(ctx)); got != "stroke" {
		t.Fatalf("bob got binary %q", got)
	}
	// A departure is announced although its name cannot be released yet.
	carol.leave()
	alice.seen(ctx, "carol's leave", leaveOf("carol"))
	a.alive(ctx)
	b.alive(ctx)
	pg.start(ctx)
	up := time.Now()
	m := sendUntilAcked(ctx, t, alice, "after the short outage")
	bob.message(ctx, m.Text)
	t.Logf("short outage: down %v; a message went through %v after PostgreSQL was back", up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	for _, c := range []*client{alice, bob} {
		if !c.isOpen() {
			t.Fatalf("%s's connection ended in an outage shorter than the lease", c.name)
		}
	}
	// carol's release is retried with the lease's refresh.
	want := []string{"alice", "bob"}
	var got []string
	if err := poll(ctx, 100*time.Millisecond, func() bool { got = alice.members(ctx); return slices.Equal(got, want) }); err != nil {
		t.Fatalf("members after the outage: %v, want %v", got, want)
	}
	joinUntilWelcome(ctx, t, dave, "dave")

	members := []*client{alice, bob, dave}
	leaseLost(ctx, t, faultLease, func() { settle = burst(ctx, t, 5, alice, bob); pg.crash(ctx) }, func() {
		settle()
		expectUnavailable(ctx, t, dave, "message", func() { dave.say(ctx, "while PostgreSQL is down") })
		a.alive(ctx)
		b.alive(ctx)
	}, func() { pg.start(ctx) }, members)
	rejoined := rejoin(ctx, t, members)
	m = sendUntilAcked(ctx, t, rejoined[2], "after the long outage")
	rejoined[0].message(ctx, m.Text)
	rejoined[1].message(ctx, m.Text)
	a.alive(ctx)
	b.alive(ctx)
	checkAcked(ctx, t, rejoined[0], append(members, rejoined...))
}

// testNATSOutage kills the NATS broker under three servers on a
// PostgreSQL store, and one of the servers with it: the messages sent
// during the outage reach every member once the broker is back, those of
// the dead server from the store.
//
// The store is private too: servers that share a store must share the
// broker, as every server of a store reaps the leases of the others and
// announces their departures through its own broker.
func testNATSOutage(t *testing.T, chat *chatBinary) {
	nd, broker := startNATS(t)
	_, store := startPostgres(t)
	bin := chat.path(t)
	var srvs []*server
	for _, name := range []string{"A", "B", "C"} {
		srvs = append(srvs, startServer(t, bin, name, faultArgs(store, broker, faultLease)...))
	}
	a, b, c := srvs[0], srvs[1], srvs[2]
	ctx := testContext(t, 90*time.Second)
	// In room1 messages were exchanged before the outage; in room2 none.
	room1, room2 := newRoom("nats-outage"), newRoom("nats-outage-quiet")
	alice, _ := connect(ctx, t, a, room1, "alice")
	bob, _ := connect(ctx, t, b, room1, "bob")
	carol, _ := connect(ctx, t, c, room1, "carol")
	dave, _ := connect(ctx, t, a, room2, "dave")
	erin, _ := connect(ctx, t, b, room2, "erin")
	frank, _ := connect(ctx, t, c, room2, "frank")
	for _, cl := range []*client{alice, bob} {
		cl.seen(ctx, "carol's join", joinOf("carol"))
	}
	for _, cl := range []*client{dave, erin} {
		cl.seen(ctx, "frank's join", joinOf("frank"))
	}
	alice.say(ctx, "before")
	for _, cl := range []*client{alice, bob, carol} {
		cl.message(ctx, "before")
	}

	burst(ctx, t, 10, alice, bob) // their answers come once the broker is back
	nd.kill()
	down := time.Now()
	// Messages are stored and their publications buffered: no error.
	alice.say(ctx, "down from A")
	bob.say(ctx, "down from B")
	carol.say(ctx, "down from C")
	frank.say(ctx, "down from C, quiet room")
	// A join to a room this server has no members in waits for the
	// broker, for at most BackendTimeout (5s), and is refused.
	gina := dial(ctx, t, a, newRoom("nats-outage-new"))
	gina.name = "gina"
	expectUnavailable(ctx, t, gina, "join in a new room", func() { gina.write(ctx, map[string]any{"type": "join", "name": "gina"}) })
	// A join to a room it has members in goes through.
	hank, hankWelcome := connect(ctx, t, a, room1, "hank")
	// C dies with its buffered publications: carol's and frank's messages
	// are only in the store.
	c.kill9()
	a.alive(ctx)
	b.alive(ctx)
	nd.start()
	up := time.Now()

	// hank joined after they were stored: his welcome may hold them, and
	// then they are not delivered to him again.
	for _, cl := range []*client{alice, bob, hank} {
		for _, text := range []string{"down from A", "down from B", "down from C"} {
			if cl == hank && slices.ContainsFunc(hankWelcome.History, func(m message) bool { return m.Text == text }) {
				continue
			}
			cl.seen(ctx, text, textOf(text))
		}
	}
	for _, cl := range []*client{dave, erin} {
		cl.seen(ctx, "frank's message", textOf("down from C, quiet room"))
	}
	t.Logf("NATS down %v; the messages sent meanwhile arrived %v after it was back", up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
	m := sendUntilAcked(ctx, t, bob, "after the outage")
	alice.message(ctx, m.Text)
	hank.message(ctx, m.Text)
	// C's members leave within its lease.
	for _, cl := range []*client{alice, bob} {
		cl.seen(ctx, "carol's departure", departureOf("carol"))
	}
	for _, cl := range []*client{dave, erin} {
		cl.seen(ctx, "frank's departure", departureOf("frank"))
	}
	// Each message once, no error, nobody closed.
	if err := pause(ctx, time.Second); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{alice, bob, hank, dave, erin} {
		seen := map[string]int{}
		if cl == hank {
			for _, m := range hankWelcome.History {
				seen[m.Text]++
			}
		}
		for _, it := range cl.all() {
			if it.ev.Type == "message" {
				seen[it.ev.Text]++
			}
			if it.ev.Type == "error" {
				t.Errorf("%s got an error event: %+v", cl.name, it.ev)
			}
		}
		for text, n := range seen {
			if n != 1 {
				t.Errorf("%s received %q %d times", cl.name, text, n)
			}
		}
		if !cl.isOpen() {
			t.Errorf("%s's connection ended", cl.name)
		}
	}
	checkAcked(ctx, t, alice, []*client{alice, bob, hank})
	checkAcked(ctx, t, dave, []*client{dave, erin})
}

func joinOf(name string) func(item) bool {
	return func(it item) bool { return it.ev.Type == "join" && it.ev.Name == name }
}

func leaveOf(name string) func(item) bool {
	return func(it item) bool { return it.ev.Type == "leave" && it.ev.Name == name }
}

func departureOf(name string) func(item) bool {
	return func(it item) bool {
		return it.ev.Type == "leave" && it.ev.Name == name || it.ev.Type == "presence" && slices.Contains(it.ev.Left, name)
	}
}

func textOf(text string) func(item) bool {
	return func(it item) bool { return it.ev.Type == "message" && it.ev.Text == text }
}

// burst has each client send n messages without waiting, so that some
// are on their way through the servers when the test stops a backend. It
// returns a function that waits until each client has its answer to each
// (its message back, or an error event), and moves past them.
func burst(ctx context.Context, t *testing.T, n int, cs ...*client) (settle func()) {
	t.Helper()
	for i := range n {
		for _, c := range cs {
			c.say(ctx, fmt.Sprintf("burst %d from %s", i, c.name))
		}
	}
	return func() {
		t.Helper()
		for _, c := range cs {
			mine := "from " + c.name
			for range n {
				c.next(ctx, "an answer to the burst", func(it item) bool {
					return it.ev.Type == "error" || it.ev.Type == "message" && it.ev.From == c.name && strings.HasSuffix(it.ev.Text, mine)
				})
			}
		}
	}
}

// expectUnavailable does what and expects an unavailable error event for
// it within BackendTimeout (5s) and some slack: never a hang.
func expectUnavailable(ctx context.Context, t *testing.T, c *client, what string, do func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(ctx, 8*time.Second)
	defer cancel()
	start := time.Now()
	do()
	e := c.next(ctx, "an error for the "+what, func(it item) bool { return it.ev.Type == "error" }).ev
	if e.Code != "unavailable" {
		t.Fatalf("%s: the %s got %+v, want an unavailable error", c.name, what, e)
	}
	t.Logf("%s on %s: %s refused as unavailable in %v", c.name, c.srv.name, what, time.Since(start).Round(time.Millisecond))
}

// sendUntilAcked sends text (numbered: a failed attempt may still have
// been stored) until the sender gets its message back with an ID; an
// unavailable error means try again shortly.
func sendUntilAcked(ctx context.Context, t *testing.T, c *client, text string) event {
	t.Helper()
	for attempt := 1; ; attempt++ {
		try := text + " #" + strconv.Itoa(attempt)
		c.say(ctx, try)
		it := c.next(ctx, "the message back, or an error", func(it item) bool {
			return it.ev.Type == "message" && it.ev.Text == try || it.ev.Type == "error"
		})
		if it.ev.Type == "message" {
			if it.ev.ID == "" {
				t.Fatalf("%s got its message back without an ID: %+v", c.name, it.ev)
			}
			return it.ev
		}
		if it.ev.Code != "unavailable" {
			t.Fatalf("%s: %+v", c.name, it.ev)
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			t.Fatalf("%s: no message went through: %v", c.name, err)
		}
	}
}

// joinUntilWelcome joins as name, again after each unavailable error.
func joinUntilWelcome(ctx context.Context, t *testing.T, c *client, name string) event {
	t.Helper()
	for {
		e := c.tryJoin(ctx, name)
		switch {
		case e.Type == "welcome":
			return e
		case e.Code != "unavailable":
			t.Fatalf("%s joining: %+v", name, e)
		}
		if err := pause(ctx, 200*time.Millisecond); err != nil {
			t.Fatalf("%s could not join: %v", name, err)
		}
	}
}

// leaseLost stops a store, runs during, lets the outage last longer than
// the lease and starts the store again: every member is closed with 1012
// (service restart) once the store is back, and not before.
func leaseLost(ctx context.Context, t *testing.T, lease time.Duration, stop, during, start func(), members []*client) {
	t.Helper()
	stop()
	down := time.Now()
	during()
	if err := pause(ctx, time.Until(down.Add(lease+time.Second))); err != nil {
		t.Fatal(err)
	}
	for _, c := range members {
		if !c.isOpen() {
			t.Fatalf("%s's connection ended while the store was down: %s", c.name, c.dump())
		}
	}
	start()
	up := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for _, c := range members {
		code, reason, err := c.closed(cctx)
		if err != nil {
			t.Fatal(err)
		}
		if code != websocket.StatusServiceRestart {
			t.Fatalf("%s's connection ended with %d %q, want 1012 (the lease was lost)", c.name, code, reason)
		}
	}
	t.Logf("long outage: down %v; the members were closed with 1012 within %v of the restart", up.Sub(down).Round(time.Millisecond), time.Since(up).Round(time.Millisecond))
}

// rejoin reconnects each member, as a client does after 1012: to the
// same server, resuming after the last message ID it saw. The welcome
// holds what it missed.
func rejoin(ctx context.Context, t *testing.T, members []*client) []*client {
	t.Helper()
	var out []*client
	for _, old := range members {
		last := ""
		for _, m := range old.acked() {
			if last == "" || parseID(t, m.ID) > parseID(t, last) {
				last = m.ID
			}
		}
		var c *client
		if err := poll(ctx, 200*time.Millisecond, func() bool {
			var err error
			c, err = tryDial(ctx, t, old.srv, old.room, "")
			return err == nil
		}); err != nil {
			t.Fatalf("%s could not reconnect: %v", old.name, err)
		}
		c.name = old.name
		for {
			join := map[string]any{"type": "join", "name": old.name}
			if last != "" {
				join["since"] = last
			}
			c.write(ctx, join)
			e := c.next(ctx, "a welcome", func(it item) bool { return it.ev.Type == "welcome" || it.ev.Type == "error" }).ev
			if e.Type == "welcome" {
				if e.Gap {
					t.Fatalf("%s resumed after %s with a gap: %+v", old.name, last, e)
				}
				break
			}
			if e.Code != "unavailable" && e.Code != "name_taken" {
				t.Fatalf("%s rejoining: %+v", old.name, e)
			}
			if err := pause(ctx, 200*time.Millisecond); err != nil {
				t.Fatalf("%s could not rejoin: %v", old.name, err)
			}
		}
		out = append(out, c)
	}
	for _, c := range out {
		for _, o := range out {
			c.seen(ctx, o.name+" in the room", func(it item) bool {
				return it.ev.Type == "join" && it.ev.Name == o.name || slices.Contains(it.ev.Members, o.name)
			})
		}
	}
	return out
}

// checkAcked reads the room's history through reader and checks that
// every message the clients received with an ID is in it, unchanged, and
// that the history's IDs increase.
func checkAcked(ctx context.Context, t *testing.T, reader *client, clients []*client) {
	t.Helper()
	h := reader.history(ctx)
	byID := map[string]message{}
	var last uint64
	for _, m := range h {
		id := parseID(t, m.ID)
		if id <= last {
			t.Fatalf("history out of order: %d after %d", id, last)
		}
		last = id
		byID[m.ID] = m
	}
	acked := map[string]message{}
	for _, c := range clients {
		for _, m := range c.acked() {
			acked[m.ID] = m
		}
	}
	for id, m := range acked {
		if got, ok := byID[id]; !ok || got != m {
			t.Errorf("acknowledged message %+v: in the history as %+v (found: %v)", m, got, ok)
		}
	}
	t.Logf("%d acknowledged messages, all in the history of %d", len(acked), len(h))
	if len(acked) == 0 {
		t.Fatal("no message was acknowledged: the check checked nothing")
	}
}
