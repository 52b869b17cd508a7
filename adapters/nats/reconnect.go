package wsroomnats

import (
	"context"
	"errors"

	"github.com/nats-io/nats.go"
)

// A reconnect loses the publications sent while the connection was down,
// so every subscription gets a PubResync once the server has its room's
// subscription again, and before any publication that arrives after that.
//
// The reconnect count of the connection (its epoch) tells the two apart:
// nats.go counts a reconnect, resends the subscriptions and only then
// starts reading, all under its connection lock. A round trip after that
// (confirm) proves the server has them. Each subscription remembers the
// epoch it is whole since; the room's handler, before delivering, and the
// watch goroutine, on every status change of the connection (for rooms
// where nothing is published), resync those that are behind.

// epoch returns the connection's reconnect count.
func (b *Broker) epoch() uint64 {
	return b.nc.Stats().Reconnects
}

// caughtUp returns the latest reconnect after which the server is known to
// have this connection's subscriptions, checking the current one first.
func (b *Broker) caughtUp() uint64 {
	if cur := b.epoch(); cur > b.confirmed.Load() {
		b.confirm(cur)
	}
	return b.confirmed.Load()
}

// confirm makes a round trip to the server after the reconnect cur; if it
// succeeds, the server has processed the subscriptions nats.go resent.
func (b *Broker) confirm(cur uint64) {
	b.confirmMu.Lock()
	defer b.confirmMu.Unlock()
	if b.confirmed.Load() >= cur {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, b.opts.Timeout)
	defer cancel()
	if err := b.flush(ctx); err != nil {
		// Down again, or closing: the next status change or publication
		// tries again.
		b.log.Debug("wsroomnats: round trip after a reconnect failed", "err", err)
		return
	}
	b.confirmed.Store(cur)
}

// watch logs the connection's status changes and resyncs the
// subscriptions after each reconnect. It returns when Close removes the
// status listener, which closes b.status.
func (b *Broker) watch() {
	defer close(b.done)
	for st := range b.status {
		if b.closed.Load() {
			continue
		}
		switch st {
		case nats.RECONNECTING, nats.DISCONNECTED:
			b.log.Warn("wsroomnats: connection lost; reconnecting", "status", st.String())
		case nats.CLOSED:
			b.log.Error("wsroomnats: connection closed; publish and subscribe fail from now on")
		}
		c := b.caughtUp()
		b.mu.Lock()
		rooms := make([]*room, 0, len(b.rooms))
		for _, r := range b.rooms {
			rooms = append(rooms, r)
		}
		b.mu.Unlock()
		n := 0
		for _, r := range rooms {
			r.mu.Lock()
			for _, s := range r.subs {
				if s.epoch < c {
					n++
				}
			}
			r.resyncLocked(c, false)
			r.mu.Unlock()
		}
		if n > 0 {
			b.log.Info("wsroomnats: reconnected; subscriptions told to resync", "reconnects", c, "subscriptions", n)
		}
	}
}

// flush makes a round trip to the server, through reconnects, until ctx
// ends. (nats.go fails a round trip that a disconnect interrupts as if the
// connection were closed.)
func (b *Broker) flush(ctx context.Context) error {
	for {
		err := b.nc.FlushWithContext(ctx)
		if err == nil || !errors.Is(err, nats.ErrConnectionClosed) || b.nc.IsClosed() || ctx.Err() != nil {
			return err
		}
	}
}
