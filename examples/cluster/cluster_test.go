package cluster

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// The lease of the servers these tests run, short so that a crash shows
// within seconds (the defaults are 15s and 5s).
const (
	lease        = 3 * time.Second
	leaseRefresh = time.Second
)

// serverArgs are the flags of a chat server on the combo's backends.
func serverArgs(c combo) []string {
	return append(c.args(), "-lease", lease.String(), "-lease-refresh", leaseRefresh.String())
}

// newRoom names a room no other test (nor an earlier run, on the shared
// servers) uses.
func newRoom(prefix string) string { return prefix + "-" + rand.Text()[:10] }

// chatBinary builds examples/chat once for the tests of one top-level test.
type chatBinary struct {
	dir   string
	build func() (string, error)
}

func newChatBinary(t *testing.T) *chatBinary {
	b := &chatBinary{dir: t.TempDir()}
	b.build = sync.OnceValues(func() (string, error) { return buildChat(filepath.Join(b.dir, "chat")) })
	return b
}

func (b *chatBinary) path(t testing.TB) string {
	t.Helper()
	bin, err := b.build()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestCluster runs three chat servers, A, B and C, on each pair of shared
// backends, and checks that they form one chat.
func TestCluster(t *testing.T) {
	t.Parallel()
	chat := newChatBinary(t)
	for _, c := range combos() {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := openCombo(t, c)
			bin := chat.path(t)
			var a, bs, cs *server
			var wg sync.WaitGroup // the servers start together
			for i, s := range []**server{&a, &bs, &cs} {
				wg.Go(func() { *s = startServer(t, bin, string(rune('A'+i)), serverArgs(c)...) })
			}
			wg.Wait()
			if a == nil || bs == nil || cs == nil {
				t.FailNow()
			}
			t.Run("TwoServers", func(t *testing.T) { testTwoServers(t, a, bs) })
			t.Run("NameRace", func(t *testing.T) { testNameRace(t, a, bs) })
			t.Run("RoomAPI", func(t *testing.T) { testRoomAPI(t, b, a, bs) })
			t.Run("ThreeServers", func(t *testing.T) { testThreeServers(t, a, bs, cs) })
			t.Run("CrashedServer", func(t *testing.T) { testCrashedServer(t, a, bs, cs) })
		})
	}
}

