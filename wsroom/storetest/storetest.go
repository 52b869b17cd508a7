// Package storetest is the conformance suite for wsroom.Store
// implementations. Every backend runs it against a real server:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, history int) wsroom.Store {
//			return newStoreForTest(t, history) // keeps history messages per room
//		})
//	}
//
// The suite uses fresh, randomly named rooms and server ids, so a backend may
// share one database between runs. Lease tests wait for leases of a few
// hundred milliseconds to end: a backend must measure leases with
// millisecond precision. Refresh hands over the ended reservations of every
// server, so the tests that count them run one at a time, before the
// others; a store that other programs refresh at the same time (another
// test binary on the same database or key prefix) may take them: give the
// suite a database or prefix of its own.
package storetest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// NewStore returns the store under test, keeping history messages per
// room. The suite calls it once per subtest.
type NewStore func(t *testing.T, history int) wsroom.Store

// Run runs the conformance suite.
func Run(t *testing.T, newStore NewStore) {
	tests := []struct {
		name string
		fn   func(*testing.T, NewStore)
	}{
		{"ReserveAndMembers", testReserveAndMembers},
		{"MembersPages", testMembersPages},
		{"ReserveTaken", testReserveTaken},
		{"ReserveFull", testReserveFull},
		{"ReserveReplace", testReserveReplace},
		{"ReleaseFrees", testReleaseFrees},
		{"ReleaseOnlyOwn", testReleaseOnlyOwn},
		{"RoomsAreSeparate", testRoomsAreSeparate},
		{"ConcurrentReserveOneWinner", testConcurrentReserveOneWinner},
		{"ConcurrentReserveRespectsMax", testConcurrentReserveRespectsMax},
		{"LeaseRefreshKeeps", testLeaseRefreshKeeps},
		{"LeaseExpires", testLeaseExpires},
		{"ExpiredReturnedOnce", testExpiredReturnedOnce},
		{"ExpiredTakenOverNotReturned", testExpiredTakenOverNotReturned},
		{"LeaseLost", testLeaseLost},
		{"AppendAssignsIncreasingIDs", testAppendAssignsIncreasingIDs},
		{"AppendKeepsFields", testAppendKeepsFields},
		{"Recent", testRecent},
		{"Before", testBefore},
		{"After", testAfter},
		{"HistoryIsBounded", testHistoryIsBounded},
		{"ConcurrentAppend", testConcurrentAppend},
		{"VisibleInOrder", testVisibleInOrder},
		{"ManyGoroutines", testManyGoroutines},
		{"OddRoomNames", testOddRoomNames},
		{"CanceledContext", testCanceledContext},
	}
	// These count the reservations Refresh hands over, which any Refresh
	// of a parallel test could take: they run first, one at a time.
	alone := map[string]bool{"LeaseExpires": true, "ExpiredReturnedOnce": true, "ExpiredTakenOverNotReturned": true, "LeaseLost": true}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !alone[tt.name] {
				t.Parallel()
			}
			tt.fn(t, newStore)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func random() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// room returns a room name no other test or run uses.
func room(t *testing.T) string { return "storetest-" + t.Name() + "-" + random() }

// server returns a server (lease) id no other test or run uses.
func server() string { return "srv-" + random() }

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// lease is long enough that no test outlives it by accident.
const lease = time.Minute

// owner is a connection of a server.
type owner struct {
	s    wsroom.Store
	srv  string
	conn string
}

func newOwner(s wsroom.Store, srv string) owner { return owner{s, srv, "c-" + random()} }

func (o owner) res(room, name string) wsroom.Reservation {
	return wsroom.Reservation{Room: room, Name: name, Owner: wsroom.Owner{Server: o.srv, Conn: o.conn}}
}

func (o owner) reserve(t *testing.T, room, name string, opts wsroom.ReserveOptions) (wsroom.Owner, error) {
	t.Helper()
	if opts.Lease == 0 {
		opts.Lease = lease
	}
	return o.s.Reserve(ctx(t), o.res(room, name), opts)
}

// take reserves a name that must be free.
func (o owner) take(t *testing.T, room, name string, max int) {
	t.Helper()
	replaced, err := o.reserve(t, room, name, wsroom.ReserveOptions{Max: max})
	must(t, err)
	if !replaced.IsZero() {
		t.Fatalf("reserve %q: replaced %+v, want nobody", name, replaced)
	}
}

func (o owner) release(t *testing.T, room, name string) error {
	t.Helper()
	return o.s.Release(ctx(t), o.res(room, name))
}

func members(t *testing.T, s wsroom.Store, r string) []string {
	t.Helper()
	names, total, err := s.Members(ctx(t), r, "", 0)
	must(t, err)
	if names == nil {
		names = []string{}
	}
	if total != len(names) {
		t.Fatalf("Members of %q: %d names but a total of %d", r, len(names), total)
	}
	return names
}

func equal[T any](t *testing.T, what string, want, got []T, eq func(a, b T) bool) {
	t.Helper()
	if !slices.EqualFunc(want, got, eq) {
		t.Fatalf("%s: want %v, got %v", what, want, got)
	}
}

func eqString(a, b string) bool { return a == b }

func testReserveAndMembers(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	equal(t, "empty room", []string{}, members(t, s, r), eqString)
	o := newOwner(s, server())
	for _, n := range []string{"carol", "alice", "bob"} {
		newOwner(s, o.srv).take(t, r, n, 0)
	}
	equal(t, "members, sorted", []string{"alice", "bob", "carol"}, members(t, s, r), eqString)
}

func testMembersPages(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	srv := server()
	var want []string
	for i := range 25 {
		n := fmt.Sprintf("m%02d", i)
		newOwner(s, srv).take(t, r, n, 0)
		want = append(want, n)
	}
	var got []string
	after := ""
	for page := 0; ; page++ {
		names, total, err := s.Members(ctx(t), r, after, 10)
		must(t, err)
		if total != 25 {
			t.Fatalf("page %d: total %d, want 25", page, total)
		}
		if len(names) == 0 {
			break
		}
		if len(names) > 10 {
			t.Fatalf("page %d: %d names, limit 10", page, len(names))
		}
		got = append(got, names...)
		after = names[len(names)-1]
	}
	equal(t, "paged members", want, got, eqString)
	names, _, err := s.Members(ctx(t), r, "m04x", 3)
	must(t, err)
	equal(t, "after a name that is not a member", []string{"m05", "m06", "m07"}, names, eqString)
}

func testReserveTaken(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	a, b := newOwner(s, server()), newOwner(s, server())
	a.take(t, r, "alice", 0)
	if _, err := b.reserve(t, r, "alice", wsroom.ReserveOptions{}); !errors.Is(err, wsroom.ErrNameTaken) {
		t.Fatalf("another server: want ErrNameTaken, got %v", err)
	}
	if _, err := newOwner(s, a.srv).reserve(t, r, "alice", wsroom.ReserveOptions{}); !errors.Is(err, wsroom.ErrNameTaken) {
		t.Fatalf("another connection of the same server: want ErrNameTaken, got %v", err)
	}
	// The holder may reserve again: it replaces nobody.
	a.take(t, r, "alice", 0)
	// Names are compared exactly: another spelling is another name.
	b.take(t, r, "Alice", 0)
	equal(t, "members", []string{"Alice", "alice"}, members(t, s, r), eqString)
}

func testReserveFull(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	srv := server()
	a, b, c := newOwner(s, srv), newOwner(s, srv), newOwner(s, srv)
	a.take(t, r, "a", 2)
	b.take(t, r, "b", 2)
	if _, err := c.reserve(t, r, "c", wsroom.ReserveOptions{Max: 2}); !errors.Is(err, wsroom.ErrRoomFull) {
		t.Fatalf("third reserve with max 2: want ErrRoomFull, got %v", err)
	}
	// A taken name is reported as taken even in a full room.
	if _, err := c.reserve(t, r, "a", wsroom.ReserveOptions{Max: 2}); !errors.Is(err, wsroom.ErrNameTaken) {
		t.Fatalf("taken name in a full room: want ErrNameTaken, got %v", err)
	}
	must(t, a.release(t, r, "a"))
	c.take(t, r, "c", 2)
	equal(t, "members", []string{"b", "c"}, members(t, s, r), eqString)
}

func testReserveReplace(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	old, young := newOwner(s, server()), newOwner(s, server())
	old.take(t, r, "alice", 0)
	replaced, err := young.reserve(t, r, "alice", wsroom.ReserveOptions{Replace: true, Max: 1})
	must(t, err)
	if want := old.res(r, "alice").Owner; replaced != want {
		t.Fatalf("replace: replaced %+v, want %+v", replaced, want)
	}
	equal(t, "members", []string{"alice"}, members(t, s, r), eqString)
	if err := old.release(t, r, "alice"); !errors.Is(err, wsroom.ErrNotMember) {
		t.Fatalf("release by the replaced holder: want ErrNotMember, got %v", err)
	}
	equal(t, "members after the old holder's release", []string{"alice"}, members(t, s, r), eqString)
	must(t, young.release(t, r, "alice"))
	equal(t, "members after the new holder's release", []string{}, members(t, s, r), eqString)
}

func testReleaseFrees(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	a := newOwner(s, server())
	a.take(t, r, "alice", 0)
	must(t, a.release(t, r, "alice"))
	equal(t, "after release", []string{}, members(t, s, r), eqString)
	a.take(t, r, "alice", 0)
	if err := a.release(t, r, "nobody"); !errors.Is(err, wsroom.ErrNotMember) {
		t.Fatalf("release of a name never reserved: want ErrNotMember, got %v", err)
	}
	if err := a.release(t, room(t), "nobody"); !errors.Is(err, wsroom.ErrNotMember) {
		t.Fatalf("release in an unknown room: want ErrNotMember, got %v", err)
	}
}

func testReleaseOnlyOwn(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	a := newOwner(s, server())
	a.take(t, r, "alice", 0)
	// A late release from another server or another connection frees
	// nothing.
	for _, other := range []owner{newOwner(s, server()), newOwner(s, a.srv), {s, server(), a.conn}} {
		if err := other.release(t, r, "alice"); !errors.Is(err, wsroom.ErrNotMember) {
			t.Fatalf("release by %+v: want ErrNotMember, got %v", other, err)
		}
	}
	equal(t, "members", []string{"alice"}, members(t, s, r), eqString)
	must(t, a.release(t, r, "alice"))
	if err := a.release(t, r, "alice"); !errors.Is(err, wsroom.ErrNotMember) {
		t.Fatalf("second release: want ErrNotMember, got %v", err)
	}
}

func testRoomsAreSeparate(t *testing.T, newStore NewStore) {
	s, r1, r2 := newStore(t, 10), room(t), room(t)
	a := newOwner(s, server())
	a.take(t, r1, "alice", 0)
	a.take(t, r2, "alice", 0)
	must(t, a.release(t, r1, "alice"))
	equal(t, "room 2 keeps its member", []string{"alice"}, members(t, s, r2), eqString)
	m1, err := s.Append(ctx(t), r1, wsroom.Message{From: "alice", Text: "in one", Time: time.Now()})
	must(t, err)
	got, err := s.Recent(ctx(t), r2, 10)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("room 2 sees room 1's history: %v", got)
	}
	got, err = s.Recent(ctx(t), r1, 10)
	must(t, err)
	if len(got) != 1 || got[0].ID != m1.ID {
		t.Fatalf("room 1 history: %v", got)
	}
}

