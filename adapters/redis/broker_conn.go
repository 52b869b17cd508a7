package wsroomredis

import (
	"math/rand/v2"
	"time"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/wsroom"
)

// This file is the life of a Broker's pub/sub connection. Each connection
// is a new redis.PubSub, used from open to failure and then closed: the
// Broker never relies on go-redis reconnecting one by itself, so that it
// knows when publications may have been lost.

// subscribeBatch is the most channels one SUBSCRIBE or UNSUBSCRIBE names.
const subscribeBatch = 1000

// receiver owns the connections: it opens one, reads it until it fails,
// then waits (longer after each failed attempt) and opens the next, until
// Close.
func (b *Broker) receiver() {
	defer b.wg.Done()
	var wait time.Duration
	down := false // the connection failed and has not answered since
	for {
		ps := b.client.Subscribe(b.ctx) // no channel yet: connects on first use
		b.attempts.Add(1)
		answered := false
		if b.open(ps) {
			answered = b.receive(ps, down)
		}
		ps.Close()
		b.reset()
		if b.ctx.Err() != nil {
			return
		}
		if answered {
			wait = b.opts.ReconnectMin
		} else {
			wait = min(max(2*wait, b.opts.ReconnectMin), b.opts.ReconnectMax)
		}
		down = true
		// Wait between wait/2 and wait, so that servers that lost Redis
		// together do not come back in step.
		timer := time.NewTimer(wait/2 + rand.N(wait/2+1))
		select {
		case <-b.ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		}
	}
}

// open names the new connection, makes it the Broker's and has the keeper
// subscribe every room again. It reports false if the Broker is closed or
// the connection failed at once.
func (b *Broker) open(ps *redis.PubSub) bool {
	if b.opts.ClientName != "" {
		// Written before any SUBSCRIBE: RESP2 allows no CLIENT command on
		// a subscribed connection.
		if err := ps.ClientSetName(b.ctx, b.opts.ClientName); err != nil {
			b.lost(err)
			return false
		}
	}
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return false
	}
	b.ps = ps
	for _, t := range b.topics {
		b.dirty[t] = struct{}{}
	}
	b.mu.Unlock()
	b.poke()
	return true
}

// receive reads ps until it fails, and reports whether anything was read.
func (b *Broker) receive(ps *redis.PubSub, down bool) (answered bool) {
	for {
		msg, err := ps.Receive(b.ctx)
		if err != nil {
			if answered || !down {
				b.lost(err)
			}
			return answered
		}
		b.lastRecv.Store(time.Now().UnixNano())
		if !answered && down {
			b.log.Info("wsroomredis: pub/sub connection restored")
		}
		answered = true
		switch m := msg.(type) {
		case *redis.Message:
			b.dispatch(m)
		case *redis.Subscription:
			b.confirm(m)
		}
	}
}

// lost logs a connection failure, once per outage, unless the Broker is
// closing.
func (b *Broker) lost(err error) {
	if b.ctx.Err() == nil {
		b.log.Warn("wsroomredis: pub/sub connection lost; reconnecting", "err", err)
	}
}

// reset forgets the connection that failed: no channel is subscribed any
// more, and every subscription that was live is owed a PubResync.
func (b *Broker) reset() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.ps = nil
	for ch, t := range b.topics {
		t.wire, t.pending = false, 0
		if len(t.subs) == 0 {
			delete(b.topics, ch)
			delete(b.dirty, t)
			continue
		}
		for _, s := range t.subs {
			if s.live {
				s.live, s.resync = false, true
			}
		}
	}
}

// dispatch delivers a publication to the live subscriptions of its room.
func (b *Broker) dispatch(m *redis.Message) {
	b.mu.Lock()
	subs := b.buf[:0]
	if t := b.topics[m.Channel]; t != nil {
		for _, s := range t.subs {
			if s.live {
				subs = append(subs, s)
			}
		}
	}
	b.buf = subs
	b.mu.Unlock()
	if len(subs) == 0 {
		return
	}
	var p wsroom.Publication
	if err := p.UnmarshalBinary([]byte(m.Payload)); err != nil {
		b.log.Error("wsroomredis: dropped a publication", "channel", m.Channel, "err", err)
		return
	}
	for _, s := range subs {
		s.call(&p)
	}
	clear(subs)
}

