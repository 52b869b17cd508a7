//go:build !race

// The race detector allocates for every goroutine it tracks, so this
// measurement runs only without it.

package wsroom

import (
	"testing"
	"time"
)

// TestBroadcastAllocsPerRecipient is the micro-benchmark's claim as a test:
// delivering to ten times more members costs no more allocations.
func TestBroadcastAllocsPerRecipient(t *testing.T) {
	if testing.Short() {
		t.Skip("measures allocations over many runs")
	}
	allocs := func(n int) float64 {
		br := newBenchRoom(t, n, false)
		p := Publication{Room: "bench", Type: PubMessage, Message: Message{ID: 1, From: "alice", Text: "hi", Time: time.Now()}}
		br.h.deliver(&p, &route{})
		br.drain()
		return testing.AllocsPerRun(50, func() {
			br.h.deliver(&p, &route{})
			br.drain()
		})
	}
	small, big := allocs(20), allocs(200)
	if per := (big - small) / 180; per > 0.05 {
		t.Fatalf("allocations grow with members: %.1f for 20, %.1f for 200 (%.2f per recipient)", small, big, per)
	}
}