func testConcurrentReserveOneWinner(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = newOwner(s, server()).reserve(t, r, "same", wsroom.ReserveOptions{})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, wsroom.ErrNameTaken):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d goroutines reserved the same name, want 1", won)
	}
}

func testConcurrentReserveRespectsMax(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	const n, max = 24, 5
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = newOwner(s, server()).reserve(t, r, fmt.Sprintf("m%02d", i), wsroom.ReserveOptions{Max: max})
		}()
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, wsroom.ErrRoomFull):
			t.Fatalf("unexpected error: %v", err)
		}
	}
	if won != max || len(members(t, s, r)) != max {
		t.Fatalf("%d reserved (%d members), want %d", won, len(members(t, s, r)), max)
	}
}

// shortLease is long enough for a few calls to any backend, short enough
// to wait for.
const shortLease = 400 * time.Millisecond

// waitLease waits until a lease granted now has surely ended.
func waitLease(t *testing.T) {
	t.Helper()
	select {
	case <-time.After(shortLease + 300*time.Millisecond):
	case <-ctx(t).Done():
		t.Fatal("test context ended")
	}
}

func testLeaseRefreshKeeps(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	a := newOwner(s, server())
	_, err := a.reserve(t, r, "alice", wsroom.ReserveOptions{Lease: shortLease})
	must(t, err)
	deadline := time.Now().Add(3 * shortLease)
	tick := time.NewTicker(shortLease / 4)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		<-tick.C
		expired, err := s.Refresh(ctx(t), a.srv, shortLease)
		must(t, err)
		for _, e := range expired {
			if e.Owner.Server == a.srv {
				t.Fatalf("a refreshed lease expired: %+v", e)
			}
		}
	}
	equal(t, "members of a refreshed lease", []string{"alice"}, members(t, s, r), eqString)
}

