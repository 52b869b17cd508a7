package wsroomredis

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
	"wsroom.dev/wsroom/brokertest"
)

// newTestBroker returns a Broker on the shared Redis whose pub/sub
// connection has a name of its own, closed when the test ends.
func newTestBroker(t testing.TB, opts BrokerOptions) *Broker {
	t.Helper()
	c := testClient(t)
	if opts.Prefix == "" {
		opts.Prefix = "wsroomtest:"
	}
	if opts.ClientName == "" {
		opts.ClientName = "wsroomtest-broker-" + random()
	}
	b, err := NewBroker(c, &opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { b.Close() })
	return b
}

// pubsubConns returns the CLIENT LIST entries of connections named name.
func pubsubConns(ctx context.Context, t testing.TB, c *redis.Client, name string) []map[string]string {
	t.Helper()
	list, err := c.ClientList(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]string
	for _, line := range strings.Split(list, "\n") {
		f := map[string]string{}
		for _, kv := range strings.Fields(line) {
			k, v, _ := strings.Cut(kv, "=")
			f[k] = v
		}
		if f["name"] == name {
			out = append(out, f)
		}
	}
	return out
}

// killPubSub kills b's pub/sub connection on the server.
func killPubSub(t testing.TB, b *Broker) {
	t.Helper()
	ctx := testContext(t)
	c := testClient(t)
	conns := pubsubConns(ctx, t, c, b.opts.ClientName)
	if len(conns) != 1 {
		t.Fatalf("%d connections named %q, want the broker's one", len(conns), b.opts.ClientName)
	}
	id, err := strconv.ParseInt(conns[0]["id"], 10, 64)
	assert.Success(t, err)
	n, err := c.ClientKillByFilter(ctx, "ID", strconv.FormatInt(id, 10)).Result()
	assert.Success(t, err)
	if n != 1 {
		t.Fatalf("CLIENT KILL ID %d killed %d connections", id, n)
	}
}

func TestBrokerConformance(t *testing.T) {
	t.Parallel()
	needRedis(t)
	brokertest.Run(t, brokertest.Harness{
		New:     func(t *testing.T) wsroom.Broker { return newTestBroker(t, BrokerOptions{}) },
		Disrupt: func(t *testing.T, b wsroom.Broker) { killPubSub(t, b.(*Broker)) },
	})
}

// TestBrokerOneConnection: a Broker subscribes every room on its one
// pub/sub connection, and unsubscribes a room when its last subscription
// is cancelled.
func TestBrokerOneConnection(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t, BrokerOptions{})
	c := testClient(t)
	ctx := testContext(t)
	const rooms = 50
	var cancels []func()
	for i := range rooms {
		for range 2 {
			cancel, err := b.Subscribe(ctx, fmt.Sprint("room-", i), func(*wsroom.Publication) {})
			assert.Success(t, err)
			cancels = append(cancels, cancel)
		}
	}
	conns := pubsubConns(ctx, t, c, b.opts.ClientName)
	if len(conns) != 1 || conns[0]["sub"] != strconv.Itoa(rooms) {
		t.Fatalf("connections named %q: %v; want one subscribed to %d channels", b.opts.ClientName, conns, rooms)
	}
	for _, cancel := range cancels {
		cancel()
	}
	waitUntil(t, "every channel unsubscribed", func() bool {
		conns := pubsubConns(ctx, t, c, b.opts.ClientName)
		return len(conns) == 1 && conns[0]["sub"] == "0"
	})
	// The Broker forgets a room once Redis confirmed its UNSUBSCRIBE.
	waitUntil(t, "every topic forgotten", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.topics) == 0 && len(b.dirty) == 0
	})
}

// TestBrokerResubscribe subscribes to a room again right after its last
// subscription was cancelled, while the UNSUBSCRIBE is in flight: the new
// subscription must be live when Subscribe returns.
func TestBrokerResubscribe(t *testing.T) {
	t.Parallel()
	b1, b2 := newTestBroker(t, BrokerOptions{}), newTestBroker(t, BrokerOptions{})
	ctx := testContext(t)
	room := "resubscribe-" + random()
	for i := range 50 {
		cancel, err := b2.Subscribe(ctx, room, func(*wsroom.Publication) {})
		assert.Success(t, err)
		cancel()
		got := make(chan string, 10)
		cancel, err = b2.Subscribe(ctx, room, func(p *wsroom.Publication) { got <- p.Message.Text })
		assert.Success(t, err)
		assert.Success(t, b1.Publish(ctx, &wsroom.Publication{Room: room, Type: wsroom.PubMessage, Message: wsroom.Message{Text: fmt.Sprint(i)}}))
		select {
		case text := <-got:
			if text != fmt.Sprint(i) {
				t.Fatalf("round %d: got %q", i, text)
			}
		case <-ctx.Done():
			t.Fatalf("round %d: the publication never arrived", i)
		}
		cancel()
	}
}

