// Package brokertest is the conformance suite for wsroom.Broker
// implementations. Every backend runs it against a real server:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, brokertest.Harness{
//			New: func(t *testing.T) wsroom.Broker { return newBrokerForTest(t) },
//			Disrupt: func(t *testing.T, b wsroom.Broker) { dropConnection(t, b) },
//		})
//	}
//
// Each Broker that New returns stands for one server of a cluster; they all
// reach the same backend. The suite uses fresh, randomly named rooms.
package brokertest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// Harness gives the suite brokers to test.
type Harness struct {
	// New returns a Broker connected to the backend under test, closed when
	// the test ends. Brokers from New share the backend.
	New func(t *testing.T) wsroom.Broker

	// Disrupt, when set, breaks b's connection to the backend; b must
	// reconnect by itself and tell its subscriptions with PubResync.
	Disrupt func(t *testing.T, b wsroom.Broker)

	// PerBrokerOrder relaxes OneOrderForAll for a backend without one
	// order per room across its clients (NATS core hands each
	// publisher's messages on by themselves): the subscribers of one
	// Broker see one order, and one publisher's order holds for all, but
	// publications of different servers sent at the same moment may reach
	// two servers in different orders.
	PerBrokerOrder bool
}

// Run runs the conformance suite.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"DeliversToEverySubscriber", testDeliversToEverySubscriber},
		{"LiveWhenSubscribeReturns", testLiveWhenSubscribeReturns},
		{"RoomsAreSeparate", testRoomsAreSeparate},
		{"KeepsEveryField", testKeepsEveryField},
		{"PublisherOrder", testPublisherOrder},
		{"OneOrderForAll", testOneOrderForAll},
		{"NothingAfterCancel", testNothingAfterCancel},
		{"ChurnWhilePublishing", testChurnWhilePublishing},
		{"CanceledContext", testCanceledContext},
		{"Reconnect", testReconnect},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, h)
		})
	}
}

// wait bounds every wait of the suite.
const wait = 15 * time.Second

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), wait)
	t.Cleanup(cancel)
	return c
}

func room(t *testing.T) string {
	b := make([]byte, 6)
	rand.Read(b)
	return "brokertest-" + t.Name() + "-" + hex.EncodeToString(b)
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("unexpected error: %v", err)
	}
}

// sink collects what a subscription delivers.
type sink struct {
	mu     sync.Mutex
	got    []wsroom.Publication
	resync int
	more   chan struct{} // signalled on each delivery
	busy   atomic.Int32  // deliver calls running
	over   atomic.Int32  // deliver calls that overlapped another
}

func newSink() *sink { return &sink{more: make(chan struct{}, 1)} }

func (s *sink) deliver(p *wsroom.Publication) {
	if s.busy.Add(1) > 1 {
		s.over.Add(1)
	}
	defer s.busy.Add(-1)
	s.mu.Lock()
	if p.Type == wsroom.PubResync {
		s.resync++
	} else {
		c := *p
		c.Data = slices.Clone(p.Data)
		s.got = append(s.got, c)
	}
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *sink) snapshot() []wsroom.Publication {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.got)
}

// waitFor waits until cond holds for the sink's publications.
func (s *sink) waitFor(t *testing.T, what string, cond func([]wsroom.Publication, int) bool) []wsroom.Publication {
	t.Helper()
	timeout := time.NewTimer(wait)
	defer timeout.Stop()
	for {
		s.mu.Lock()
		got, resync := slices.Clone(s.got), s.resync
		s.mu.Unlock()
		if cond(got, resync) {
			return got
		}
		select {
		case <-s.more:
		case <-timeout.C:
			t.Fatalf("%s: not within %v; got %d publications, %d resyncs", what, wait, len(got), resync)
		}
	}
}

func (s *sink) waitN(t *testing.T, n int) []wsroom.Publication {
	t.Helper()
	return s.waitFor(t, fmt.Sprintf("%d publications", n), func(got []wsroom.Publication, _ int) bool { return len(got) >= n })
}

func subscribe(t *testing.T, b wsroom.Broker, room string) (*sink, func()) {
	t.Helper()
	s := newSink()
	cancel, err := b.Subscribe(ctx(t), room, s.deliver)
	must(t, err)
	t.Cleanup(cancel)
	return s, cancel
}

func msg(room string, i int) *wsroom.Publication {
	return &wsroom.Publication{Room: room, Type: wsroom.PubMessage, Message: wsroom.Message{ID: uint64(i + 1), From: "a", Text: fmt.Sprint(i), Time: time.UnixMilli(1_700_000_000_000 + int64(i))}}
}