// confirm counts Redis's confirmation of a SUBSCRIBE or UNSUBSCRIBE. When
// a channel's last command is confirmed and was SUBSCRIBE, the channel is
// live: its waiting subscriptions become live, and those that were live on
// an earlier connection get their PubResync before anything else.
func (b *Broker) confirm(m *redis.Subscription) {
	b.mu.Lock()
	t := b.topics[m.Channel]
	if t == nil {
		b.mu.Unlock()
		return
	}
	var owed []*subscription
	switch {
	case t.pending > 0:
		t.pending--
		if t.live() {
			for _, s := range t.subs {
				if s.live {
					continue
				}
				s.live = true
				if s.ready != nil {
					close(s.ready)
					s.ready = nil
				}
				if s.resync {
					s.resync = false
					owed = append(owed, s)
				}
			}
		} else if t.pending == 0 && len(t.subs) == 0 {
			delete(b.topics, t.channel)
			delete(b.dirty, t)
		}
	case m.Kind == "subscribe" && t.live():
		// A confirmation nobody asked for: go-redis subscribed again on a
		// connection of its own (a server handoff). Publications may have
		// been lost in between.
		for _, s := range t.subs {
			if s.live {
				owed = append(owed, s)
			}
		}
	}
	b.mu.Unlock()
	if len(owed) > 0 {
		p := &wsroom.Publication{Room: t.room, Type: wsroom.PubResync}
		for _, s := range owed {
			s.call(p)
		}
	}
}

// keeper writes the SUBSCRIBE and UNSUBSCRIBE commands that dirty topics
// need, one batch at a time so that a channel's commands reach Redis in the
// order they were decided, and checks a quiet connection with PING.
func (b *Broker) keeper() {
	defer b.wg.Done()
	tick := time.NewTicker(b.opts.PingInterval)
	defer tick.Stop()
	var pinged *redis.PubSub // pinged at pingedAt, no answer seen yet
	var pingedAt int64
	for {
		select {
		case <-b.ctx.Done():
			return
		case <-b.wake:
			b.flush()
		case <-tick.C:
			b.mu.Lock()
			ps := b.ps
			b.mu.Unlock()
			last, now := b.lastRecv.Load(), time.Now().UnixNano()
			switch {
			case ps == nil:
				pinged = nil
			case pinged == ps && last < pingedAt:
				b.log.Warn("wsroomredis: pub/sub connection does not answer PING; reconnecting", "after", b.opts.PingInterval)
				ps.Close() // the receiver's read fails
				pinged = nil
			case now-last >= int64(b.opts.PingInterval):
				if err := ps.Ping(b.ctx); err != nil {
					ps.Close()
					pinged = nil
					break
				}
				pinged, pingedAt = ps, now
			default:
				pinged = nil
			}
		}
	}
}

// flush writes the commands the dirty topics need on the current
// connection. A write that fails closes the connection: the receiver then
// starts over, and every topic is dirty again on the next one.
func (b *Broker) flush() {
	b.mu.Lock()
	ps := b.ps
	if ps == nil {
		b.mu.Unlock()
		return // open marks every topic dirty
	}
	var sub, unsub []string
	for t := range b.dirty {
		want := len(t.subs) > 0
		switch {
		case want && !t.wire:
			t.wire = true
			t.pending++
			sub = append(sub, t.channel)
		case !want && t.wire:
			t.wire = false
			t.pending++
			unsub = append(unsub, t.channel)
		case !want && t.pending == 0 && b.topics[t.channel] == t:
			delete(b.topics, t.channel)
		}
	}
	clear(b.dirty)
	b.mu.Unlock()

	for len(sub)+len(unsub) > 0 {
		var err error
		if len(sub) > 0 {
			n := min(len(sub), subscribeBatch)
			err = ps.Subscribe(b.ctx, sub[:n]...)
			sub = sub[n:]
		} else {
			n := min(len(unsub), subscribeBatch)
			err = ps.Unsubscribe(b.ctx, unsub[:n]...)
			unsub = unsub[n:]
		}
		if err != nil {
			ps.Close()
			return
		}
	}
}
