//go:build unix

package wsroomredis

// Fault tests: each starts a private redis-server on a spare loopback port,
// so that killing, pausing and restarting it disturbs no other test.

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// privateRedis is a redis-server of the test's own.
type privateRedis struct {
	t       testing.TB
	bin     string
	port    int
	busPort int    // the cluster bus port of a cluster node; 0 for a plain server
	dir     string // working directory
	url     string
	cmd     *exec.Cmd
	exited  chan struct{} // closed once cmd has exited
	out     bytes.Buffer  // what it printed; read only once it exited
}

// startPrivateRedis starts a redis-server, a node of a cluster to be if
// cluster, and stops it when the test ends.
func startPrivateRedis(t testing.TB, cluster bool) *privateRedis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		msg := "redis-server not installed (apt-get install redis-server): the fault tests need one of their own"
		if required() {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	s := &privateRedis{t: t, bin: bin, dir: t.TempDir()}
	t.Cleanup(s.kill)
	// A port found free may be taken by another program before the server
	// binds it: then try others.
	for attempt := 1; ; attempt++ {
		s.port = freePort(t)
		if cluster {
			s.busPort = freePort(t)
		}
		err := s.run()
		if err == nil {
			break
		}
		if attempt == 5 || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatal(err)
		}
	}
	s.url = fmt.Sprintf("redis://127.0.0.1:%d/0", s.port)
	return s
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// start runs the server again (after kill), on the same port.
func (s *privateRedis) start() {
	s.t.Helper()
	if err := s.run(); err != nil {
		s.t.Fatal(err)
	}
}

