package wsroom

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Metrics receives what a Server measures as it happens, for an exporter;
// Server.Stats has the totals and gauges to read when scraped. The methods
// are called on the goroutines doing the work: they must be quick, never
// block, and be safe for concurrent use. wsroom.dev/adapters/prometheus
// implements it.
type Metrics interface {
	// Left is told that a member left, and why.
	Left(reason LeaveReason)
	// Refused is told of a refusal: an HTTP status for an upgrade ("429",
	// "503", ...) or an error code for a frame ("rate_limited", ...).
	Refused(code string)
	// Backend is told how long a call to the Store or the Broker took
	// and how it ended; op is the method: "Reserve", "Append",
	// "Publish", ...
	Backend(op string, d time.Duration, err error)
}

// refused counts a refusal.
func (s *Server) refused(code string) {
	s.stats.refused.Add(1)
	if m := s.opts.Metrics; m != nil {
		m.Refused(code)
	}
}

// left counts a departure.
func (s *Server) left(reason LeaveReason) {
	if int(reason) < len(s.stats.left) {
		s.stats.left[reason].Add(1)
	}
	if m := s.opts.Metrics; m != nil {
		m.Left(reason)
	}
}

// breakerOpen is how long calls to a backend that just failed fail at
// once, without waiting for it.
const breakerOpen = 500 * time.Millisecond

// breaker fails calls at once for a while after one failed for a reason of
// the backend's own (unreachable, too slow), so that a member's reading
// goroutine, which waits for its calls, is not held BackendTimeout per
// message while the backend is down (its pongs would wait too). After
// breakerOpen, the next call tries again.
type breaker struct {
	openUntil atomic.Int64 // Unix nanoseconds; 0: closed
}

// ErrUnavailable is returned at once by the Store and Broker calls of a
// Server while the backend is failing (for half a second after a failure,
// then a call tries again).
var ErrUnavailable = errors.New("wsroom: store or broker unavailable")

func (b *breaker) allow() bool {
	until := b.openUntil.Load()
	return until == 0 || time.Now().UnixNano() >= until
}

// record takes the outcome of a call: a failure of the backend's own opens
// the breaker; any answer (an error that is one, such as a taken name)
// closes it.
func (b *breaker) record(err error) {
	switch {
	case err != nil && outage(err):
		b.openUntil.Store(time.Now().Add(breakerOpen).UnixNano())
	case b.openUntil.Load() != 0:
		b.openUntil.Store(0)
	}
}

// outage reports whether err says the backend is failing, rather than
// answering (a taken name, a lost lease) or a caller that gave up.
func outage(err error) bool {
	for _, answer := range []error{ErrNameTaken, ErrRoomFull, ErrNotMember, ErrLeaseExpired, ErrBadName, ErrBadOptions, ErrUnavailable, context.Canceled} {
		if errors.Is(err, answer) {
			return false
		}
	}
	return true
}

// backend runs calls to a Store or a Broker: it tells Metrics (if any) how
// each went, and, for a networked backend, fails them at once while its
// breaker is open.
type backend struct {
	m  Metrics  // nil: none
	br *breaker // nil: never open (an in-process backend)
}

func (b backend) do(op string, f func() error) error {
	if b.br != nil && op != "Refresh" && !b.br.allow() {
		err := fmt.Errorf("%s: %w", op, ErrUnavailable)
		if b.m != nil {
			b.m.Backend(op, 0, err)
		}
		return err
	}
	start := time.Now()
	err := f()
	if b.m != nil {
		b.m.Backend(op, time.Since(start), err)
	}
	if b.br != nil {
		b.br.record(err)
	}
	return err
}

// guardedStore is a Store whose calls go through a backend.
type guardedStore struct {
	Store
	b backend
}

func (t guardedStore) Reserve(ctx context.Context, r Reservation, o ReserveOptions) (owner Owner, err error) {
	err = t.b.do("Reserve", func() error { owner, err = t.Store.Reserve(ctx, r, o); return err })
	return owner, err
}

func (t guardedStore) Release(ctx context.Context, r Reservation) error {
	return t.b.do("Release", func() error { return t.Store.Release(ctx, r) })
}

func (t guardedStore) Members(ctx context.Context, room, after string, limit int) (names []string, n int, err error) {
	err = t.b.do("Members", func() error { names, n, err = t.Store.Members(ctx, room, after, limit); return err })
	return names, n, err
}

func (t guardedStore) Refresh(ctx context.Context, server string, lease time.Duration) (expired []Reservation, err error) {
	err = t.b.do("Refresh", func() error { expired, err = t.Store.Refresh(ctx, server, lease); return err })
	return expired, err
}

func (t guardedStore) Append(ctx context.Context, room string, m Message) (out Message, err error) {
	err = t.b.do("Append", func() error { out, err = t.Store.Append(ctx, room, m); return err })
	return out, err
}

func (t guardedStore) Recent(ctx context.Context, room string, limit int) (ms []Message, err error) {
	err = t.b.do("Recent", func() error { ms, err = t.Store.Recent(ctx, room, limit); return err })
	return ms, err
}

func (t guardedStore) Before(ctx context.Context, room string, id uint64, limit int) (ms []Message, err error) {
	err = t.b.do("Before", func() error { ms, err = t.Store.Before(ctx, room, id, limit); return err })
	return ms, err
}

func (t guardedStore) After(ctx context.Context, room string, id uint64, limit int) (ms []Message, complete bool, err error) {
	err = t.b.do("After", func() error { ms, complete, err = t.Store.After(ctx, room, id, limit); return err })
	return ms, complete, err
}

// guardedBroker is a Broker whose calls go through a backend.
type guardedBroker struct {
	Broker
	b backend
}

func (t guardedBroker) Publish(ctx context.Context, p *Publication) error {
	return t.b.do("Publish", func() error { return t.Broker.Publish(ctx, p) })
}

func (t guardedBroker) Subscribe(ctx context.Context, room string, deliver func(*Publication)) (cancel func(), err error) {
	err = t.b.do("Subscribe", func() error { cancel, err = t.Broker.Subscribe(ctx, room, deliver); return err })
	return cancel, err
}
