package wsroomredis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/wsroom"
)

// Broker is a wsroom.Broker over Redis pub/sub: a publication to a room is
// a PUBLISH to the room's channel, and every Broker subscribed to it
// receives it. It is safe for concurrent use.
//
// A Broker holds one pub/sub connection, whatever the number of rooms and
// subscriptions; its subscriptions to a room share one channel
// subscription. Two goroutines, started by NewBroker and stopped by Close,
// own the connection: the receiver reads it and calls the deliver
// functions, one at a time, in the order Redis sent the publications; the
// keeper writes SUBSCRIBE and UNSUBSCRIBE commands and PINGs a quiet
// connection. When the connection fails, the receiver opens a new one
// (waiting between attempts, see BrokerOptions), subscribes again, and
// delivers a wsroom.PubResync publication to each subscription that was
// live before, ahead of anything else.
//
// Deliver functions must return quickly: while one runs, the Broker reads
// nothing. A deliver function must not call Subscribe, nor the cancel of
// its own subscription (it would wait for itself).
type Broker struct {
	client redis.UniversalClient
	owned  bool
	opts   BrokerOptions
	log    *slog.Logger

	ctx    context.Context // canceled by Close
	cancel context.CancelFunc
	wg     sync.WaitGroup // the receiver and the keeper
	wake   chan struct{}  // to the keeper: topics are dirty; capacity 1
	closed atomic.Bool
	once   sync.Once

	lastRecv atomic.Int64 // Unix ns of the last reply read from the connection
	attempts atomic.Int64 // connections opened, for the tests

	mu     sync.Mutex
	ps     *redis.PubSub       // the current connection; nil between two
	topics map[string]*topic   // by channel
	dirty  map[*topic]struct{} // topics whose channel subscription may need a command
	buf    []*subscription     // the receiver's scratch
}

// topic is a room's channel on this Broker.
type topic struct {
	room, channel string
	subs          []*subscription
	// wire is the last command written for the channel on the current
	// connection (true: SUBSCRIBE), pending how many of its commands Redis
	// has not confirmed yet. The channel is live when wire && pending == 0.
	wire    bool
	pending int
}

func (t *topic) live() bool { return t.wire && t.pending == 0 }

// subscription is one Subscribe call.
type subscription struct {
	t       *topic
	deliver func(*wsroom.Publication)
	ready   chan struct{} // closed when it first becomes live; guarded by Broker.mu
	live    bool          // receives publications; guarded by Broker.mu
	resync  bool          // a PubResync is due when it is live again; guarded by Broker.mu

	mu   sync.Mutex // held while deliver runs
	done bool       // cancelled; guarded by mu
}

var _ wsroom.Broker = (*Broker)(nil)