func testLeaseExpires(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	crashed, live := newOwner(s, server()), newOwner(s, server())
	for _, n := range []string{"a", "b"} {
		_, err := newOwner(s, crashed.srv).reserve(t, r, n, wsroom.ReserveOptions{Lease: shortLease})
		must(t, err)
	}
	live.take(t, r, "c", 3)
	waitLease(t)
	// Gone for Members and Reserve before anyone called Refresh.
	equal(t, "members once the lease ended", []string{"c"}, members(t, s, r), eqString)
	live2 := newOwner(s, live.srv)
	live2.take(t, r, "d", 3)
	// An expired holder is replaced, not reported as taken; the room is not
	// full of expired members.
	replaced, err := newOwner(s, live.srv).reserve(t, r, "a", wsroom.ReserveOptions{Max: 3})
	must(t, err)
	if replaced.Server != crashed.srv {
		t.Fatalf("taking over an expired name: replaced %+v, want a holder of server %q", replaced, crashed.srv)
	}
	equal(t, "members", []string{"a", "c", "d"}, members(t, s, r), eqString)
}

func testExpiredReturnedOnce(t *testing.T, newStore NewStore) {
	s := newStore(t, 10)
	r1, r2 := room(t), room(t)
	crashed := server()
	want := map[wsroom.Reservation]bool{}
	for _, p := range [][2]string{{r1, "a"}, {r1, "b"}, {r2, "a"}} {
		o := newOwner(s, crashed)
		_, err := o.reserve(t, p[0], p[1], wsroom.ReserveOptions{Lease: shortLease})
		must(t, err)
		want[o.res(p[0], p[1])] = true
	}
	waitLease(t)
	// Several servers refresh at once, again and again; each expired
	// reservation reaches exactly one of them, once.
	var mu sync.Mutex
	got := map[wsroom.Reservation]int{}
	var wg sync.WaitGroup
	for range 4 {
		srv := server()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				expired, err := s.Refresh(ctx(t), srv, lease)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, e := range expired {
					if e.Owner.Server == crashed {
						got[e]++
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for res := range want {
		if got[res] != 1 {
			t.Errorf("expired reservation %+v returned %d times, want once", res, got[res])
		}
	}
	for res, n := range got {
		if !want[res] {
			t.Errorf("Refresh returned %+v (%d times), which was never reserved", res, n)
		}
	}
}

func testExpiredTakenOverNotReturned(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	crashed := newOwner(s, server())
	_, err := crashed.reserve(t, r, "alice", wsroom.ReserveOptions{Lease: shortLease})
	must(t, err)
	_, err = newOwner(s, crashed.srv).reserve(t, r, "bob", wsroom.ReserveOptions{Lease: shortLease})
	must(t, err)
	waitLease(t)
	live := newOwner(s, server())
	if _, err := live.reserve(t, r, "alice", wsroom.ReserveOptions{}); err != nil {
		t.Fatalf("taking over an expired name: %v", err)
	}
	// alice never left the room: only bob's departure is due.
	var names []string
	for range 3 {
		expired, err := s.Refresh(ctx(t), live.srv, lease)
		must(t, err)
		for _, e := range expired {
			if e.Room == r {
				names = append(names, e.Name)
			}
		}
	}
	equal(t, "expired reservations returned", []string{"bob"}, names, eqString)
}

func testLeaseLost(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	slow := newOwner(s, server())
	_, err := slow.reserve(t, r, "alice", wsroom.ReserveOptions{Lease: shortLease})
	must(t, err)
	waitLease(t)
	// Another server reaps the lease; the slow server learns it lost it.
	_, err = s.Refresh(ctx(t), server(), lease)
	must(t, err)
	if _, err := s.Refresh(ctx(t), slow.srv, lease); !errors.Is(err, wsroom.ErrLeaseExpired) {
		t.Fatalf("refresh of a lease that ended: want ErrLeaseExpired, got %v", err)
	}
	if _, err := newOwner(s, slow.srv).reserve(t, r, "bob", wsroom.ReserveOptions{}); !errors.Is(err, wsroom.ErrLeaseExpired) {
		t.Fatalf("reserve under a lease that ended: want ErrLeaseExpired, got %v", err)
	}
	equal(t, "members", []string{}, members(t, s, r), eqString)
	// Under a new lease id the server works again.
	newOwner(s, server()).take(t, r, "alice", 0)

	// A lease that ended without anyone reaping it is lost too.
	slow2 := newOwner(s, server())
	_, err = slow2.reserve(t, r, "carol", wsroom.ReserveOptions{Lease: shortLease})
	must(t, err)
	waitLease(t)
	expired, err := s.Refresh(ctx(t), slow2.srv, lease)
	if !errors.Is(err, wsroom.ErrLeaseExpired) {
		t.Fatalf("refresh of a lease that ended, unreaped: want ErrLeaseExpired, got %v", err)
	}
	if !slices.Contains(expired, slow2.res(r, "carol")) {
		// Another parallel test's Refresh may have reaped it; then it is
		// gone from the members all the same.
		if slices.Contains(members(t, s, r), "carol") {
			t.Fatalf("an expired reservation is still a member")
		}
	}
	// A server that never reserved gets a lease.
	if _, err := s.Refresh(ctx(t), server(), lease); err != nil {
		t.Fatalf("first refresh of a new server: %v", err)
	}
}

func appendN(t *testing.T, s wsroom.Store, r string, n int) []wsroom.Message {
	t.Helper()
	out := make([]wsroom.Message, 0, n)
	for i := range n {
		m, err := s.Append(ctx(t), r, wsroom.Message{From: "alice", Text: fmt.Sprintf("m%d", i), Time: time.Now()})
		must(t, err)
		out = append(out, m)
	}
	return out
}

func eqMsg(a, b wsroom.Message) bool {
	return a.ID == b.ID && a.From == b.From && a.Text == b.Text &&
		a.Time.Truncate(time.Millisecond).Equal(b.Time.Truncate(time.Millisecond))
}

func testAppendAssignsIncreasingIDs(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	ms := appendN(t, s, r, 5)
	for i := range ms {
		if ms[i].ID == 0 {
			t.Fatalf("message %d has no ID", i)
		}
		if i > 0 && ms[i].ID <= ms[i-1].ID {
			t.Fatalf("IDs do not increase: %d then %d", ms[i-1].ID, ms[i].ID)
		}
	}
}

func testAppendKeepsFields(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	when := time.Date(2026, 11, 21, 10, 30, 0, 123_000_000, time.UTC)
	in := []wsroom.Message{
		{From: "alice", Text: "plain", Time: when},
		{From: "", Text: "from the server", Time: when.Add(time.Second)},
		{From: "黄晓安", Text: "你好, \"quotes\", \\ and \n new lines 🎉", Time: when.Add(2 * time.Second)},
	}
	var want []wsroom.Message
	for _, m := range in {
		got, err := s.Append(ctx(t), r, m)
		must(t, err)
		m.ID = got.ID
		if !eqMsg(m, got) {
			t.Fatalf("Append returned %+v for %+v", got, m)
		}
		want = append(want, m)
	}
	got, err := s.Recent(ctx(t), r, 10)
	must(t, err)
	equal(t, "recent", want, got, eqMsg)
}

func testRecent(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	got, err := s.Recent(ctx(t), r, 5)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("empty room: %v", got)
	}
	ms := appendN(t, s, r, 6)
	got, err = s.Recent(ctx(t), r, 3)
	must(t, err)
	equal(t, "last 3, oldest first", ms[3:], got, eqMsg)
	got, err = s.Recent(ctx(t), r, 100)
	must(t, err)
	equal(t, "all", ms, got, eqMsg)
	got, err = s.Recent(ctx(t), r, 0)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("limit 0: %v", got)
	}
}

func testBefore(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 20), room(t)
	ms := appendN(t, s, r, 10)
	got, err := s.Before(ctx(t), r, ms[6].ID, 3)
	must(t, err)
	equal(t, "page before #6", ms[3:6], got, eqMsg)
	got, err = s.Before(ctx(t), r, ms[2].ID, 5)
	must(t, err)
	equal(t, "short first page", ms[:2], got, eqMsg)
	got, err = s.Before(ctx(t), r, ms[0].ID, 5)
	must(t, err)
	if len(got) != 0 {
		t.Fatalf("before the first: %v", got)
	}
	got, err = s.Before(ctx(t), r, ms[9].ID+1000, 2)
	must(t, err)
	equal(t, "before a future ID", ms[8:], got, eqMsg)
	// Paging backwards visits every message once.
	var all []wsroom.Message
	cursor := ms[9].ID + 1
	for {
		page, err := s.Before(ctx(t), r, cursor, 4)
		must(t, err)
		if len(page) == 0 {
			break
		}
		all = append(page, all...)
		cursor = page[0].ID
	}
	equal(t, "paged", ms, all, eqMsg)
}

