package wsroomnats

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"wsroom.dev/wsroom"
)

// benchPub is a chat message publication as a server sends it (180 bytes
// encoded).
func benchPub(room string, id uint64) *wsroom.Publication {
	return &wsroom.Publication{Room: room, Type: wsroom.PubMessage, Origin: "srv-1",
		Message: wsroom.Message{ID: id, From: "alice", Text: "hello, everyone: this is a chat message of ordinary length", Time: time.Now()}}
}

// counter counts what a subscription receives and fails on a resync (a
// loss).
type counter struct {
	n        atomic.Int64
	resyncs  atomic.Int64
	progress chan struct{}
}

func newCounter() *counter { return &counter{progress: make(chan struct{}, 1)} }

func (c *counter) deliver(p *wsroom.Publication) {
	if p.Type == wsroom.PubResync {
		c.resyncs.Add(1)
	}
	c.n.Add(1)
	select {
	case c.progress <- struct{}{}:
	default:
	}
}

// BenchmarkThroughput: one publisher, two subscribing brokers, one room.
// The publisher keeps at most a window of publications ahead of the
// slower subscriber, so nothing is dropped: pubs/s is what the room
// sustains end to end.
func BenchmarkThroughput(b *testing.B) {
	requireNATS(b)
	pub, _ := open(b, natsURL(), nil)
	s1, _ := open(b, natsURL(), nil)
	s2, _ := open(b, natsURL(), nil)
	r := newRoom(b)
	cs := []*counter{newCounter(), newCounter()}
	for i, s := range []*Broker{s1, s2} {
		cancel, err := s.Subscribe(testCtx(b), r, cs[i].deliver)
		if err != nil {
			b.Fatal(err)
		}
		defer cancel()
	}
	minDone := func() int64 { return min(cs[0].n.Load(), cs[1].n.Load()) }
	wait := func(cond func() bool) {
		deadline := time.NewTimer(30 * time.Second)
		defer deadline.Stop()
		for !cond() {
			select {
			case <-cs[0].progress:
			case <-cs[1].progress:
			case <-deadline.C:
				b.Fatalf("subscribers stalled at %d, %d of %d", cs[0].n.Load(), cs[1].n.Load(), b.N)
			}
		}
	}
	const window = 20_000
	p := benchPub(r, 1)
	ctx := context.Background() // the run is as long as -benchtime makes it
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if i%1000 == 0 {
			wait(func() bool { return int64(i)-minDone() <= window })
		}
		p.Message.ID = uint64(i + 1)
		if err := pub.Publish(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	wait(func() bool { return minDone() >= int64(b.N) })
	el := time.Since(start)
	b.StopTimer()
	for _, c := range cs {
		if c.resyncs.Load() > 0 {
			b.Fatalf("%d resyncs: publications were lost", c.resyncs.Load())
		}
	}
	b.ReportMetric(float64(b.N)/el.Seconds(), "pubs/s")
}

// BenchmarkLatency: publications paced at 1,000/s from one broker to two
// others; the time from Publish to deliver, p50 and p99 over both.
func BenchmarkLatency(b *testing.B) {
	requireNATS(b)
	pub, _ := open(b, natsURL(), nil)
	s1, _ := open(b, natsURL(), nil)
	s2, _ := open(b, natsURL(), nil)
	r := newRoom(b)
	var mu sync.Mutex
	lat := make([]time.Duration, 0, 2*b.N)
	all := make(chan struct{})
	deliver := func(p *wsroom.Publication) {
		d := time.Since(time.Unix(0, int64(p.Message.ID)))
		mu.Lock()
		lat = append(lat, d)
		if len(lat) == 2*b.N {
			close(all)
		}
		mu.Unlock()
	}
	for _, s := range []*Broker{s1, s2} {
		cancel, err := s.Subscribe(testCtx(b), r, deliver)
		if err != nil {
			b.Fatal(err)
		}
		defer cancel()
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	p := benchPub(r, 1)
	ctx := context.Background() // the run is as long as -benchtime makes it
	b.ResetTimer()
	for range b.N {
		<-tick.C
		p.Message.ID = uint64(time.Now().UnixNano())
		if err := pub.Publish(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
	select {
	case <-all:
	case <-time.After(30 * time.Second):
		b.Fatal("not every publication was delivered")
	}
	b.StopTimer()
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(lat)
	q := func(f float64) float64 { return float64(lat[int(f*float64(len(lat)-1))].Microseconds()) }
	b.ReportMetric(q(0.50), "p50-µs")
	b.ReportMetric(q(0.99), "p99-µs")
	b.ReportMetric(q(1), "max-µs")
}

// BenchmarkThroughputRaw is BenchmarkThroughput with bare nats.go
// connections and no decoding, for comparison: what the machine and the
// NATS server allow.
func BenchmarkThroughputRaw(b *testing.B) {
	requireNATS(b)
	conns := make([]*nats.Conn, 3)
	for i := range conns {
		nc, err := nats.Connect(natsURL())
		if err != nil {
			b.Fatal(err)
		}
		defer nc.Close()
		conns[i] = nc
	}
	subj, _ := roomToken(newRoom(b))
	subj = "wsroom-raw." + subj
	cs := []*counter{newCounter(), newCounter()}
	for i, nc := range conns[1:] {
		c := cs[i]
		if _, err := nc.Subscribe(subj, func(*nats.Msg) { c.deliver(&wsroom.Publication{}) }); err != nil {
			b.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			b.Fatal(err)
		}
	}
	data, _ := benchPub("room", 1).MarshalBinary()
	minDone := func() int64 { return min(cs[0].n.Load(), cs[1].n.Load()) }
	wait := func(cond func() bool) {
		deadline := time.NewTimer(30 * time.Second)
		defer deadline.Stop()
		for !cond() {
			select {
			case <-cs[0].progress:
			case <-cs[1].progress:
			case <-deadline.C:
				b.Fatalf("subscribers stalled at %d, %d of %d", cs[0].n.Load(), cs[1].n.Load(), b.N)
			}
		}
	}
	const window = 20_000
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if i%1000 == 0 {
			wait(func() bool { return int64(i)-minDone() <= window })
		}
		if err := conns[0].Publish(subj, data); err != nil {
			b.Fatal(err)
		}
	}
	wait(func() bool { return minDone() >= int64(b.N) })
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/el.Seconds(), "pubs/s")
}
