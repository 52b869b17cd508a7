package wsroomnats

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/nats-io/nats.go"
	"wsroom.dev/wsroom"
)

// room is one NATS subscription of a Broker, shared by the subscriptions
// to the room on this Broker, so that they all see the order the server
// delivered.
type room struct {
	b    *Broker
	name string
	refs int // Subscribe calls holding the room; guarded by b.mu

	// Set by the Subscribe call that created the room, before it closes
	// ready; read-only afterwards.
	ready chan struct{}
	ns    *nats.Subscription
	err   error

	slow <-chan nats.SubStatus // slow-consumer events of ns; used by handle only

	// mu is held while deliver runs, so that cancel waits for a deliver in
	// progress and a publication that raced with cancel finds the
	// subscription gone.
	mu     sync.Mutex
	subs   []*sub
	closed bool // by Close
}

// sub is one Subscribe call.
type sub struct {
	deliver func(*wsroom.Publication)
	epoch   uint64 // the reconnect this subscription is whole since; guarded by room.mu
}

// Subscribe implements wsroom.Broker. It returns once the NATS server has
// the subscription (a round trip, bounded by ctx, or by Options.Timeout if
// ctx has no deadline), so a publication from any server after that
// reaches deliver. deliver runs on the room's NATS delivery goroutine, one
// publication at a time; it must not call Subscribe or cancel for the same
// room on this Broker. cancel waits for a deliver in progress and may be
// called more than once.
func (b *Broker) Subscribe(ctx context.Context, name string, deliver func(*wsroom.Publication)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroomnats: subscribe to room %q: %w", name, err)
	}
	subj, err := b.subject(name)
	if err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, b.opts.Timeout)
		defer cancel()
	}
	// The reconnect count before the round trip: if the connection drops
	// after this, the subscription is resynced, perhaps once too often but
	// never too few times.
	s := &sub{deliver: deliver, epoch: b.epoch()}
	r, err := b.acquire(ctx, name, subj)
	if err != nil {
		return nil, fmt.Errorf("wsroomnats: subscribe to room %q: %w", name, err)
	}
	// The SUB was queued before this PING, so the PONG says the server has
	// it: the subscription is live.
	if err := b.flush(ctx); err != nil {
		b.release(r)
		return nil, fmt.Errorf("wsroomnats: subscribe to room %q: %w", name, err)
	}
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		b.release(r)
		return nil, fmt.Errorf("wsroomnats: subscribe to room %q: %w", name, ErrClosed)
	}
	r.subs = append(r.subs, s)
	r.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			r.mu.Lock()
			r.subs = slices.DeleteFunc(r.subs, func(x *sub) bool { return x == s })
			r.mu.Unlock()
			b.release(r)
		})
	}, nil
}

// acquire returns the room, subscribed on the connection, holding a
// reference to it that release gives back.
func (b *Broker) acquire(ctx context.Context, name, subj string) (*room, error) {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil, ErrClosed
	}
	r := b.rooms[name]
	create := r == nil
	if create {
		r = &room{b: b, name: name, ready: make(chan struct{})}
		b.rooms[name] = r
	}
	r.refs++
	b.mu.Unlock()

	if create {
		r.subscribe(subj)
	} else {
		select {
		case <-r.ready:
		case <-ctx.Done():
			b.release(r)
			return nil, ctx.Err()
		}
	}
	if r.err != nil {
		b.release(r)
		return nil, r.err
	}
	return r, nil
}

// subscribe creates the room's NATS subscription.
func (r *room) subscribe(subj string) {
	defer close(r.ready)
	ns, err := r.b.nc.Subscribe(subj, r.handle)
	if err != nil {
		r.err = err
		return
	}
	// A slow consumer loses publications: tell the subscriptions.
	r.slow = ns.StatusChanged(nats.SubscriptionSlowConsumer)
	if err := ns.SetPendingLimits(r.b.opts.MaxPending, nats.DefaultSubPendingBytesLimit); err != nil {
		ns.Unsubscribe()
		r.err = err
		return
	}
	r.ns = ns
}

// release gives back a reference taken by acquire; the last one ends the
// NATS subscription.
func (b *Broker) release(r *room) {
	b.mu.Lock()
	r.refs--
	last := r.refs == 0 && b.rooms[r.name] == r
	if last {
		delete(b.rooms, r.name)
	}
	b.mu.Unlock()
	if last {
		r.shut()
	}
}

// shut ends the room: no deliver runs once it returns. The NATS handler may
// still be running; it finds no subscription.
func (r *room) shut() {
	<-r.ready // Close may find a room whose creator is still subscribing
	r.mu.Lock()
	r.closed = true
	r.subs = nil
	r.mu.Unlock()
	if r.ns != nil {
		r.ns.Unsubscribe() // an error means the connection is closed: nothing to end
	}
}

// handle is the NATS handler of the room: nats.go calls it one message at
// a time, in the order the server sent them.
func (r *room) handle(m *nats.Msg) {
	<-r.ready // r.slow is set
	var p wsroom.Publication
	if err := p.UnmarshalBinary(m.Data); err != nil {
		r.b.log.Warn("wsroomnats: dropped a message that is not a publication", "subject", m.Subject, "err", err)
		return
	}
	if p.Room != r.name {
		r.b.log.Warn("wsroomnats: dropped a publication to another room", "subject", m.Subject, "room", p.Room)
		return
	}
	lost := r.lost()
	c := r.b.caughtUp()
	r.mu.Lock()
	defer r.mu.Unlock()
	r.resyncLocked(c, lost)
	for _, s := range r.subs {
		s.deliver(&p)
	}
}

// lost reports whether nats.go dropped publications of the room since the
// last call because deliver fell behind.
func (r *room) lost() bool {
	lost := false
	for {
		select {
		case st, ok := <-r.slow:
			if !ok {
				r.slow = nil
				return lost
			}
			if st == nats.SubscriptionSlowConsumer {
				lost = true
				var dropped int
				if r.ns != nil {
					dropped, _ = r.ns.Dropped()
				}
				r.b.log.Warn("wsroomnats: deliver fell behind; publications dropped, resyncing the room", "room", r.name, "dropped", dropped, "max_pending", r.b.opts.MaxPending)
			}
		default:
			return lost
		}
	}
}

// resyncLocked sends PubResync to the subscriptions that are not whole
// since the reconnect c, or to all of them if publications were lost.
// Called with r.mu held.
func (r *room) resyncLocked(c uint64, all bool) {
	var p *wsroom.Publication
	for _, s := range r.subs {
		if !all && s.epoch >= c {
			continue
		}
		s.epoch = max(s.epoch, c)
		if p == nil {
			p = &wsroom.Publication{Room: r.name, Type: wsroom.PubResync}
		}
		s.deliver(p)
	}
}