func testAfter(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 20), room(t)
	ms := appendN(t, s, r, 6)
	got, complete, err := s.After(ctx(t), r, ms[2].ID, 10)
	must(t, err)
	equal(t, "after #2", ms[3:], got, eqMsg)
	if !complete {
		t.Fatal("after #2 with room to spare: want complete")
	}
	got, complete, err = s.After(ctx(t), r, ms[5].ID, 10)
	must(t, err)
	if len(got) != 0 || !complete {
		t.Fatalf("after the newest: got %v, complete %v; want none, complete", got, complete)
	}
	got, complete, err = s.After(ctx(t), r, ms[0].ID, 2)
	must(t, err)
	equal(t, "after #0, limit 2: the most recent 2", ms[4:], got, eqMsg)
	if complete {
		t.Fatal("cut by limit: want incomplete")
	}
	got, complete, err = s.After(ctx(t), r, ms[5].ID+1000, 10)
	must(t, err)
	if len(got) != 0 || complete {
		t.Fatalf("after an ID never issued: got %v, complete %v; want none, incomplete", got, complete)
	}
}

func testHistoryIsBounded(t *testing.T, newStore NewStore) {
	const bound = 5
	s, r := newStore(t, bound), room(t)
	ms := appendN(t, s, r, bound+4)
	got, err := s.Recent(ctx(t), r, 100)
	must(t, err)
	equal(t, "kept", ms[len(ms)-bound:], got, eqMsg)
	got, complete, err := s.After(ctx(t), r, ms[1].ID, 100)
	must(t, err)
	equal(t, "after a dropped message", ms[len(ms)-bound:], got, eqMsg)
	if complete {
		t.Fatal("messages after #1 were dropped: want incomplete")
	}
	got, complete, err = s.After(ctx(t), r, ms[len(ms)-bound-1].ID, 100)
	must(t, err)
	equal(t, "after the newest dropped message", ms[len(ms)-bound:], got, eqMsg)
	if !complete {
		t.Fatal("nothing after the newest dropped message is missing: want complete")
	}
}

