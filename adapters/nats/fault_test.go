package wsroomnats

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"wsroom.dev/wsroom"
)

// TestServerRestart kills the NATS server under two brokers and starts it
// again: publishing is buffered during the outage, subscribing fails
// within its context, the brokers reconnect with backoff (not in a tight
// loop), every subscription gets one PubResync before what follows, and
// publications flow again both ways.
func TestServerRestart(t *testing.T) {
	t.Parallel()
	srv := startPrivate(t, "")
	pub, _ := open(t, srv.url, nil)
	sub, subDial := open(t, srv.url, nil)
	r := newRoom(t)
	remote := subscribeSink(t, sub, r)
	local := subscribeSink(t, pub, r)
	publish(t, pub, msg(r, "before"))
	remote.waitFor(t, 10*time.Second, "a publication before the outage", has("before"))
	local.waitFor(t, 10*time.Second, "a publication before the outage", has("before"))

	srv.kill()
	down := time.Now()
	waitConn(t, sub, "the subscriber's broker sees the outage", func() bool { return !sub.nc.IsConnected() })
	waitConn(t, pub, "the publisher's broker sees the outage", func() bool { return !pub.nc.IsConnected() })
	dials := subDial.count()

	// Publish is buffered by nats.go while it reconnects: nil, at once.
	for _, text := range []string{"buffered-1", "buffered-2"} {
		within(t, 2*time.Second, "Publish during an outage", func() {
			ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
			defer cancel()
			if err := pub.Publish(ctx, msg(r, text)); err != nil {
				t.Fatalf("Publish during an outage: %v, want it buffered", err)
			}
		})
	}
	// Subscribe cannot be live: it fails when its context ends.
	within(t, 2*time.Second, "Subscribe during an outage", func() {
		ctx, cancel := context.WithTimeout(testCtx(t), 300*time.Millisecond)
		defer cancel()
		if cancel, err := sub.Subscribe(ctx, newRoom(t), func(*wsroom.Publication) {}); err == nil {
			cancel()
			t.Fatal("Subscribe succeeded while the server was down")
		} else if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Subscribe during an outage: %v, want the context's deadline", err)
		}
	})
	pause(t, 2*time.Second-time.Since(down))
	// Backoff: rounds wait 50-100, 100-200, 200-400, 400-800, 800-1600 ms:
	// at most 5 dials in 2 s, not hundreds.
	if n := subDial.count() - dials; n < 2 || n > 6 {
		t.Fatalf("%d reconnect attempts in a 2 s outage, want 2 to 6 (backoff)", n)
	}

	srv.start()
	up := time.Now()
	remote.waitFor(t, 10*time.Second, "a resync after the server came back", has("resync"))
	if took := time.Since(up); took > reconnectMax+2*time.Second {
		t.Fatalf("the resync came %v after the server, want at most %v", took, reconnectMax+2*time.Second)
	}
	// The publisher's own subscription is resent before the buffer is
	// flushed: it gets the resync, then the buffered publications.
	ev := local.waitFor(t, 10*time.Second, "the resync and the buffered publications", has("resync", "buffered-1", "buffered-2"))
	if i, j, k := slices.Index(ev, "resync"), slices.Index(ev, "buffered-1"), slices.Index(ev, "buffered-2"); !(i < j && j < k) {
		t.Fatalf("local subscription got %q: want the resync, then the buffered publications in order", ev)
	}

	publish(t, pub, msg(r, "after-1"))
	publish(t, sub, msg(r, "after-2"))
	for _, s := range []*sink{remote, local} {
		s.waitFor(t, 10*time.Second, "publications after the outage, both ways", has("after-1", "after-2"))
	}
	pause(t, 300*time.Millisecond)
	for name, s := range map[string]*sink{"remote": remote, "local": local} {
		ev := s.snapshot()
		if n := len(slices.DeleteFunc(slices.Clone(ev), func(e string) bool { return e != "resync" })); n != 1 {
			t.Fatalf("%s subscription got %d resyncs for one reconnect: %q", name, n, ev)
		}
	}
}

