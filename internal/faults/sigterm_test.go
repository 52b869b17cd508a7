package faults_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// parallel runs f(0..n-1), at most k at once, and returns the first error.
func parallel(n, k int, f func(i int) error) error {
	sem := make(chan struct{}, k)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				once.Do(func() { first = err })
			}
		}()
	}
	wg.Wait()
	return first
}

// jitter waits a random time up to d, or until ctx ends.
func jitter(ctx context.Context, d time.Duration) {
	timer := time.NewTimer(rand.N(d))
	defer timer.Stop()
	select {
	case <-timer.C:
	case <-ctx.Done():
	}
}

// sigtermMembers is how many members the SIGTERM tests hold.
const sigtermMembers = 300

// exampleGrace is the example server's shutdown grace period (its
// run function gives Shutdown 15 seconds).
const exampleGrace = 15 * time.Second

// TestSigtermExample: SIGTERM to the example chat server with 300 members:
// every member gets 1001 within the grace period and the server exits 0;
// restarted on the same address, the members come back with jitter,
// resuming from the last message they saw, and the conversation goes on
// with nothing lost. The example keeps history in memory, so the restarted
// server cannot fill what came before it: the welcome says so (gap), and
// holds nothing from before.
func TestSigtermExample(t *testing.T) {
	t.Parallel()
	bin := buildChat(t) // a build under load takes long: before the clock starts
	ctx := testContext(t, 4*time.Minute)
	srv := startChat(t, bin, "-ping", "1s")
	url := "ws://" + srv.addr + "/chat/term"
	name := func(i int) string { return fmt.Sprintf("m%03d", i) }

	members := make([]*member, sigtermMembers)
	if err := parallel(sigtermMembers, 32, func(i int) (err error) {
		members[i], err = joinURL(ctx, url, name(i), "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, m := range members {
			m.close()
		}
	}()
	last := make([]string, sigtermMembers)
	hear := func(ms []*member, prefix string, k int) error {
		return parallel(len(ms), len(ms), func(i int) error {
			for j := range k {
				ev, err := ms[i].next(ctx, "message")
				if err != nil {
					return fmt.Errorf("%s: %w", ms[i].name, err)
				}
				if want := fmt.Sprintf("%s %d", prefix, j); ev.Text != want {
					return fmt.Errorf("%s heard %q, want %q", ms[i].name, ev.Text, want)
				}
				last[i] = ev.ID
			}
			return nil
		})
	}
	for j := range 10 {
		if err := members[0].say(ctx, fmt.Sprintf("before %d", j)); err != nil {
			t.Fatal(err)
		}
	}
	if err := hear(members, "before", 10); err != nil {
		t.Fatal(err)
	}

	start := time.Now()
	srv.terminate()
	took := make([]time.Duration, sigtermMembers)
	if err := parallel(sigtermMembers, sigtermMembers, func(i int) error {
		code, err := members[i].closeStatus(ctx)
		took[i] = time.Since(start)
		if err != nil || code != websocket.StatusGoingAway {
			return fmt.Errorf("%s: close %v, %v; want 1001", members[i].name, code, err)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	slowest := slices.Max(took)
	t.Logf("SIGTERM: %d members closed with 1001, the last after %v", sigtermMembers, slowest.Round(time.Millisecond))
	if slowest > exampleGrace {
		t.Errorf("the last 1001 came after %v, past the grace period of %v", slowest, exampleGrace)
	}
	if err := srv.wait(t, exampleGrace+5*time.Second); err != nil {
		t.Fatalf("the server exited with %v:\n%s", err, srv.logs)
	}
	if logs := srv.logs.String(); strings.Contains(logs, "level=ERROR") || strings.Contains(logs, "DATA RACE") {
		t.Fatalf("the server logged an error or a race:\n%s", logs)
	}

	// The same address again, and everyone back, each after a random
	// delay of up to 2 seconds (a crowd of reloading pages).
	srv2 := startChat(t, bin, "-addr", srv.addr, "-ping", "1s")
	start = time.Now()
	back := make([]*member, sigtermMembers)
	if err := parallel(sigtermMembers, sigtermMembers, func(i int) (err error) {
		jitter(ctx, 2*time.Second)
		back[i], err = joinURL(ctx, url, name(i), last[i])
		if err != nil {
			return err
		}
		if w := back[i].welcome; !w.Gap || len(w.History) != 0 {
			return fmt.Errorf("%s: welcome gap %v with %d messages; the restarted in-memory server has no history to resume from", name(i), w.Gap, len(w.History))
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, m := range back {
			m.close()
		}
	}()
	t.Logf("all %d members back in %v", sigtermMembers, time.Since(start).Round(time.Millisecond))
	for j := range 10 {
		if err := back[0].say(ctx, fmt.Sprintf("after %d", j)); err != nil {
			t.Fatal(err)
		}
	}
	if err := hear(back, "after", 10); err != nil {
		t.Fatalf("%v\nserver log:\n%s", err, srv2.logs)
	}
	srv2.terminate()
	if err := srv2.wait(t, exampleGrace+5*time.Second); err != nil {
		t.Fatalf("the restarted server exited with %v:\n%s", err, srv2.logs)
	}
}

// TestShutdownResumeNoGap: the same with a store that outlives the server
// (as Redis or PostgreSQL would): 300 members, one of them talking without
// pause while the server shuts down; a new server on the same store; the
// members come back with jitter and resume. Every member's record (what
// it heard before, its welcome's history, what it hears after) is every
// message the store holds from its first on, in order, once each.
func TestShutdownResumeNoGap(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 3*time.Minute)
	store := wsroom.NewMemoryStore(nil)
	opts := wsroom.Options{Store: store, RateLimit: -1, MaxConnectionsPerIP: -1, ResumeLimit: 10000}
	a := newEnv(t, opts)
	name := func(i int) string { return fmt.Sprintf("m%03d", i) }
	members := make([]*member, sigtermMembers)
	if err := parallel(sigtermMembers, 32, func(i int) (err error) {
		members[i], err = joinURL(ctx, a.ws+"/chat/resume", name(i), "")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	records := make([][]uint64, sigtermMembers)
	// collect records the IDs of the messages each member hears, until
	// it hears the text stop or its connection ends.
	collect := func(ms []*member, stop string) *sync.WaitGroup {
		var wg sync.WaitGroup
		for i, m := range ms {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for ev := range m.events {
					if ev.Type == "message" {
						records[i] = append(records[i], ev.id())
						if ev.Text == stop {
							return
						}
					}
				}
			}()
		}
		return &wg
	}
	before := collect(members, "")

	// The talker talks, a message every 2ms, until its server goes away
	// (or it said 600: the store keeps the last 1000 of a room).
	talker := members[0]
	talked := make(chan int)
	go func() {
		tick := time.NewTicker(2 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for ; n < 600 && talker.say(ctx, fmt.Sprintf("t%d", n)) == nil; n++ {
			<-tick.C
		}
		talked <- n
	}()
	waitFor(ctx, t, "some talk", func() bool { return a.srv.Stats().FramesIn > sigtermMembers+50 })
	if err := a.srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("the talker sent %d messages before the shutdown", <-talked)
	for _, m := range members {
		if code, err := m.closeStatus(ctx); err != nil || code != websocket.StatusGoingAway {
			t.Fatalf("%s: %v %v, want 1001", m.name, code, err)
		}
	}
	before.Wait()

	b := newEnv(t, opts)
	back := make([]*member, sigtermMembers)
	if err := parallel(sigtermMembers, sigtermMembers, func(i int) (err error) {
		jitter(ctx, 2*time.Second)
		since := ""
		if r := records[i]; len(r) > 0 {
			since = fmt.Sprint(r[len(r)-1])
		}
		back[i], err = joinURL(ctx, b.ws+"/chat/resume", name(i), since)
		if err != nil {
			return err
		}
		if back[i].welcome.Gap {
			return fmt.Errorf("%s: the resume reports a gap", name(i))
		}
		for _, h := range back[i].welcome.History {
			records[i] = append(records[i], h.id())
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	after := collect(back, "after 19")
	for j := range 20 {
		if err := back[1].say(ctx, fmt.Sprintf("after %d", j)); err != nil {
			t.Fatal(err)
		}
	}
	after.Wait() // everyone heard "after 19", or lost its connection
	for _, m := range back {
		m.close()
	}

	all, _, err := store.After(ctx, "resume", 0, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]uint64, len(all))
	for i, m := range all {
		ids[i] = m.ID
	}
	for i, r := range records {
		if len(r) == 0 {
			t.Fatalf("%s heard nothing", name(i))
		}
		from := slices.Index(ids, r[0])
		if from < 0 || !slices.Equal(r, ids[from:]) {
			t.Fatalf("%s heard %d messages from %d to %d; the store holds %d from there (first difference at %d)",
				name(i), len(r), r[0], r[len(r)-1], len(ids)-max(from, 0), firstDiff(r, ids[max(from, 0):]))
		}
	}
	t.Logf("%d members resumed across a restart; each heard every one of the %d messages from its first, once", sigtermMembers, len(ids))
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}