func testConcurrentAppend(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 1000), room(t)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	ids := make([][]uint64, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m, err := s.Append(ctx(t), r, wsroom.Message{From: fmt.Sprint(w), Text: fmt.Sprint(i), Time: time.Now()})
				if err != nil {
					t.Error(err)
					return
				}
				if n := len(ids[w]); n > 0 && m.ID <= ids[w][n-1] {
					t.Errorf("writer %d: ID %d after %d", w, m.ID, ids[w][n-1])
				}
				ids[w] = append(ids[w], m.ID)
			}
		}()
	}
	wg.Wait()
	seen := map[uint64]bool{}
	for _, l := range ids {
		for _, id := range l {
			if seen[id] {
				t.Fatalf("ID %d issued twice", id)
			}
			seen[id] = true
		}
	}
	got, err := s.Recent(ctx(t), r, 1000)
	must(t, err)
	if len(got) != writers*each {
		t.Fatalf("history holds %d messages, want %d", len(got), writers*each)
	}
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("history out of order at %d: %d then %d", i, got[i-1].ID, got[i].ID)
		}
	}
}

func testVisibleInOrder(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10000), room(t)
	const writers, each = 8, 40
	var wg sync.WaitGroup
	var mu sync.Mutex
	appended := map[uint64]bool{}
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				m, err := s.Append(ctx(t), r, wsroom.Message{From: fmt.Sprint(w), Text: fmt.Sprint(i), Time: time.Now()})
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				appended[m.ID] = true
				mu.Unlock()
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	// A reader resumes after the highest ID it saw, again and again, while
	// the writers race: it must never skip a message that becomes visible
	// later with a lower ID.
	seen := map[uint64]bool{}
	var last uint64
	read := func() {
		msgs, _, err := s.After(ctx(t), r, last, 10000)
		must(t, err)
		for _, m := range msgs {
			if m.ID <= last {
				t.Fatalf("After(%d) returned %d", last, m.ID)
			}
			if seen[m.ID] {
				t.Fatalf("After returned %d twice", m.ID)
			}
			seen[m.ID] = true
			last = m.ID
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
		}
		read()
	}
	read()
	if t.Failed() {
		return
	}
	var missed []uint64
	for id := range appended {
		if !seen[id] {
			missed = append(missed, id)
		}
	}
	if len(missed) > 0 {
		slices.Sort(missed)
		t.Fatalf("a reader resuming after the highest ID it saw skipped %d of %d messages (IDs visible out of order), e.g. %v", len(missed), len(appended), missed[:min(5, len(missed))])
	}
}

