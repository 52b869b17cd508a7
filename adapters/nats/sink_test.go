package wsroomnats

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// sink records what a subscription receives, in order: a message's text,
// or "resync".
type sink struct {
	mu     sync.Mutex
	events []string
	more   chan struct{}
}

func newSink() *sink { return &sink{more: make(chan struct{}, 1)} }

func (s *sink) deliver(p *wsroom.Publication) {
	e := p.Message.Text
	if p.Type == wsroom.PubResync {
		e = "resync"
	}
	s.mu.Lock()
	s.events = append(s.events, e)
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *sink) snapshot() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.events)
}

// waitFor waits, at most d, until cond holds for the events.
func (s *sink) waitFor(t testing.TB, d time.Duration, what string, cond func([]string) bool) []string {
	t.Helper()
	timeout := time.NewTimer(d)
	defer timeout.Stop()
	for {
		ev := s.snapshot()
		if cond(ev) {
			return ev
		}
		select {
		case <-s.more:
		case <-timeout.C:
			t.Fatalf("%s: not within %v; got %q", what, d, ev)
		}
	}
}

// has reports whether every one of want is among the events.
func has(want ...string) func([]string) bool {
	return func(ev []string) bool {
		for _, w := range want {
			if !slices.Contains(ev, w) {
				return false
			}
		}
		return true
	}
}

func subscribeSink(t testing.TB, b *Broker, room string) *sink {
	t.Helper()
	s := newSink()
	cancel, err := b.Subscribe(testCtx(t), room, s.deliver)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(cancel)
	return s
}

func msg(room, text string) *wsroom.Publication {
	return &wsroom.Publication{Room: room, Type: wsroom.PubMessage, Message: wsroom.Message{ID: 1, From: "a", Text: text, Time: time.UnixMilli(1_700_000_000_000)}}
}

func publish(t testing.TB, b *Broker, p *wsroom.Publication) {
	t.Helper()
	if err := b.Publish(testCtx(t), p); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

var roomSeq struct {
	sync.Mutex
	n int
}

// newRoom returns a room name no other test or run uses.
func newRoom(t testing.TB) string {
	roomSeq.Lock()
	roomSeq.n++
	n := roomSeq.n
	roomSeq.Unlock()
	return fmt.Sprintf("nats-%s-%d-%d a.b*>", t.Name(), time.Now().UnixNano(), n)
}

// pause lets d pass, as part of a scenario (an outage lasting d), bounded
// by the test's context.
func pause(t testing.TB, d time.Duration) {
	t.Helper()
	select {
	case <-time.After(d):
	case <-testCtx(t).Done():
		t.Fatal("test context ended")
	}
}

// within fails the test if f takes longer than d.
func within(t testing.TB, d time.Duration, what string, f func()) {
	t.Helper()
	start := time.Now()
	f()
	if took := time.Since(start); took > d {
		t.Fatalf("%s took %v, want at most %v", what, took, d)
	}
}

// waitStatus waits until cond holds for the broker's connection.
func waitConn(t testing.TB, b *Broker, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testCtx(t), 15*time.Second)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: not within 15s", what)
		}
	}
}
