package faults_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// heap returns the live heap after a full collection.
func heap() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TestRoomsCreatedAndAbandoned: 2,000 clients each open a room of their
// own, say something and leave, twice over. Every room is torn down when
// its member leaves, the server's goroutines return to what they were,
// and the heap comes back: after the first round it holds only the
// store's history (bounded by the MemoryStore's budget), and a second
// round in the same rooms adds nothing but their new messages.
func TestRoomsCreatedAndAbandoned(t *testing.T) {
	ctx := testContext(t, 3*time.Minute)
	if os.Getenv("WSROOM_FAULTS_HEAPPROFILE") != "" {
		runtime.MemProfileRate = 1
	}
	// Not parallel: it measures the process's heap and goroutines.
	e := newEnv(t, wsroom.Options{MaxConnectionsPerIP: -1, RateLimit: -1})
	const rooms = 2000
	// A first member starts what the server keeps for good (its presence
	// lease's refresh loop).
	warm := e.join(ctx, "warm-up", "m")
	warm.close()
	<-warm.done
	waitFor(ctx, t, "the warm-up room torn down", func() bool { return e.srv.Stats().Rooms == 0 })
	g0, h0 := runtime.NumGoroutine(), heap()
	var peak uint64
	round := func(r int) uint64 {
		members := make([]*member, rooms)
		if err := parallel(rooms, 64, func(i int) (err error) {
			members[i], err = joinURL(ctx, e.ws+fmt.Sprintf("/chat/churn-%d", i), "m", "")
			if err != nil {
				return err
			}
			if err := members[i].say(ctx, fmt.Sprintf("round %d in room %d", r, i)); err != nil {
				return err
			}
			_, err = members[i].next(ctx, "message")
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if st := e.srv.Stats(); st.Rooms != rooms || st.Members != rooms {
			t.Fatalf("round %d: %d rooms and %d members open, want %d", r, st.Rooms, st.Members, rooms)
		}
		peak = max(peak, heap())
		for _, m := range members {
			m.close()
		}
		waitFor(ctx, t, "every room torn down", func() bool {
			st := e.srv.Stats()
			return st.Rooms == 0 && st.Members == 0 && st.Connections == 0
		})
		for _, m := range members {
			<-m.done
		}
		gctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		for runtime.NumGoroutine() > g0 && gctx.Err() == nil {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > g0 {
			buf := make([]byte, 1<<20)
			t.Fatalf("round %d: %d goroutines, %d before:\n%s", r, n, g0, buf[:runtime.Stack(buf, true)])
		}
		return heap()
	}
	h1 := round(1)
	if f := os.Getenv("WSROOM_FAULTS_HEAPPROFILE"); f != "" {
		out, _ := os.Create(f)
		pprof.Lookup("heap").WriteTo(out, 0)
		out.Close()
	}
	h2 := round(2)
	mib := func(b uint64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
	grow := func(a, b uint64) uint64 { return max(a, b) - a }
	t.Logf("heap: %s before, %s with %d rooms open, %s after the first round, %s after the second",
		mib(h0), mib(peak), rooms, mib(h1), mib(h2))
	// What stays after the first round is bounded, not leaked: each room's
	// history in the MemoryStore (its message and its entry, with the
	// empty map of its name holders), the descriptors of the goroutines
	// that ran (the Go runtime keeps them for reuse), and maps that keep
	// the size they had at the peak. Measured: about 2 KiB a room.
	if d := grow(h0, h1); d > rooms*3<<10 {
		t.Errorf("the first round left %s on the heap, more than 3 KiB a room", mib(d))
	}
	// The same rooms again leave only their second message.
	if d := grow(h1, h2); d > rooms*512 {
		t.Errorf("the second round added %s, more than 512 bytes a room", mib(d))
	}
	if grow(h0, peak) < 4*grow(h0, h1) {
		t.Errorf("the open rooms (%s over the start) should weigh far more than what stays (%s)", mib(grow(h0, peak)), mib(grow(h0, h1)))
	}
}