// testTwoServers: members on A and B see each other's joins, messages,
// binary messages and leaves, and newcomers on either get the same
// history.
func testTwoServers(t *testing.T, a, b *server) {
	ctx := testContext(t, 30*time.Second)
	room := newRoom("two")
	alice, w := connect(ctx, t, a, room, "alice")
	if !slices.Equal(w.Members, []string{"alice"}) || w.Count != 1 || len(w.History) != 0 {
		t.Fatalf("alice's welcome: %+v", w)
	}
	bob, w := connect(ctx, t, b, room, "bob")
	if !slices.Equal(w.Members, []string{"alice", "bob"}) || w.Count != 2 {
		t.Fatalf("bob's welcome lists %v (count %d), want alice and bob", w.Members, w.Count)
	}
	alice.next(ctx, "bob's join", func(it item) bool { return it.ev.Type == "join" && it.ev.Name == "bob" })

	// Messages, both ways; the sender gets its own back, with the same ID.
	bob.say(ctx, "hello from B")
	m1, own := alice.message(ctx, "hello from B"), bob.message(ctx, "hello from B")
	if m1.From != "bob" || m1.ID == "" || m1.ID != own.ID {
		t.Fatalf("alice got %+v, bob got %+v", m1, own)
	}
	alice.say(ctx, "hello from A")
	if m := bob.message(ctx, "hello from A"); m.From != "alice" || m.ID != alice.message(ctx, "hello from A").ID {
		t.Fatalf("bob got %+v", m)
	}
	// One member's messages arrive in the order it sent them.
	for i := range 10 {
		bob.say(ctx, "burst "+strconv.Itoa(i))
	}
	var last uint64
	for i := range 10 {
		m := alice.message(ctx, "burst "+strconv.Itoa(i)) // next() only looks forward: order is checked
		id := parseID(t, m.ID)
		if id <= last {
			t.Fatalf("burst %d has ID %d after %d", i, id, last)
		}
		last = id
	}

	// Binary messages, both ways; a sender does not get its own back.
	fromB := bytes.Repeat([]byte{0, 1, 2, 0xff}, 1000)
	bob.sendBinary(ctx, fromB)
	if got := alice.binary(ctx); !bytes.Equal(got, fromB) {
		t.Fatalf("alice got %d bytes of binary, want bob's %d", len(got), len(fromB))
	}
	fromA := []byte("a canvas stroke")
	alice.sendBinary(ctx, fromA)
	if got := bob.binary(ctx); !bytes.Equal(got, fromA) {
		t.Fatalf("bob got binary %q, want %q", got, fromA)
	}
	bob.say(ctx, "after the binaries")
	alice.message(ctx, "after the binaries")
	bob.message(ctx, "after the binaries")
	for _, c := range []*client{alice, bob} {
		if n := countBinary(c); n != 1 {
			t.Fatalf("%s received %d binary messages, want 1 (the other's)", c.name, n)
		}
	}

	// Newcomers on A and on B get the same history: every message, in ID
	// order.
	carol, wc := connect(ctx, t, a, room, "carol")
	dave, wd := connect(ctx, t, b, room, "dave")
	if !slices.Equal(wc.History, wd.History) {
		t.Fatalf("history differs:\n on A %v\n on B %v", wc.History, wd.History)
	}
	if n := len(wc.History); n != 13 || wc.History[0].Text != "hello from B" || wc.History[n-1].Text != "after the binaries" {
		t.Fatalf("welcome history: %v", wc.History)
	}
	if !slices.Equal(wd.Members, []string{"alice", "bob", "carol", "dave"}) {
		t.Fatalf("dave's welcome lists %v", wd.Members)
	}
	if h := alice.history(ctx); !slices.Equal(h, wc.History) {
		t.Fatalf("alice's history page %v differs from carol's welcome %v", h, wc.History)
	}

	// Leaves, both ways.
	bob.leave()
	for _, c := range []*client{alice, carol, dave} {
		c.next(ctx, "bob's leave", func(it item) bool { return it.ev.Type == "leave" && it.ev.Name == "bob" })
	}
	alice.leave()
	for _, c := range []*client{carol, dave} {
		c.next(ctx, "alice's leave", func(it item) bool { return it.ev.Type == "leave" && it.ev.Name == "alice" })
	}
	for _, c := range []*client{carol, dave} {
		if got := c.members(ctx); !slices.Equal(got, []string{"carol", "dave"}) {
			t.Fatalf("%s on %s: members %v after the leaves", c.name, c.srv.name, got)
		}
	}
}

func countBinary(c *client) int {
	n := 0
	for _, it := range c.all() {
		if it.bin != nil {
			n++
		}
	}
	return n
}

func parseID(t testing.TB, s string) uint64 {
	t.Helper()
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("message ID %q: %v", s, err)
	}
	return id
}