// NewBroker returns a Broker that uses client, the application's own
// (*redis.Client, failover or *redis.ClusterClient; not a *redis.Ring,
// whose shards do not share pub/sub), and starts its goroutines. opts may
// be nil. Close stops them but does not close client.
func NewBroker(client redis.UniversalClient, opts *BrokerOptions) (*Broker, error) {
	switch client.(type) {
	case nil:
		return nil, fmt.Errorf("%w: nil redis client", wsroom.ErrBadOptions)
	case *redis.Ring:
		return nil, fmt.Errorf("%w: the shards of a redis.Ring do not share pub/sub", wsroom.ErrBadOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	b := &Broker{
		client: client,
		opts:   o,
		log:    o.Logger,
		wake:   make(chan struct{}, 1),
		topics: make(map[string]*topic),
		dirty:  make(map[*topic]struct{}),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.wg.Add(2)
	go b.receiver()
	go b.keeper()
	return b, nil
}

// OpenBroker connects to the Redis at url (as redis.ParseURL reads it),
// checks that it answers within ctx, and returns a Broker that owns the
// connection: Close closes it.
func OpenBroker(ctx context.Context, url string, opts *BrokerOptions) (*Broker, error) {
	client, err := dial(ctx, url)
	if err != nil {
		return nil, err
	}
	b, err := NewBroker(client, opts)
	if err != nil {
		client.Close()
		return nil, err
	}
	b.owned = true
	return b, nil
}

// Close stops the Broker's goroutines and closes its pub/sub connection
// (and the client, if OpenBroker opened it). Subscribe calls still waiting
// return ErrClosed; no deliver function runs after Close returns. Close may
// be called more than once.
func (b *Broker) Close() error {
	var err error
	b.once.Do(func() {
		b.closed.Store(true)
		b.cancel()
		b.mu.Lock()
		ps := b.ps
		b.mu.Unlock()
		if ps != nil {
			ps.Close() // wakes the receiver
		}
		b.wg.Wait()
		if b.owned {
			if cerr := b.client.Close(); cerr != nil && !errors.Is(cerr, redis.ErrClosed) {
				err = fmt.Errorf("wsroomredis: close: %w", cerr)
			}
		}
	})
	return err
}

// Publish implements wsroom.Broker: it returns once Redis has accepted the
// publication, so the publications of one goroutine keep their order.
func (b *Broker) Publish(ctx context.Context, p *wsroom.Publication) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wsroomredis: publish to %q: %w", p.Room, err)
	}
	if b.closed.Load() {
		return fmt.Errorf("wsroomredis: publish to %q: %w", p.Room, ErrClosed)
	}
	data, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	// PUBLISH is keyless, and a ClusterClient would send each to any node:
	// naming the channel as its key sends a room's publications through
	// one node, the master of the channel's slot, so they keep one order.
	cmd := redis.NewIntCmd(ctx, "publish", channel(b.opts.Prefix, p.Room), data)
	cmd.SetFirstKeyPos(1)
	if err := b.client.Process(ctx, cmd); err != nil {
		return fmt.Errorf("wsroomredis: publish to %q: %w", p.Room, err)
	}
	return nil
}

// Subscribe implements wsroom.Broker. It returns once Redis has confirmed
// the channel's subscription on the Broker's connection (at once if another
// subscription of this Broker to the room is live), or with ctx's error.
func (b *Broker) Subscribe(ctx context.Context, room string, deliver func(*wsroom.Publication)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroomredis: subscribe to %q: %w", room, err)
	}
	ch := channel(b.opts.Prefix, room)
	s := &subscription{deliver: deliver}
	cancel := sync.OnceFunc(func() { b.unsubscribe(s) })

	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil, fmt.Errorf("wsroomredis: subscribe to %q: %w", room, ErrClosed)
	}
	t := b.topics[ch]
	if t == nil {
		t = &topic{room: room, channel: ch}
		b.topics[ch] = t
	}
	s.t = t
	t.subs = append(t.subs, s)
	if t.live() {
		s.live = true
		b.mu.Unlock()
		return cancel, nil
	}
	ready := make(chan struct{})
	s.ready = ready
	b.dirty[t] = struct{}{}
	b.mu.Unlock()
	b.poke()

	select {
	case <-ready:
		return cancel, nil
	case <-ctx.Done():
		cancel()
		return nil, fmt.Errorf("wsroomredis: subscribe to %q: %w", room, ctx.Err())
	case <-b.ctx.Done():
		cancel()
		return nil, fmt.Errorf("wsroomredis: subscribe to %q: %w", room, ErrClosed)
	}
}

// unsubscribe removes s; when it returns, s.deliver is not running and will
// not run again.
func (b *Broker) unsubscribe(s *subscription) {
	b.mu.Lock()
	t := s.t
	t.subs = slices.DeleteFunc(t.subs, func(x *subscription) bool { return x == s })
	empty := len(t.subs) == 0
	if empty {
		b.dirty[t] = struct{}{}
	}
	b.mu.Unlock()
	if empty {
		b.poke()
	}
	s.mu.Lock()
	s.done = true
	s.mu.Unlock()
}

// poke tells the keeper that topics are dirty.
func (b *Broker) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

// call delivers p to s unless s was cancelled.
func (s *subscription) call(p *wsroom.Publication) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.done {
		s.deliver(p)
	}
}
