// Package storetest is the conformance suite for wsroom.Store
// implementations. Every backend runs it against a real server:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, history int) wsroom.Store {
//			return newStoreForTest(t, history) // keeps history messages per room
//		})
//	}
//
// The suite uses fresh, randomly named rooms, so a backend may share one
// database between runs.
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
		{"ReserveTaken", testReserveTaken},
		{"ReserveFull", testReserveFull},
		{"ReleaseFrees", testReleaseFrees},
		{"RoomsAreSeparate", testRoomsAreSeparate},
		{"ConcurrentReserveOneWinner", testConcurrentReserveOneWinner},
		{"ConcurrentReserveRespectsMax", testConcurrentReserveRespectsMax},
		{"AppendAssignsIncreasingIDs", testAppendAssignsIncreasingIDs},
		{"AppendKeepsFields", testAppendKeepsFields},
		{"Recent", testRecent},
		{"Before", testBefore},
		{"After", testAfter},
		{"HistoryIsBounded", testHistoryIsBounded},
		{"ConcurrentAppend", testConcurrentAppend},
		{"OddRoomNames", testOddRoomNames},
		{"CanceledContext", testCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, newStore)
		})
	}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

// room returns a room name no other test or run uses.
func room(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "storetest-" + t.Name() + "-" + hex.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

func members(t *testing.T, s wsroom.Store, r string) []string {
	t.Helper()
	names, err := s.Members(ctx(t), r)
	must(t, err)
	if names == nil {
		names = []string{}
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
	for _, n := range []string{"carol", "alice", "bob"} {
		must(t, s.Reserve(ctx(t), r, n, 0))
	}
	equal(t, "members, sorted", []string{"alice", "bob", "carol"}, members(t, s, r), eqString)
}

func testReserveTaken(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	must(t, s.Reserve(ctx(t), r, "alice", 0))
	err := s.Reserve(ctx(t), r, "alice", 0)
	if !errors.Is(err, wsroom.ErrNameTaken) {
		t.Fatalf("second reserve: want ErrNameTaken, got %v", err)
	}
	// Names are compared exactly: another spelling is another name.
	must(t, s.Reserve(ctx(t), r, "Alice", 0))
	equal(t, "members", []string{"Alice", "alice"}, members(t, s, r), eqString)
}

func testReserveFull(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	must(t, s.Reserve(ctx(t), r, "a", 2))
	must(t, s.Reserve(ctx(t), r, "b", 2))
	if err := s.Reserve(ctx(t), r, "c", 2); !errors.Is(err, wsroom.ErrRoomFull) {
		t.Fatalf("third reserve with max 2: want ErrRoomFull, got %v", err)
	}
	// A taken name is reported as taken even in a full room.
	if err := s.Reserve(ctx(t), r, "a", 2); !errors.Is(err, wsroom.ErrNameTaken) {
		t.Fatalf("taken name in a full room: want ErrNameTaken, got %v", err)
	}
	must(t, s.Release(ctx(t), r, "a"))
	must(t, s.Reserve(ctx(t), r, "c", 2))
	equal(t, "members", []string{"b", "c"}, members(t, s, r), eqString)
}

func testReleaseFrees(t *testing.T, newStore NewStore) {
	s, r := newStore(t, 10), room(t)
	must(t, s.Reserve(ctx(t), r, "alice", 0))
	must(t, s.Release(ctx(t), r, "alice"))
	equal(t, "after release", []string{}, members(t, s, r), eqString)
	must(t, s.Reserve(ctx(t), r, "alice", 0))
	must(t, s.Release(ctx(t), r, "nobody")) // not an error
	must(t, s.Release(ctx(t), room(t), "nobody"))
}

func testRoomsAreSeparate(t *testing.T, newStore NewStore) {
	s, r1, r2 := newStore(t, 10), room(t), room(t)
	must(t, s.Reserve(ctx(t), r1, "alice", 0))
	must(t, s.Reserve(ctx(t), r2, "alice", 0))
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
			errs[i] = s.Reserve(ctx(t), r, "same", 0)
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
			errs[i] = s.Reserve(ctx(t), r, fmt.Sprintf("m%02d", i), max)
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

func testOddRoomNames(t *testing.T, newStore NewStore) {
	s := newStore(t, 10)
	base := room(t)
	for _, r := range []string{base + ":a:b", base + "{x}", base + " 聊天室 🎉", base + "*?[]", base + "%_'\""} {
		must(t, s.Reserve(ctx(t), r, "name: {x} *", 0))
		equal(t, "members of "+r, []string{"name: {x} *"}, members(t, s, r), eqString)
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
	if err := s.Reserve(c, r, "alice", 0); err == nil {
		t.Error("Reserve with a canceled context succeeded")
	}
	if _, err := s.Append(c, r, wsroom.Message{Text: "x", Time: time.Now()}); err == nil {
		t.Error("Append with a canceled context succeeded")
	}
	if _, err := s.Members(c, r); err == nil {
		t.Error("Members with a canceled context succeeded")
	}
	if _, err := s.Recent(c, r, 1); err == nil {
		t.Error("Recent with a canceled context succeeded")
	}
}
