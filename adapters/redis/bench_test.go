package wsroomredis

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// BenchmarkAppendPublish measures what one chat message costs a server:
// Append to the store, Publish to the broker, and the publication's arrival
// at a subscriber on another Broker, one message at a time in one room.
func BenchmarkAppendPublish(b *testing.B) {
	s, _ := newTestStore(b, StoreOptions{})
	pub, sub := newTestBroker(b, BrokerOptions{}), newTestBroker(b, BrokerOptions{})
	ctx := benchContext(b)
	room := "bench-" + random()
	got := make(chan struct{}, 1)
	cancel, err := sub.Subscribe(ctx, room, func(*wsroom.Publication) { got <- struct{}{} })
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		m, err := s.Append(ctx, room, wsroom.Message{From: "alice", Text: "hello, everyone", Time: time.Now()})
		if err != nil {
			b.Fatal(err)
		}
		if err := pub.Publish(ctx, &wsroom.Publication{Room: room, Type: wsroom.PubMessage, Message: m}); err != nil {
			b.Fatal(err)
		}
		select {
		case <-got:
		case <-ctx.Done():
			b.Fatal("publication lost")
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkAppendPublishParallel is BenchmarkAppendPublish with many
// senders in the room at once, not waiting for deliveries.
func BenchmarkAppendPublishParallel(b *testing.B) {
	s, _ := newTestStore(b, StoreOptions{})
	pub, sub := newTestBroker(b, BrokerOptions{}), newTestBroker(b, BrokerOptions{})
	ctx := benchContext(b)
	room := "bench-" + random()
	var got atomic.Int64
	cancel, err := sub.Subscribe(ctx, room, func(*wsroom.Publication) { got.Add(1) })
	if err != nil {
		b.Fatal(err)
	}
	defer cancel()
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m, err := s.Append(ctx, room, wsroom.Message{From: "alice", Text: "hello, everyone", Time: time.Now()})
			if err == nil {
				err = pub.Publish(ctx, &wsroom.Publication{Room: room, Type: wsroom.PubMessage, Message: m})
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	for got.Load() < int64(b.N) {
		select {
		case <-time.After(time.Millisecond):
		case <-ctx.Done():
			b.Fatalf("%d of %d publications delivered", got.Load(), b.N)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
}

// BenchmarkReserveRelease measures a member's arrival and departure.
func BenchmarkReserveRelease(b *testing.B) {
	s, _ := newTestStore(b, StoreOptions{})
	ctx := benchContext(b)
	res := wsroom.Reservation{Room: "bench", Name: "alice", Owner: wsroom.Owner{Server: "srv-" + random(), Conn: "c"}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := s.Reserve(ctx, res, wsroom.ReserveOptions{Max: 1000, Lease: time.Minute}); err != nil {
			b.Fatal(err)
		}
		if err := s.Release(ctx, res); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkReserveReleaseParallel: many members arriving and leaving at
// once, in one room.
func BenchmarkReserveReleaseParallel(b *testing.B) {
	s, _ := newTestStore(b, StoreOptions{})
	ctx := benchContext(b)
	srv := "srv-" + random()
	var next atomic.Int64
	b.SetParallelism(4)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		res := wsroom.Reservation{Room: "bench", Name: fmt.Sprint("m", next.Add(1)), Owner: wsroom.Owner{Server: srv, Conn: "c"}}
		for pb.Next() {
			_, err := s.Reserve(ctx, res, wsroom.ReserveOptions{Max: 1000, Lease: time.Minute})
			if err == nil {
				err = s.Release(ctx, res)
			}
			if err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pairs/s")
}

// BenchmarkPublicationEncoding is the broker's encoding of a typical chat
// message, both ways.
func BenchmarkPublicationEncoding(b *testing.B) {
	p := &wsroom.Publication{Room: "lobby", Type: wsroom.PubMessage, Origin: "srv-1",
		Message: wsroom.Message{ID: 1_764_000_000_000_001, From: "alice", Text: "hello, everyone", Time: time.Now()}}
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		data, err := p.MarshalBinary()
		if err != nil {
			b.Fatal(err)
		}
		var q wsroom.Publication
		if err := q.UnmarshalBinary(data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPing is the floor the others stand on: one round trip to Redis
// through go-redis.
func BenchmarkPing(b *testing.B) {
	c := testClient(b)
	ctx := benchContext(b)
	for i := 0; i < b.N; i++ {
		if err := c.Ping(ctx).Err(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "pings/s")
}

// benchContext bounds a benchmark run, however many iterations it makes.
func benchContext(b *testing.B) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	b.Cleanup(cancel)
	return ctx
}
