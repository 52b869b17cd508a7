package wsroom_test

import (
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// heapInUse returns the live heap after a collection.
func heapInUse() int64 {
	runtime.GC()
	runtime.GC() // and what sync.Pools kept through the first
	debug.FreeOSMemory()
	// The live heap the last collection marked, not HeapAlloc, which also
	// counts what the server allocated since (a page being encoded): that
	// made the figure jump by up to 2 MiB between runs.
	s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(s)
	return int64(s[0].Value.Uint64())
}

// TestReaderThatNeverReads: a client that never reads and keeps asking for
// the largest history pages costs the server at most its queue's byte
// bound, even with the rate limit off, and is closed as too slow. (Not
// parallel: it measures the heap.)
func TestReaderThatNeverReads(t *testing.T) {
	const bound = 1 << 20
	l := newLeaves()
	e := newEnv(t, &wsroom.Options{RateLimit: -1, SendQueueBytes: bound, Hooks: wsroom.Hooks{OnLeave: l.hook}})
	room := e.srv.Room("hoard")
	text := strings.Repeat("x", 30<<10)
	for range 100 {
		_, err := room.Broadcast(testContext(t), wsroom.Message{From: "bot", Text: text})
		assert.Success(t, err)
	}
	base := heapInUse()
	r := e.rawDial("/chat/hoard", wsroom.Subprotocol, 4096)
	r.writeFrame(true, 1, []byte(`{"type":"join","name":"hoarder"}`))
	peak := int64(0)
	deadline := time.Now().Add(testTimeout)
	for i := 0; time.Now().Before(deadline) && len(l.all()) == 0; i++ {
		if err := r.tryWriteFrame(true, 1, []byte(`{"type":"history","limit":100}`)); err != nil {
			break // closed
		}
		if i%10 == 0 {
			peak = max(peak, heapInUse()-base)
		}
		if i > 400 {
			t.Fatalf("400 history requests and still connected: %+v", e.srv.Stats())
		}
	}
	ev := l.wait(t)
	assert.Equal(t, "closed as too slow", wsroom.ReasonSlow, ev.Reason)
	t.Logf("heap growth at its peak: %d KiB (bound %d KiB)", peak>>10, bound>>10)
	// The margin covers a page being encoded while the collector marks
	// (allocated during marking, it counts as live until the next cycle)
	// and the read buffers: measured 0.3–1.2 MiB in all. Before pages were
	// sized up front, the chain of copies that growing one left behind
	// counted too (2.6–5.2 MiB); without the byte bound the heap grows by
	// hundreds of MiB here.
	assert.True(t, fmt.Sprintf("heap growth %d KiB within the queue bound and a margin", peak>>10), peak < bound+2<<20)
}

// TestHistoryPageBoundedInBytes: a history page holds at most
// HistoryBytes, the newest messages first, and says more.
func TestHistoryPageBoundedInBytes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{HistoryBytes: 100 << 10, WelcomeHistory: 50})
	room := e.srv.Room("pages")
	text := strings.Repeat("y", 30<<10)
	for i := range 10 {
		_, err := room.Broadcast(testContext(t), wsroom.Message{From: "bot", Text: fmt.Sprint(i, text)})
		assert.Success(t, err)
	}
	c, w := e.join("pages", "ann")
	assert.Equal(t, "welcome history within 100 KiB: three messages", 3, len(w.History))
	assert.True(t, "the newest", strings.HasPrefix(w.History[2].Text, "9"))
	c.send(map[string]any{"type": "history", "limit": 100})
	h := c.until("history")
	assert.Equal(t, "page within 100 KiB", 3, len(h.Messages))
	assert.True(t, "more", h.More)
	c.send(map[string]any{"type": "history", "before": h.Messages[0].ID, "limit": 100})
	h2 := c.until("history")
	assert.True(t, "the page before", strings.HasPrefix(h2.Messages[2].Text, "6"))
}

// TestMaxRooms: one server opens at most MaxRooms rooms; a join that would
// open another is refused with server_full until one closes.
func TestMaxRooms(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{MaxRooms: 2})
	a, _ := e.join("one", "ann")
	e.join("two", "bob")
	c := e.dial("/chat/three", true)
	c.send(map[string]any{"type": "join", "name": "cat"})
	assert.Equal(t, "server full", wsroom.CodeServerFull, c.expect("error").Code)
	e.join("two", "dan") // an open room still takes members
	a.c.CloseNow()
	waitFor(t, "room one closed", func() bool { return e.srv.Stats().Rooms == 1 })
	c.send(map[string]any{"type": "join", "name": "cat"})
	assert.Equal(t, "then it opens", "welcome", c.expect("welcome").Type)
}

// TestFloodOfRoomsStaysInBudget: clients each flooding a room of their own
// with the largest messages leave the server holding at most the store's
// byte budget once they are gone. (Not parallel: it measures the heap.)
func TestFloodOfRoomsStaysInBudget(t *testing.T) {
	const budget = 4 << 20
	store := wsroom.NewMemoryStore(&wsroom.MemoryStoreOptions{MaxBytes: budget})
	e := newEnv(t, &wsroom.Options{Store: store, RateLimit: -1, WelcomeHistory: -1})
	base := heapInUse()
	baseRSS := processRSS()
	text := []byte(strings.Repeat("z", 30<<10))
	const rooms, each = 30, 30
	for r := range rooms {
		c := e.rawDial(fmt.Sprint("/chat/flood-", r), "", 0)
		c.writeFrame(true, 1, []byte("login:mallory"))
		for range each {
			c.writeFrame(true, 1, text)
		}
		for got := 0; got < each; {
			_, p, err := c.readFrame()
			assert.Success(t, err)
			if len(p) > len(text) {
				got++ // one of its messages, as a line
			}
		}
		c.nc.Close()
	}
	waitFor(t, "everyone gone", func() bool { return e.srv.Stats().Connections == 0 })
	grew := heapInUse() - base
	rss := processRSS()
	t.Logf("offered %d MiB; heap growth after the rooms went quiet: %d KiB (budget %d KiB); process RSS %d MiB, %d MiB at the start", rooms*each*len(text)>>20, grew>>10, budget>>10, rss>>20, baseRSS>>20)
	assert.True(t, "within the budget and a margin", grew < budget+4<<20)
	if !raceEnabled && baseRSS > 0 {
		// The runtime has given back what the heap no longer holds.
		assert.True(t, fmt.Sprintf("RSS growth %d MiB within the budget and a margin", (rss-baseRSS)>>20), rss-baseRSS < budget+32<<20)
	}
}

// processRSS returns the process's resident memory, as an operator sees
// it (0 where /proc is missing).
func processRSS() int64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseInt(f[1], 10, 64)
	return pages * int64(os.Getpagesize())
}