func TestBrokerClose(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t, BrokerOptions{})
	ctx := testContext(t)
	var mu sync.Mutex
	n := 0
	cancel, err := b.Subscribe(ctx, "close", func(*wsroom.Publication) { mu.Lock(); n++; mu.Unlock() })
	assert.Success(t, err)
	assert.Success(t, b.Close())
	assert.Success(t, b.Close())
	cancel()
	_, err = b.Subscribe(ctx, "close", func(*wsroom.Publication) {})
	assert.ErrorIs(t, ErrClosed, err)
	err = b.Publish(ctx, &wsroom.Publication{Room: "close", Type: wsroom.PubJoin, Name: "x"})
	assert.ErrorIs(t, ErrClosed, err)
}

func TestOpenBroker(t *testing.T) {
	t.Parallel()
	needRedis(t)
	ctx := testContext(t)
	b, err := OpenBroker(ctx, redisURL, &BrokerOptions{Prefix: "wsroomtest:"})
	assert.Success(t, err)
	got := make(chan *wsroom.Publication, 1)
	room := "open-" + random()
	cancel, err := b.Subscribe(ctx, room, func(p *wsroom.Publication) { c := *p; got <- &c })
	assert.Success(t, err)
	defer cancel()
	assert.Success(t, b.Publish(ctx, &wsroom.Publication{Room: room, Type: wsroom.PubBinary, Data: []byte{0, 1, 0xff}}))
	select {
	case p := <-got:
		assert.Equal(t, "data", []byte{0, 1, 0xff}, p.Data)
	case <-ctx.Done():
		t.Fatal("no publication")
	}
	assert.Success(t, b.Close())
	if _, err := OpenBroker(ctx, "http://x", nil); err == nil {
		t.Fatal("OpenBroker with a bad URL succeeded")
	}
	if _, err := NewBroker(testClient(t), &BrokerOptions{Prefix: "}"}); !errors.Is(err, wsroom.ErrBadOptions) {
		t.Fatalf("bad prefix: %v", err)
	}
}

// waitUntil polls cond, bounded by the test's context.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	ctx := testContext(t)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%s: not within the test's deadline", what)
		}
	}
}

// TestBrokerChaos subscribes and cancels in many rooms at once while the
// pub/sub connection is killed again and again: afterwards every
// subscription still open receives, and once all are cancelled the Broker
// holds no room.
func TestBrokerChaos(t *testing.T) {
	t.Parallel()
	b := newTestBroker(t, BrokerOptions{ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond})
	pub := newTestBroker(t, BrokerOptions{})
	c := testClient(t)
	ctx := testContext(t)
	rooms := make([]string, 8)
	for i := range rooms {
		rooms[i] = fmt.Sprint("chaos-", random())
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var kills atomic.Int64
	// The killer.
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(150 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			list, err := c.ClientList(ctx).Result()
			if err != nil {
				t.Error(err)
				return
			}
			for _, line := range strings.Split(list, "\n") {
				if strings.Contains(line, " name="+b.opts.ClientName+" ") {
					id, _, _ := strings.Cut(strings.TrimPrefix(line, "id="), " ")
					if c.ClientKillByFilter(ctx, "ID", id).Val() == 1 {
						kills.Add(1)
					}
				}
			}
		}
	}()
	// Subscribers that come and go; every third stays, up to 300.
	type held struct {
		room   string
		final  *atomic.Bool
		cancel func()
	}
	var mu sync.Mutex
	var open []held
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				room := rooms[(w+i)%len(rooms)]
				final := new(atomic.Bool)
				sctx, scancel := context.WithTimeout(ctx, 5*time.Second)
				cancel, err := b.Subscribe(sctx, room, func(p *wsroom.Publication) {
					if p.Type == wsroom.PubMessage && p.Message.Text == "final" {
						final.Store(true)
					}
				})
				scancel()
				if err != nil {
					continue // the context ended while the connection was down
				}
				mu.Lock()
				keep := i%3 == 0 && len(open) < 300
				if keep {
					open = append(open, held{room, final, cancel})
				}
				mu.Unlock()
				if !keep {
					cancel()
				}
			}
		}()
	}
	sleep(t, 2*time.Second)
	close(stop)
	wg.Wait()
	t.Logf("%d connections killed, %d subscriptions left open", kills.Load(), len(open))
	if len(open) == 0 || kills.Load() < 3 {
		t.Fatal("too little chaos")
	}
	// Every subscription left open is live once the connection is back:
	// publish until each has received (a publication sent while the
	// connection was still down is lost, as the contract allows).
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		left := 0
		for _, h := range open {
			if !h.final.Load() {
				left++
			}
		}
		if left == 0 {
			break
		}
		for _, r := range rooms {
			assert.Success(t, pub.Publish(ctx, &wsroom.Publication{Room: r, Type: wsroom.PubMessage, Message: wsroom.Message{Text: "final"}}))
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			t.Fatalf("%d of %d subscriptions never received after the chaos", left, len(open))
		}
	}
	for _, h := range open {
		h.cancel()
	}
	waitUntil(t, "every topic forgotten", func() bool {
		b.mu.Lock()
		defer b.mu.Unlock()
		return len(b.topics) == 0
	})
}