// settle is how long the suite waits to see that something does not
// arrive.
const settle = 300 * time.Millisecond

func sleep(t *testing.T, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx(t).Done():
		t.Fatal("test context ended")
	}
}

func testDeliversToEverySubscriber(t *testing.T, h Harness) {
	b1, b2, r := h.New(t), h.New(t), room(t)
	sinks := make([]*sink, 0, 4)
	for _, b := range []wsroom.Broker{b1, b1, b2, b2} {
		s, _ := subscribe(t, b, r)
		sinks = append(sinks, s)
	}
	must(t, b1.Publish(ctx(t), msg(r, 0)))
	must(t, b2.Publish(ctx(t), msg(r, 1)))
	for i, s := range sinks {
		got := s.waitN(t, 2)
		texts := []string{got[0].Message.Text, got[1].Message.Text}
		slices.Sort(texts)
		if !slices.Equal(texts, []string{"0", "1"}) {
			t.Fatalf("subscriber %d got %v, want the publications of both servers, its own included", i, texts)
		}
	}
	sleep(t, settle)
	for i, s := range sinks {
		if n := len(s.snapshot()); n != 2 {
			t.Fatalf("subscriber %d got %d publications, want 2 (no duplicates)", i, n)
		}
	}
}

func testLiveWhenSubscribeReturns(t *testing.T, h Harness) {
	b1, b2 := h.New(t), h.New(t)
	for i := range 5 {
		r := room(t)
		s, _ := subscribe(t, b2, r)
		// Published the moment Subscribe returned, from another server.
		must(t, b1.Publish(ctx(t), msg(r, i)))
		s.waitN(t, 1)
	}
}

func testRoomsAreSeparate(t *testing.T, h Harness) {
	b, r1, r2 := h.New(t), room(t), room(t)
	s1, _ := subscribe(t, b, r1)
	s2, _ := subscribe(t, b, r2)
	must(t, b.Publish(ctx(t), msg(r1, 0)))
	must(t, b.Publish(ctx(t), msg(r2, 1)))
	if got := s1.waitN(t, 1); got[0].Room != r1 || got[0].Message.Text != "0" {
		t.Fatalf("room 1 got %+v", got[0])
	}
	if got := s2.waitN(t, 1); got[0].Room != r2 || got[0].Message.Text != "1" {
		t.Fatalf("room 2 got %+v", got[0])
	}
	sleep(t, settle)
	if len(s1.snapshot()) != 1 || len(s2.snapshot()) != 1 {
		t.Fatalf("a room got another room's publication: %d, %d", len(s1.snapshot()), len(s2.snapshot()))
	}
}

func testKeepsEveryField(t *testing.T, h Harness) {
	b1, b2, r := h.New(t), h.New(t), room(t)
	s, _ := subscribe(t, b2, r)
	data := make([]byte, 70_000)
	for i := range data {
		data[i] = byte(i * 7)
	}
	in := []*wsroom.Publication{
		{Room: r, Type: wsroom.PubMessage, Message: wsroom.Message{ID: 1<<63 + 5, From: "黄晓安", Text: "你好 \"q\" \\ \n 🎉 <b>", Time: time.UnixMilli(1_764_000_000_123)}, Except: []string{"x"}, Origin: "srv-1"},
		{Room: r, Type: wsroom.PubBinary, Name: "alice", Data: data, To: []string{"bob", "carol"}},
		{Room: r, Type: wsroom.PubBinary, Name: "alice", Data: []byte{0, 0xff, 0}},
		{Room: r, Type: wsroom.PubPresence, Joined: []string{"a", "b"}, Left: []string{"c"}},
		{Room: r, Type: wsroom.PubRemove, Name: "mallory", Reason: "spam ✋", Owner: wsroom.Owner{Server: "s", Conn: "c"}},
		{Room: r, Type: wsroom.PubJoin, Name: "dave"},
	}
	for _, p := range in {
		must(t, b1.Publish(ctx(t), p))
	}
	got := s.waitN(t, len(in))
	for i, p := range in {
		g := got[i]
		same := g.Room == p.Room && g.Type == p.Type && g.Name == p.Name && g.Reason == p.Reason &&
			g.Owner == p.Owner && g.Origin == p.Origin &&
			g.Message.ID == p.Message.ID && g.Message.From == p.Message.From && g.Message.Text == p.Message.Text &&
			g.Message.Time.Equal(p.Message.Time) && slices.Equal(g.Data, p.Data) &&
			slices.Equal(g.To, p.To) && slices.Equal(g.Except, p.Except) &&
			slices.Equal(g.Joined, p.Joined) && slices.Equal(g.Left, p.Left)
		if !same {
			t.Fatalf("publication %d changed on the way:\nsent %+v\n got %+v", i, *p, g)
		}
	}
}