func testManyGoroutines(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 50), room(t)
	srv := server()
	const workers, rounds = 32, 20
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			o := newOwner(s, srv)
			name := fmt.Sprintf("w%02d", w)
			for i := range rounds {
				if _, err := o.reserve(t, r, name, wsroom.ReserveOptions{Max: workers}); err != nil {
					t.Errorf("reserve: %v", err)
					return
				}
				if _, err := s.Append(ctx(t), r, wsroom.Message{From: name, Text: fmt.Sprint(i), Time: time.Now()}); err != nil {
					t.Errorf("append: %v", err)
					return
				}
				if _, _, err := s.Members(ctx(t), r, "", 10); err != nil {
					t.Errorf("members: %v", err)
					return
				}
				if _, err := s.Recent(ctx(t), r, 10); err != nil {
					t.Errorf("recent: %v", err)
					return
				}
				if w%4 == 0 {
					if _, err := s.Refresh(ctx(t), srv, lease); err != nil {
						t.Errorf("refresh: %v", err)
						return
					}
				}
				if err := o.release(t, r, name); err != nil {
					t.Errorf("release: %v", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	equal(t, "members at the end", []string{}, members(t, s, r), eqString)
	got, err := s.Recent(ctx(t), r, 100)
	must(t, err)
	if len(got) != 50 {
		t.Fatalf("history keeps %d messages, want its bound of 50", len(got))
	}
}

func testOddRoomNames(t *testing.T, newStore NewStore) {
	s := newStore(t, 10)
	base := room(t)
	o := newOwner(s, server())
	for _, r := range []string{base + ":a:b", base + "{x}", base + " 聊天室 🎉", base + "*?[]", base + "%_'\"", base + "/a/../b"} {
		o.take(t, r, "name: {x} * %_", 0)
		equal(t, "members of "+r, []string{"name: {x} * %_"}, members(t, s, r), eqString)
		m, err := s.Append(ctx(t), r, wsroom.Message{From: "x", Text: r, Time: time.Now()})
		must(t, err)
		got, err := s.Recent(ctx(t), r, 10)
		must(t, err)
		equal(t, "history of "+r, []wsroom.Message{m}, got, eqMsg)
	}
	if got := members(t, s, base+":a"); len(got) != 0 {
		t.Fatalf("a prefix of a room name is another room: %v", got)
	}
}

func testCanceledContext(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	o := newOwner(s, server())
	if _, err := s.Reserve(c, o.res(r, "alice"), wsroom.ReserveOptions{Lease: lease}); err == nil {
		t.Error("Reserve with a canceled context succeeded")
	}
	if _, err := s.Append(c, r, wsroom.Message{Text: "x", Time: time.Now()}); err == nil {
		t.Error("Append with a canceled context succeeded")
	}
	if _, _, err := s.Members(c, r, "", 0); err == nil {
		t.Error("Members with a canceled context succeeded")
	}
	if _, err := s.Recent(c, r, 1); err == nil {
		t.Error("Recent with a canceled context succeeded")
	}
	if _, err := s.Refresh(c, o.srv, lease); err == nil {
		t.Error("Refresh with a canceled context succeeded")
	}
}