// testNameRace: a name held on A is refused on B, and when two clients
// race for one name on A and B at once, exactly one wins.
func testNameRace(t *testing.T, a, b *server) {
	ctx := testContext(t, 60*time.Second)
	room := newRoom("race")
	connect(ctx, t, a, room, "alice")
	dup := dial(ctx, t, b, room)
	if e := dup.tryJoin(ctx, "alice"); e.Type != "error" || e.Code != "name_taken" {
		t.Fatalf("alice's name on B: got %+v, want a name_taken error", e)
	}
	dup.join(ctx, "alice2") // the connection stays open: try another name

	wins := map[string]int{}
	for i := range 20 {
		name := "racer-" + strconv.Itoa(i)
		ca, cb := dial(ctx, t, a, room), dial(ctx, t, b, room)
		ca.name, cb.name = name, name
		join := []byte(fmt.Sprintf(`{"type":"join","name":%q}`, name))
		start := make(chan struct{})
		errs := make(chan error, 2)
		for _, c := range []*client{ca, cb} {
			go func() {
				<-start
				errs <- c.conn.Write(ctx, websocket.MessageText, join)
			}()
		}
		close(start)
		for range 2 {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		answer := func(it item) bool { return it.ev.Type == "welcome" || it.ev.Type == "error" }
		ea, eb := ca.next(ctx, "an answer", answer).ev, cb.next(ctx, "an answer", answer).ev
		switch {
		case ea.Type == "welcome" && eb.Type == "error" && eb.Code == "name_taken":
			wins["A"]++
		case eb.Type == "welcome" && ea.Type == "error" && ea.Code == "name_taken":
			wins["B"]++
		default:
			t.Fatalf("race %d for %q: A answered %+v, B answered %+v; want one welcome and one name_taken", i, name, ea, eb)
		}
		ca.close()
		cb.close()
	}
	t.Logf("20 races for a name: won on A %d times, on B %d times", wins["A"], wins["B"])
}

// testRoomAPI: Room.Broadcast, BroadcastBinary and Remove, called on a
// wsroom.Server in this process that shares the backends, reach members
// on A and B.
func testRoomAPI(t *testing.T, be *backends, a, b *server) {
	ctx := testContext(t, 30*time.Second)
	srv, err := wsroom.New(&wsroom.Options{Store: be.store, Broker: be.broker, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	room := newRoom("api")
	r := srv.Room(room)
	alice, _ := connect(ctx, t, a, room, "alice")
	bob, _ := connect(ctx, t, b, room, "bob")
	alice.next(ctx, "bob's join", func(it item) bool { return it.ev.Type == "join" && it.ev.Name == "bob" })
	if names, err := r.Members(ctx); err != nil || !slices.Equal(names, []string{"alice", "bob"}) {
		t.Fatalf("Room.Members: %v, %v", names, err)
	}

	m, err := r.Broadcast(ctx, wsroom.Message{Text: "maintenance at noon"})
	if err != nil || m.ID == 0 {
		t.Fatalf("Broadcast: %+v, %v", m, err)
	}
	for _, c := range []*client{alice, bob} {
		if e := c.message(ctx, "maintenance at noon"); e.ID != strconv.FormatUint(m.ID, 10) || e.From != "" {
			t.Fatalf("%s got %+v, want ID %d from the server", c.name, e, m.ID)
		}
	}
	if _, err := r.Broadcast(ctx, wsroom.Message{From: "bot", Text: "psst, bob"}, wsroom.To("bob")); err != nil {
		t.Fatal(err)
	}
	if e := bob.message(ctx, "psst, bob"); e.From != "bot" || e.ID != "" {
		t.Fatalf("bob got %+v, want a message from bot without an ID", e)
	}
	if _, err := r.Broadcast(ctx, wsroom.Message{Text: "not for alice"}, wsroom.Except("alice")); err != nil {
		t.Fatal(err)
	}
	bob.message(ctx, "not for alice")
	png := []byte("\x89PNG\r\n\x1a\n not really")
	if err := r.BroadcastBinary(ctx, png); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*client{alice, bob} {
		if got := c.binary(ctx); !bytes.Equal(got, png) {
			t.Fatalf("%s got binary %q", c.name, got)
		}
	}
	if _, err := r.Broadcast(ctx, wsroom.Message{Text: "sentinel"}); err != nil {
		t.Fatal(err)
	}
	alice.message(ctx, "sentinel")
	for _, it := range alice.all() {
		if it.ev.Text == "psst, bob" || it.ev.Text == "not for alice" {
			t.Fatalf("alice received %+v, addressed away from her", it.ev)
		}
	}

	if err := r.Remove(ctx, "bob", "spam"); err != nil {
		t.Fatal(err)
	}
	code, reason, err := bob.closed(ctx)
	if err != nil || code != websocket.StatusPolicyViolation || reason != "spam" {
		t.Fatalf("bob's connection ended with %d %q (%v), want 1008 \"spam\"", code, reason, err)
	}
	alice.next(ctx, "bob's leave", func(it item) bool { return it.ev.Type == "leave" && it.ev.Name == "bob" })
	if names, err := r.Members(ctx); err != nil || !slices.Equal(names, []string{"alice"}) {
		t.Fatalf("Room.Members after the removal: %v, %v", names, err)
	}
	if err := r.Remove(ctx, "nobody", ""); !errors.Is(err, wsroom.ErrNotMember) {
		t.Fatalf("Remove of a stranger: %v, want ErrNotMember", err)
	}
	if !alice.isOpen() {
		t.Fatal("alice's connection ended")
	}
}

// testThreeServers: a message from a member of each server reaches the
// members of the other two, with one ID everywhere.
func testThreeServers(t *testing.T, srvs ...*server) {
	ctx := testContext(t, 30*time.Second)
	room := newRoom("three")
	var cs []*client
	for _, s := range srvs {
		c, _ := connect(ctx, t, s, room, "on-"+s.name)
		cs = append(cs, c)
	}
	for _, c := range cs[:2] { // the first two hear everyone arrive
		for _, o := range cs {
			if o != c {
				c.seen(ctx, o.name+"'s arrival", func(it item) bool {
					return it.ev.Type == "join" && it.ev.Name == o.name || slices.Contains(it.ev.Members, o.name)
				})
			}
		}
	}
	for _, c := range cs {
		c.say(ctx, "hello from "+c.srv.name)
	}
	for _, from := range cs {
		ids := map[string]bool{}
		for _, c := range cs {
			// The messages of different servers may arrive in any order.
			e := c.seen(ctx, "the message from "+from.srv.name, func(it item) bool { return it.ev.Text == "hello from "+from.srv.name })
			if e.ev.From != from.name {
				t.Fatalf("%s got %+v", c.name, e.ev)
			}
			ids[e.ev.ID] = true
		}
		if len(ids) != 1 {
			t.Fatalf("the message from %s has IDs %v", from.srv.name, slices.Collect(maps.Keys(ids)))
		}
	}
}

// testCrashedServer kills B with SIGKILL: its members leave every member
// list within the lease, and the members on A and C hear each departure
// once.
func testCrashedServer(t *testing.T, a, b, c *server) {
	ctx := testContext(t, 60*time.Second)
	room := newRoom("crash")
	alice, _ := connect(ctx, t, a, room, "alice")
	carol, _ := connect(ctx, t, c, room, "carol")
	bobs := []string{"bob1", "bob2", "bob3"}
	var onB []*client
	for _, name := range bobs {
		c, _ := connect(ctx, t, b, room, name)
		onB = append(onB, c)
	}
	for _, cl := range []*client{alice, carol} {
		for _, name := range bobs {
			cl.seen(ctx, name+"'s join", func(it item) bool { return it.ev.Type == "join" && it.ev.Name == name })
		}
	}
	all := append([]string{"alice"}, append(slices.Clone(bobs), "carol")...)
	if got := alice.members(ctx); !slices.Equal(got, all) {
		t.Fatalf("members before the crash: %v", got)
	}

	b.kill9()
	killed := time.Now()
	for _, c := range onB {
		if code, _, err := c.closed(ctx); err != nil || code != -1 {
			t.Fatalf("%s's connection to the crashed server ended with %d (%v), want no close frame", c.name, code, err)
		}
	}
	want := []string{"alice", "carol"}
	if err := poll(ctx, 100*time.Millisecond, func() bool { return slices.Equal(alice.members(ctx), want) }); err != nil {
		t.Fatalf("B's members still listed on A %v after the crash: %v", time.Since(killed), alice.members(ctx))
	}
	gone := time.Since(killed)
	// B refreshed its lease at most leaseRefresh before the crash, for
	// lease: its names end at most lease after it. Slack for a loaded
	// machine.
	if gone > lease+time.Second {
		t.Fatalf("B's members left the member list %v after the crash, want within the lease (%v)", gone, lease)
	}
	heard := func() bool {
		for _, cl := range []*client{alice, carol} {
			d := cl.departures()
			for _, name := range bobs {
				if d[name] == 0 {
					return false
				}
			}
		}
		return true
	}
	if err := poll(ctx, 50*time.Millisecond, heard); err != nil {
		t.Fatalf("departures heard after %v: alice %v, carol %v", time.Since(killed), alice.departures(), carol.departures())
	}
	announced := time.Since(killed)
	// Two more refreshes of A and C: nobody announces them again.
	if err := pause(ctx, 2*leaseRefresh+500*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	for _, cl := range []*client{alice, carol} {
		d := cl.departures()
		for _, name := range bobs {
			if d[name] != 1 {
				t.Fatalf("%s heard %s leave %d times: %v", cl.name, name, d[name], cl.dump())
			}
		}
		if d["alice"]+d["carol"] != 0 {
			t.Fatalf("%s heard a live member leave: %v", cl.name, d)
		}
	}
	_, w := connect(ctx, t, c, room, "dave")
	if !slices.Equal(w.Members, []string{"alice", "carol", "dave"}) {
		t.Fatalf("a newcomer after the crash is told of %v", w.Members)
	}
	t.Logf("B killed: its members gone from the list after %v, their departures announced after %v (lease %v, refresh %v)",
		gone.Round(time.Millisecond), announced.Round(time.Millisecond), lease, leaseRefresh)
}