func testPublisherOrder(t *testing.T, h Harness) {
	b1, b2, r := h.New(t), h.New(t), room(t)
	local, _ := subscribe(t, b1, r)
	remote, _ := subscribe(t, b2, r)
	const n = 500
	for i := range n {
		must(t, b1.Publish(ctx(t), msg(r, i)))
	}
	for _, s := range []*sink{local, remote} {
		got := s.waitN(t, n)
		for i, p := range got {
			if p.Message.Text != fmt.Sprint(i) {
				t.Fatalf("publication %d is %q: one publisher's publications out of order", i, p.Message.Text)
			}
		}
		if s.over.Load() > 0 {
			t.Fatalf("deliver ran concurrently with itself %d times", s.over.Load())
		}
	}
}

func testOneOrderForAll(t *testing.T, h Harness) {
	b1, b2, r := h.New(t), h.New(t), room(t)
	subs := []*sink{}
	for _, b := range []wsroom.Broker{b1, b2, b2} {
		s, _ := subscribe(t, b, r)
		subs = append(subs, s)
	}
	const each = 200
	var wg sync.WaitGroup
	for k, b := range []wsroom.Broker{b1, b2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if err := b.Publish(ctx(t), msg(r, k*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	var first []string
	for j, s := range subs {
		got := s.waitN(t, 2*each)
		order := make([]string, len(got))
		for i, p := range got {
			order[i] = p.Message.Text
		}
		if j == 0 || h.PerBrokerOrder && j == 1 { // subscribers: b1, b2, b2
			first = order
		} else if !slices.Equal(first, order) {
			t.Fatalf("subscriber %d saw another order than subscriber 0", j)
		}
	}
}

func testNothingAfterCancel(t *testing.T, h Harness) {
	b1, b2, r := h.New(t), h.New(t), room(t)
	s, cancel := subscribe(t, b2, r)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			if err := b1.Publish(ctx(t), msg(r, i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	s.waitN(t, 10)
	cancel()
	n := len(s.snapshot())
	sleep(t, settle)
	close(stop)
	wg.Wait()
	if m := len(s.snapshot()); m != n {
		t.Fatalf("%d publications delivered after cancel returned", m-n)
	}
	cancel() // a second cancel is harmless
}

func testChurnWhilePublishing(t *testing.T, h Harness) {
	b1, b2, r := h.New(t), h.New(t), room(t)
	steady, _ := subscribe(t, b2, r)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				s := newSink()
				cancel, err := b2.Subscribe(ctx(t), r, s.deliver)
				if err != nil {
					t.Error(err)
					return
				}
				cancel()
			}
		}()
	}
	const n = 300
	for i := range n {
		must(t, b1.Publish(ctx(t), msg(r, i)))
	}
	got := steady.waitN(t, n)
	close(stop)
	wg.Wait()
	for i, p := range got[:n] {
		if p.Message.Text != fmt.Sprint(i) {
			t.Fatalf("steady subscriber: publication %d is %q while others subscribed and cancelled", i, p.Message.Text)
		}
	}
}

func testCanceledContext(t *testing.T, h Harness) {
	b, r := h.New(t), room(t)
	c, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Publish(c, msg(r, 0)); err == nil {
		t.Error("Publish with a canceled context succeeded")
	}
	if cancel, err := b.Subscribe(c, r, func(*wsroom.Publication) {}); err == nil {
		cancel()
		t.Error("Subscribe with a canceled context succeeded")
	}
}

func testReconnect(t *testing.T, h Harness) {
	if h.Disrupt == nil {
		t.Skip("the backend has no connection to break (Harness.Disrupt is nil)")
	}
	b1, b2, r := h.New(t), h.New(t), room(t)
	s, _ := subscribe(t, b2, r)
	must(t, b1.Publish(ctx(t), msg(r, 0)))
	s.waitN(t, 1)
	h.Disrupt(t, b2)
	s.waitFor(t, "a resync after the connection came back", func(_ []wsroom.Publication, resync int) bool { return resync > 0 })
	// Delivery works again, to the subscriber and from its broker.
	must(t, b1.Publish(ctx(t), msg(r, 1)))
	must(t, b2.Publish(ctx(t), msg(r, 2)))
	s.waitFor(t, "publications after the reconnect", func(got []wsroom.Publication, _ int) bool {
		texts := map[string]bool{}
		for _, p := range got {
			texts[p.Message.Text] = true
		}
		return texts["1"] && texts["2"]
	})
}