// TestReconnectBufferFull: once the reconnect buffer is full, Publish
// fails at once with nats.go's error; Close does not wait for the server.
func TestReconnectBufferFull(t *testing.T) {
	t.Parallel()
	srv := startPrivate(t, "")
	b, _ := open(t, srv.url, &Options{NATSOptions: []nats.Option{nats.ReconnectBufSize(4096)}})
	r := newRoom(t)
	srv.kill()
	waitConn(t, b, "the broker sees the outage", func() bool { return !b.nc.IsConnected() })
	var err error
	for i := 0; i < 1000 && err == nil; i++ {
		within(t, 2*time.Second, "Publish during an outage", func() {
			ctx, cancel := context.WithTimeout(testCtx(t), time.Second)
			defer cancel()
			err = b.Publish(ctx, msg(r, strings.Repeat("x", 100)))
		})
	}
	if !errors.Is(err, nats.ErrReconnectBufExceeded) {
		t.Fatalf("Publish with a full reconnect buffer: %v, want nats.ErrReconnectBufExceeded", err)
	}
	within(t, 2*time.Second, "Close during an outage", func() {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	})
	if err := b.Publish(testCtx(t), msg(r, "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
}

// TestDisruptIdle: a broker whose rooms see no publications still tells
// its subscriptions to resync after a reconnect.
func TestDisruptIdle(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	b, d := open(t, natsURL(), nil)
	sinks := []*sink{subscribeSink(t, b, newRoom(t)), subscribeSink(t, b, newRoom(t))}
	d.kill()
	for _, s := range sinks {
		s.waitFor(t, 10*time.Second, "a resync in an idle room", has("resync"))
	}
}

// TestLargeBinary carries a 1 MiB binary message through a server whose
// max_payload was raised to 2 MB, as the package documentation says.
func TestLargeBinary(t *testing.T) {
	t.Parallel()
	srv := startPrivate(t, "max_payload: 2MB\n")
	b1, _ := open(t, srv.url, nil)
	b2, _ := open(t, srv.url, nil)
	r := newRoom(t)
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 31)
	}
	got := make(chan []byte, 1)
	cancel, err := b2.Subscribe(testCtx(t), r, func(p *wsroom.Publication) { got <- slices.Clone(p.Data) })
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	publish(t, b1, &wsroom.Publication{Room: r, Type: wsroom.PubBinary, Name: "a", Data: data})
	select {
	case g := <-got:
		if !slices.Equal(g, data) {
			t.Fatalf("1 MiB of binary data changed on the way (%d bytes came)", len(g))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("1 MiB binary publication not delivered within 10s")
	}
}

// TestTooLarge: with the default max_payload (1 MB), a 1 MiB binary
// message (1.4 MB encoded) fails at once with ErrTooLarge; 700 KB passes.
func TestTooLarge(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	b, _ := open(t, natsURL(), nil)
	if mp := b.nc.MaxPayload(); mp > 1<<20 {
		t.Skipf("the server's max_payload is %d, above the default this test is about", mp)
	}
	r := newRoom(t)
	s := subscribeSink(t, b, r)
	var err error
	within(t, 5*time.Second, "Publish of a too large publication", func() {
		err = b.Publish(testCtx(t), &wsroom.Publication{Room: r, Type: wsroom.PubBinary, Name: "a", Data: make([]byte, 1<<20)})
	})
	if !errors.Is(err, ErrTooLarge) || !strings.Contains(err.Error(), "max_payload is 1048576") {
		t.Fatalf("Publish of 1 MiB binary data: %v, want ErrTooLarge with the sizes", err)
	}
	publish(t, b, &wsroom.Publication{Room: r, Type: wsroom.PubBinary, Name: "a", Data: make([]byte, 700_000), Message: wsroom.Message{Text: "700k"}})
	s.waitFor(t, 10*time.Second, "a 700 KB binary publication", has("700k"))
}

// TestSlowConsumer: when deliver falls so far behind that nats.go drops
// publications, the room's subscriptions get a PubResync.
func TestSlowConsumer(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	pub, _ := open(t, natsURL(), nil)
	b, _ := open(t, natsURL(), &Options{MaxPending: 4})
	r := newRoom(t)
	gate, entered := make(chan struct{}), make(chan struct{})
	s := newSink()
	first := true
	cancel, err := b.Subscribe(testCtx(t), r, func(p *wsroom.Publication) {
		if first {
			first = false
			close(entered)
			<-gate
		}
		s.deliver(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	defer cancel()
	const n = 50
	for i := range n {
		publish(t, pub, msg(r, "m"+string(rune('A'+i%26))))
	}
	<-entered
	waitConn(t, b, "nats.go drops publications", func() bool {
		b.mu.Lock()
		rm := b.rooms[r]
		b.mu.Unlock()
		d, _ := rm.ns.Dropped()
		return d > 0
	})
	close(gate)
	s.waitFor(t, 10*time.Second, "a resync after drops", has("resync"))
	// Published into a full queue, "after" would be dropped too (and the
	// room resynced again): wait until every publication has been
	// delivered or dropped, and none waits.
	waitConn(t, b, "the backlog delivered", func() bool {
		b.mu.Lock()
		rm := b.rooms[r]
		b.mu.Unlock()
		dropped, _ := rm.ns.Dropped()
		delivered, _ := rm.ns.Delivered()
		pending, _, _ := rm.ns.Pending()
		return dropped+int(delivered) >= n && pending == 0
	})
	publish(t, pub, msg(r, "after"))
	ev := s.waitFor(t, 10*time.Second, "a publication after the resync", has("after"))
	if len(ev) >= n {
		t.Fatalf("%d events: nothing was dropped", len(ev))
	}
}

// TestCancelWaitsForDeliver: cancel does not return while deliver runs,
// and nothing is delivered after it returns.
func TestCancelWaitsForDeliver(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	b, _ := open(t, natsURL(), nil)
	r := newRoom(t)
	gate, entered := make(chan struct{}), make(chan struct{}, 1)
	s := newSink()
	cancel, err := b.Subscribe(testCtx(t), r, func(p *wsroom.Publication) {
		select {
		case entered <- struct{}{}:
			<-gate
		default:
		}
		s.deliver(p)
	})
	if err != nil {
		t.Fatal(err)
	}
	publish(t, b, msg(r, "1"))
	<-entered
	canceled := make(chan struct{})
	go func() {
		defer close(canceled)
		cancel()
	}()
	publish(t, b, msg(r, "2"))
	select {
	case <-canceled:
		t.Fatal("cancel returned while deliver was running")
	case <-time.After(200 * time.Millisecond):
	}
	close(gate)
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("cancel did not return after deliver did")
	}
	// "2" raced with cancel: it may have been delivered before cancel
	// returned, never after.
	before := s.snapshot()
	publish(t, b, msg(r, "3"))
	pause(t, 300*time.Millisecond)
	if ev := s.snapshot(); !slices.Equal(ev, before) || before[0] != "1" {
		t.Fatalf("got %q, then %q after cancel returned; want nothing after", before, ev)
	}
	cancel()
}

// TestClose: Close ends every subscription and the Broker's goroutine;
// Publish and Subscribe fail with ErrClosed afterwards; a Broker from
// NewBroker leaves the application's connection open.
func TestClose(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	b, err := NewBroker(nc, &Options{Logger: testLogger(t)})
	if err != nil {
		t.Fatal(err)
	}
	other, _ := open(t, natsURL(), nil)
	r := newRoom(t)
	s := newSink()
	cancel, err := b.Subscribe(testCtx(t), r, s.deliver)
	if err != nil {
		t.Fatal(err)
	}
	publish(t, other, msg(r, "1"))
	s.waitFor(t, 10*time.Second, "a publication", has("1"))
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	publish(t, other, msg(r, "2"))
	pause(t, 300*time.Millisecond)
	if ev := s.snapshot(); !slices.Equal(ev, []string{"1"}) {
		t.Fatalf("got %q, want nothing after Close", ev)
	}
	cancel() // after Close: harmless
	if err := b.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if err := b.Publish(testCtx(t), msg(r, "x")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Publish after Close: %v, want ErrClosed", err)
	}
	if _, err := b.Subscribe(testCtx(t), r, s.deliver); !errors.Is(err, ErrClosed) {
		t.Fatalf("Subscribe after Close: %v, want ErrClosed", err)
	}
	if !nc.IsConnected() {
		t.Fatal("Close of a Broker from NewBroker closed the application's connection")
	}
	if n := nc.NumSubscriptions(); n != 0 {
		t.Fatalf("%d NATS subscriptions left on the application's connection after Close", n)
	}
}

// TestPrefix: brokers with different prefixes do not see each other, and
// a room's subject is the prefix and the escaped name.
func TestPrefix(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	a, _ := open(t, natsURL(), &Options{Prefix: "wsroom-test.a."})
	b, _ := open(t, natsURL(), &Options{Prefix: "wsroom-test.b."})
	nc, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	raw, err := nc.SubscribeSync("wsroom-test.a.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	r := newRoom(t)
	sa, sb := subscribeSink(t, a, r), subscribeSink(t, b, r)
	publish(t, a, msg(r, "a"))
	sa.waitFor(t, 10*time.Second, "a publication under the same prefix", has("a"))
	m, err := raw.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := roomToken(r)
	if m.Subject != "wsroom-test.a."+tok {
		t.Fatalf("subject %q, want %q", m.Subject, "wsroom-test.a."+tok)
	}
	pause(t, 300*time.Millisecond)
	if ev := sb.snapshot(); len(ev) != 0 {
		t.Fatalf("a broker with another prefix got %q", ev)
	}
}

// TestGarbage: a message on a room's subject that is not a publication, or
// is one for another room, is dropped (and logged), not delivered.
func TestGarbage(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	b, _ := open(t, natsURL(), nil)
	r := newRoom(t)
	s := subscribeSink(t, b, r)
	subj, _ := b.subject(r)
	if err := b.nc.Publish(subj, []byte("not json")); err != nil {
		t.Fatal(err)
	}
	other, _ := msg("elsewhere", "other").MarshalBinary()
	if err := b.nc.Publish(subj, other); err != nil {
		t.Fatal(err)
	}
	publish(t, b, msg(r, "ok"))
	ev := s.waitFor(t, 10*time.Second, "the real publication", has("ok"))
	if !slices.Equal(ev, []string{"ok"}) {
		t.Fatalf("got %q, want only the real publication", ev)
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for _, o := range []*Options{{Prefix: "nodot"}, {Prefix: "a.*."}, {Timeout: -1}, {MaxPending: -1}} {
		if _, err := OpenBroker(context.Background(), "nats://127.0.0.1:1", o); !errors.Is(err, wsroom.ErrBadOptions) {
			t.Errorf("OpenBroker(%+v): %v, want ErrBadOptions", *o, err)
		}
	}
	if _, err := NewBroker(nil, nil); !errors.Is(err, wsroom.ErrBadOptions) {
		t.Errorf("NewBroker(nil): %v, want ErrBadOptions", err)
	}
}

func TestNewBrokerChecksConn(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	nc, err := nats.Connect(natsURL(), nats.NoEcho())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := NewBroker(nc, nil); !errors.Is(err, wsroom.ErrBadOptions) {
		t.Fatalf("NewBroker on a NoEcho connection: %v, want ErrBadOptions", err)
	}
	if _, err := OpenBroker(testCtx(t), natsURL(), &Options{NATSOptions: []nats.Option{nats.NoEcho()}}); !errors.Is(err, wsroom.ErrBadOptions) {
		t.Fatalf("OpenBroker with NoEcho: %v, want ErrBadOptions", err)
	}
	closed, err := nats.Connect(natsURL())
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	if _, err := NewBroker(closed, nil); !errors.Is(err, nats.ErrConnectionClosed) {
		t.Fatalf("NewBroker on a closed connection: %v, want nats.ErrConnectionClosed", err)
	}
}

// TestOpenBrokerUnreachable: OpenBroker fails, within its context, when
// nothing listens, and does not print the password of the URL.
func TestOpenBrokerUnreachable(t *testing.T) {
	t.Parallel()
	srv := startPrivate(t, "")
	url := strings.Replace(srv.url, "nats://", "nats://user:secret@", 1)
	srv.kill()
	within(t, 3*time.Second, "OpenBroker with nothing listening", func() {
		_, err := OpenBroker(testCtx(t), url, nil)
		if err == nil {
			t.Fatal("OpenBroker succeeded with nothing listening")
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("the error shows the password: %v", err)
		}
	})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := OpenBroker(ctx, url, nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("OpenBroker with a canceled context: %v", err)
	}
}

// TestSubscribeAcrossOutage: a Subscribe whose round trip an outage
// interrupts (nats.go fails it as if the connection were closed) waits for
// the reconnect and succeeds, live.
func TestSubscribeAcrossOutage(t *testing.T) {
	t.Parallel()
	srv := startPrivate(t, "")
	b, _ := open(t, srv.url, nil)
	other, _ := open(t, srv.url, nil)
	r := newRoom(t)
	subscribeSink(t, b, r) // the room's NATS subscription exists
	// A stopped server reads nothing: Subscribe's PING stays unanswered.
	srv.freeze()
	type result struct {
		cancel func()
		err    error
	}
	s := newSink()
	done := make(chan result, 1)
	go func() {
		ctx, cancel := context.WithTimeout(testCtx(t), 20*time.Second)
		defer cancel()
		c, err := b.Subscribe(ctx, r, s.deliver)
		done <- result{c, err}
	}()
	pause(t, 300*time.Millisecond)
	srv.kill() // the connection drops with the PING in flight
	waitConn(t, b, "the broker sees the outage", func() bool { return !b.nc.IsConnected() })
	select {
	case res := <-done:
		t.Fatalf("Subscribe returned during the outage: %v", res.err)
	default:
	}
	srv.start()
	var res result
	select {
	case res = <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("Subscribe did not return after the server came back")
	}
	if res.err != nil {
		t.Fatalf("Subscribe across an outage: %v", res.err)
	}
	defer res.cancel()
	waitConn(t, other, "the other broker is back", func() bool { return other.nc.IsConnected() })
	publish(t, other, msg(r, "live"))
	s.waitFor(t, 10*time.Second, "a publication after Subscribe returned", has("live"))
}

// TestHungServer: on a server that stopped reading (a hung host), Publish
// blocks at most Options.Timeout, the write deadline, and fails; the
// connection then counts as lost: Publish buffers, and fails at once when
// the buffer is full.
func TestHungServer(t *testing.T) {
	t.Parallel()
	srv := startPrivate(t, "")
	b, _ := open(t, srv.url, &Options{Timeout: time.Second, NATSOptions: []nats.Option{nats.ReconnectBufSize(512 << 10)}})
	r := newRoom(t)
	srv.freeze()
	p := &wsroom.Publication{Room: r, Type: wsroom.PubBinary, Name: "a", Data: make([]byte, 100_000)}
	var err error
	var failed []error
	for i := 0; i < 1000 && !errors.Is(err, nats.ErrReconnectBufExceeded); i++ {
		within(t, 3*time.Second, "Publish to a hung server", func() {
			err = b.Publish(testCtx(t), p)
		})
		if err != nil && !errors.Is(err, nats.ErrReconnectBufExceeded) {
			failed = append(failed, err)
		}
	}
	if !errors.Is(err, nats.ErrReconnectBufExceeded) {
		t.Fatalf("Publish to a hung server, 1000 times 133 KB: %v, want the reconnect buffer to fill", err)
	}
	// The write that hit the deadline fails; the connection is then lost.
	if len(failed) > 2 {
		t.Fatalf("%d Publish calls failed before the connection counted as lost: %v", len(failed), failed)
	}
	t.Logf("failed on the write deadline: %v", failed)
}
