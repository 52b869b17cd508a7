package faults_test

import (
	"bytes"
	"context"
	"net"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// roundTrips has m say n messages, one at a time, and returns how long
// each took to come back, sorted.
func roundTrips(ctx context.Context, t *testing.T, m *member, n int) []time.Duration {
	t.Helper()
	var d []time.Duration
	for range n {
		start := time.Now()
		if err := m.say(ctx, "rt"); err != nil {
			t.Fatal(err)
		}
		if _, err := m.next(ctx, "message"); err != nil {
			t.Fatal(err)
		}
		d = append(d, time.Since(start))
		tick := time.NewTimer(60 * time.Millisecond) // under the rate limit of 20/s
		select {
		case <-tick.C:
		case <-ctx.Done():
		}
	}
	slices.Sort(d)
	return d
}

func pct(d []time.Duration, p float64) time.Duration {
	return d[min(len(d)-1, int(float64(len(d))*p))].Round(10 * time.Microsecond)
}

// TestPingFlood: a client flooding pings as fast as it can write them
// (reading its pongs) does not hold up the other members: their messages
// still come back promptly. Pings are limited apart from frames (5 a second,
// bursts of 20): the flooder gets about a burst of pongs, then none, then
// 1008. A client flooding pings without reading its pongs is closed too.
func TestPingFlood(t *testing.T) {
	// Not parallel: the flood takes a core, and the test measures latency.
	ctx := testContext(t, 90*time.Second)
	e := newEnv(t, wsroom.Options{})
	a := e.join(ctx, "pf", "a")
	base := roundTrips(ctx, t, a, 30)

	f, err := dialRaw(e.addr(), "/chat/pf", wsroom.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pongs atomic.Int64
	readerDone := make(chan error, 1)
	go func() {
		for {
			op, _, err := f.readFrame()
			if err != nil {
				readerDone <- err
				return
			}
			if op == opPong {
				pongs.Add(1)
			}
		}
	}()
	batch := bytes.Repeat(frame(opPing, []byte("12345678")), 256)
	floodCtx, stopFlood := context.WithCancel(ctx)
	var pings atomic.Int64
	flooding := make(chan error, 1)
	go func() {
		for floodCtx.Err() == nil {
			f.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := f.Write(batch); err != nil {
				flooding <- err
				return
			}
			pings.Add(256)
		}
		flooding <- nil
	}()
	start := time.Now()
	during := roundTrips(ctx, t, a, 30)
	stopFlood()
	floodErr := <-flooding
	elapsed := time.Since(start)
	t.Logf("ping flood for %v: %d pings written (%.0f/s), %d pongs back; flooder's writes ended with %v",
		elapsed.Round(time.Millisecond), pings.Load(), float64(pings.Load())/elapsed.Seconds(), pongs.Load(), floodErr)
	t.Logf("another member's round trip: p50 %v p99 %v before, p50 %v p99 %v during the flood",
		pct(base, .5), pct(base, .99), pct(during, .5), pct(during, .99))
	if limit := max(10*pct(base, .99), time.Second); pct(during, .99) > limit {
		t.Errorf("round trips during the ping flood: p99 %v, over %v", pct(during, .99), limit)
	}
	if n := pongs.Load(); n > 30 {
		t.Errorf("the flooder got %d pongs: pings are not limited", n)
	}
	if floodErr == nil {
		t.Errorf("the flooder's connection was not closed")
	}
	f.Close()
	<-readerDone

	// A flooder that never reads its pongs, with the largest pings (125
	// bytes) and a small receive buffer, so that the pongs fill the way
	// back quickly.
	g, err := dialRaw(e.addr(), "/chat/pf", wsroom.Subprotocol)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	g.Conn.(*net.TCPConn).SetReadBuffer(4 << 10)
	big := bytes.Repeat(frame(opPing, bytes.Repeat([]byte("p"), 125)), 64)
	start = time.Now()
	var written int64
	var werr error
	for time.Since(start) < 30*time.Second {
		g.SetWriteDeadline(time.Now().Add(10 * time.Second))
		if _, werr = g.Write(big); werr != nil {
			break
		}
		written += 64
	}
	t.Logf("a flooder that reads nothing wrote %d pings before its writes failed after %v: %v", written, time.Since(start).Round(time.Millisecond), werr)
	if werr == nil {
		t.Errorf("a flooder that reads nothing still writes pings after 30s")
	}
	waitFor(ctx, t, "the non-reading flooder's connection dropped", func() bool { return e.srv.Stats().Connections == 1 })
}