// run starts the server and waits until it answers.
func (s *privateRedis) run() error {
	args := []string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--loglevel", "warning"}
	if s.busPort != 0 {
		// The nodes wait a minute before they call one another failed, so
		// that a busy machine does not take the cluster down mid-test.
		args = append(args, "--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(s.busPort),
			"--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "60000")
	}
	s.out.Reset()
	cmd := exec.Command(s.bin, args...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = &s.out, &s.out
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	s.cmd, s.exited = cmd, exited

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", s.port), DialerRetries: 1, MaxRetries: -1})
	defer c.Close()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for c.Ping(ctx).Err() != nil {
		select {
		case <-tick.C:
		case <-exited:
			s.cmd = nil
			return fmt.Errorf("redis-server on port %d exited: %s", s.port, s.out.String())
		case <-ctx.Done():
			s.kill()
			return fmt.Errorf("redis-server on port %d did not answer: %s", s.port, s.out.String())
		}
	}
	return nil
}

// kill stops the server at once, as a crash would.
func (s *privateRedis) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(syscall.SIGCONT) // if paused
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// pause freezes the server: connections stay open and nothing answers.
func (s *privateRedis) pause() { s.cmd.Process.Signal(syscall.SIGSTOP) }

func (s *privateRedis) resume() { s.cmd.Process.Signal(syscall.SIGCONT) }

// bounded runs op with a context of timeout and checks that it fails, and
// returns within the timeout (plus slack for the scheduler and -race on a
// busy machine: what it catches is a call that waits for a dial or read
// timeout of its own, 5s or more, or forever).
func bounded(t *testing.T, name string, timeout time.Duration, op func(context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	err := op(ctx)
	took := time.Since(start)
	t.Logf("%s: %v in %v", name, err, took)
	if err == nil {
		t.Errorf("%s succeeded while Redis was unavailable", name)
	}
	if took > timeout+2*time.Second {
		t.Errorf("%s took %v with a context of %v", name, took, timeout)
	}
}

// storeOps are every Store method, for bounded.
func storeOps(s *Store, srv string) map[string]func(context.Context) error {
	res := wsroom.Reservation{Room: "r", Name: "bob", Owner: wsroom.Owner{Server: srv, Conn: "c"}}
	return map[string]func(context.Context) error{
		"Reserve": func(ctx context.Context) error {
			_, err := s.Reserve(ctx, res, wsroom.ReserveOptions{Lease: time.Minute})
			return err
		},
		"Release": func(ctx context.Context) error { return s.Release(ctx, res) },
		"Members": func(ctx context.Context) error { _, _, err := s.Members(ctx, "r", "", 0); return err },
		"Refresh": func(ctx context.Context) error { _, err := s.Refresh(ctx, srv, time.Minute); return err },
		"Append": func(ctx context.Context) error {
			_, err := s.Append(ctx, "r", wsroom.Message{Text: "x"})
			return err
		},
		"Recent": func(ctx context.Context) error { _, err := s.Recent(ctx, "r", 5); return err },
		"Before": func(ctx context.Context) error { _, err := s.Before(ctx, "r", 1<<60, 5); return err },
		"After":  func(ctx context.Context) error { _, _, err := s.After(ctx, "r", 0, 5); return err },
	}
}

// TestStoreOutage: while Redis is down every call fails within its
// context; when Redis is back (with its data lost) the store works again,
// the servers learn that their leases were lost, and IDs keep increasing.
func TestStoreOutage(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t, false)
	ctx := testContext(t)
	s, err := OpenStore(ctx, r.url, nil)
	assert.Success(t, err)
	defer s.Close()
	srv := "srv-" + random()
	alice := wsroom.Reservation{Room: "r", Name: "alice", Owner: wsroom.Owner{Server: srv, Conn: "c"}}
	_, err = s.Reserve(ctx, alice, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	before, err := s.Append(ctx, "r", wsroom.Message{Text: "before"})
	assert.Success(t, err)

	r.kill()
	for _, timeout := range []time.Duration{200 * time.Millisecond, time.Second} {
		for name, op := range storeOps(s, srv) {
			bounded(t, name, timeout, op)
		}
	}

	r.start()
	waitUntil(t, "the store works again", func() bool {
		_, _, err := s.Members(ctx, "r", "", 0)
		return err == nil
	})
	_, err = s.Refresh(ctx, srv, time.Minute)
	assert.ErrorIs(t, wsroom.ErrLeaseExpired, err)
	alice.Owner.Server = "srv-" + random()
	_, err = s.Reserve(ctx, alice, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	after, err := s.Append(ctx, "r", wsroom.Message{Text: "after"})
	assert.Success(t, err)
	if after.ID <= before.ID {
		t.Fatalf("ID %d after the restart, %d before", after.ID, before.ID)
	}
}

// TestStoreHungServer: a Redis that accepts connections but answers
// nothing does not hold a call past its context.
func TestStoreHungServer(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t, false)
	ctx := testContext(t)
	s, err := OpenStore(ctx, r.url, nil)
	assert.Success(t, err)
	defer s.Close()
	_, err = s.Append(ctx, "r", wsroom.Message{Text: "x"})
	assert.Success(t, err)
	r.pause()
	for name, op := range storeOps(s, "srv-"+random()) {
		bounded(t, name, 300*time.Millisecond, op)
	}
	r.resume()
	waitUntil(t, "the store works again", func() bool {
		_, err := s.Append(ctx, "r", wsroom.Message{Text: "y"})
		return err == nil
	})
}

// sink collects a subscription's publications.
type sink struct {
	mu     sync.Mutex
	texts  []string
	resync int
	more   chan struct{}
}

func newSink() *sink { return &sink{more: make(chan struct{}, 1)} }

func (s *sink) deliver(p *wsroom.Publication) {
	s.mu.Lock()
	if p.Type == wsroom.PubResync {
		s.resync++
		s.texts = append(s.texts, "<resync>")
	} else {
		s.texts = append(s.texts, p.Message.Text)
	}
	s.mu.Unlock()
	select {
	case s.more <- struct{}{}:
	default:
	}
}

func (s *sink) wait(t *testing.T, what string, cond func(texts []string, resync int) bool) {
	t.Helper()
	ctx := testContext(t)
	for {
		s.mu.Lock()
		ok := cond(s.texts, s.resync)
		s.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-s.more:
		case <-ctx.Done():
			t.Fatalf("%s: not within the test's deadline", what)
		}
	}
}

func has(texts []string, want string) bool {
	for _, t := range texts {
		if t == want {
			return true
		}
	}
	return false
}

func text(room, s string) *wsroom.Publication {
	return &wsroom.Publication{Room: room, Type: wsroom.PubMessage, Message: wsroom.Message{Text: s}}
}

// TestBrokerOutage: while Redis is down, Publish fails within its context
// and the Broker tries to reconnect with a growing wait, not in a tight
// loop; when Redis is back it subscribes again by itself, tells its
// subscriptions with PubResync, and a Subscribe that waited through the
// outage succeeds.
func TestBrokerOutage(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t, false)
	ctx := testContext(t)
	newBroker := func() *Broker {
		o, err := redis.ParseURL(r.url)
		assert.Success(t, err)
		o.ContextTimeoutEnabled = true
		c := redis.NewClient(o)
		t.Cleanup(func() { c.Close() })
		b, err := NewBroker(c, &BrokerOptions{ReconnectMin: 50 * time.Millisecond, ReconnectMax: 400 * time.Millisecond})
		assert.Success(t, err)
		t.Cleanup(func() { b.Close() })
		return b
	}
	pub, sub := newBroker(), newBroker()
	s := newSink()
	cancel, err := sub.Subscribe(ctx, "r", s.deliver)
	assert.Success(t, err)
	defer cancel()
	assert.Success(t, pub.Publish(ctx, text("r", "before")))
	s.wait(t, "the first publication", func(texts []string, _ int) bool { return has(texts, "before") })

	r.kill()
	start := sub.attempts.Load()
	bounded(t, "Publish", 300*time.Millisecond, func(ctx context.Context) error { return pub.Publish(ctx, text("r", "lost")) })
	bounded(t, "Subscribe", 300*time.Millisecond, func(ctx context.Context) error {
		cancel, err := sub.Subscribe(ctx, "other", func(*wsroom.Publication) {})
		if err == nil {
			cancel()
		}
		return err
	})
	// A Subscribe that waits through the outage.
	late := newSink()
	lateDone := make(chan error, 1)
	var lateCancel func()
	go func() {
		var err error
		lateCancel, err = sub.Subscribe(ctx, "late", late.deliver)
		lateDone <- err
	}()
	const outage = 2 * time.Second
	sleep(t, outage)
	tries := sub.attempts.Load() - start
	// With no backoff the receiver would try thousands of times; with 50ms
	// doubling to 400ms, about 8.
	t.Logf("%d connection attempts in an outage of %v", tries, outage)
	if tries < 1 || tries > 20 {
		t.Errorf("%d connection attempts in an outage of %v", tries, outage)
	}
	select {
	case err := <-lateDone:
		t.Fatalf("Subscribe returned during the outage: %v", err)
	default:
	}

	r.start()
	s.wait(t, "a resync once Redis is back", func(_ []string, resync int) bool { return resync > 0 })
	select {
	case err := <-lateDone:
		assert.Success(t, err)
		defer lateCancel()
	case <-ctx.Done():
		t.Fatal("the Subscribe that waited through the outage never returned")
	}
	assert.Success(t, pub.Publish(ctx, text("r", "after")))
	assert.Success(t, pub.Publish(ctx, text("late", "late")))
	s.wait(t, "a publication after the outage", func(texts []string, _ int) bool { return has(texts, "after") })
	s.mu.Lock()
	if want := []string{"before", "<resync>", "after"}; !slices.Equal(s.texts, want) {
		t.Errorf("the subscription saw %q, want %q", s.texts, want)
	}
	s.mu.Unlock()
	late.wait(t, "a publication to the late subscription", func(texts []string, _ int) bool { return has(texts, "late") })
	late.mu.Lock()
	defer late.mu.Unlock()
	if late.resync != 0 {
		t.Errorf("a subscription that was never live before got %d resyncs", late.resync)
	}
}

// TestBrokerHungServer: a connection that stops answering is noticed by
// the PING check, replaced once Redis answers again, and the subscriptions
// get a PubResync.
func TestBrokerHungServer(t *testing.T) {
	t.Parallel()
	r := startPrivateRedis(t, false)
	ctx := testContext(t)
	o, err := redis.ParseURL(r.url)
	assert.Success(t, err)
	o.ReadTimeout = 500 * time.Millisecond
	c := redis.NewClient(o)
	defer c.Close()
	b, err := NewBroker(c, &BrokerOptions{PingInterval: 100 * time.Millisecond, ReconnectMin: 50 * time.Millisecond, ReconnectMax: 200 * time.Millisecond})
	assert.Success(t, err)
	defer b.Close()
	s := newSink()
	cancel, err := b.Subscribe(ctx, "r", s.deliver)
	assert.Success(t, err)
	defer cancel()
	first := b.attempts.Load()

	r.pause()
	waitUntil(t, "the silent connection given up", func() bool { return b.attempts.Load() > first })
	r.resume()
	s.wait(t, "a resync", func(_ []string, resync int) bool { return resync > 0 })
	assert.Success(t, b.Publish(ctx, text("r", "back")))
	s.wait(t, "a publication after the pause", func(texts []string, _ int) bool { return has(texts, "back") })
}

// TestOpenUnreachable: opening on a port where nothing listens fails
// within the context.
func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	url := fmt.Sprintf("redis://127.0.0.1:%d/0", freePort(t))
	bounded(t, "OpenStore", time.Second, func(ctx context.Context) error { _, err := OpenStore(ctx, url, nil); return err })
	bounded(t, "OpenBroker", time.Second, func(ctx context.Context) error { _, err := OpenBroker(ctx, url, nil); return err })
}
