package wsroom

import (
	"context"
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

// timedStore reports every call of the Store it wraps to Metrics.
type timedStore struct {
	Store
	m Metrics
}

func (t timedStore) Reserve(ctx context.Context, r Reservation, o ReserveOptions) (Owner, error) {
	start := time.Now()
	owner, err := t.Store.Reserve(ctx, r, o)
	t.m.Backend("Reserve", time.Since(start), err)
	return owner, err
}

func (t timedStore) Release(ctx context.Context, r Reservation) error {
	start := time.Now()
	err := t.Store.Release(ctx, r)
	t.m.Backend("Release", time.Since(start), err)
	return err
}

func (t timedStore) Members(ctx context.Context, room, after string, limit int) ([]string, int, error) {
	start := time.Now()
	names, n, err := t.Store.Members(ctx, room, after, limit)
	t.m.Backend("Members", time.Since(start), err)
	return names, n, err
}

func (t timedStore) Refresh(ctx context.Context, server string, lease time.Duration) ([]Reservation, error) {
	start := time.Now()
	expired, err := t.Store.Refresh(ctx, server, lease)
	t.m.Backend("Refresh", time.Since(start), err)
	return expired, err
}

func (t timedStore) Append(ctx context.Context, room string, m Message) (Message, error) {
	start := time.Now()
	m, err := t.Store.Append(ctx, room, m)
	t.m.Backend("Append", time.Since(start), err)
	return m, err
}

func (t timedStore) Recent(ctx context.Context, room string, limit int) ([]Message, error) {
	start := time.Now()
	ms, err := t.Store.Recent(ctx, room, limit)
	t.m.Backend("Recent", time.Since(start), err)
	return ms, err
}

func (t timedStore) Before(ctx context.Context, room string, id uint64, limit int) ([]Message, error) {
	start := time.Now()
	ms, err := t.Store.Before(ctx, room, id, limit)
	t.m.Backend("Before", time.Since(start), err)
	return ms, err
}

func (t timedStore) After(ctx context.Context, room string, id uint64, limit int) ([]Message, bool, error) {
	start := time.Now()
	ms, complete, err := t.Store.After(ctx, room, id, limit)
	t.m.Backend("After", time.Since(start), err)
	return ms, complete, err
}

// timedBroker reports every call of the Broker it wraps to Metrics.
type timedBroker struct {
	Broker
	m Metrics
}

func (t timedBroker) Publish(ctx context.Context, p *Publication) error {
	start := time.Now()
	err := t.Broker.Publish(ctx, p)
	t.m.Backend("Publish", time.Since(start), err)
	return err
}

func (t timedBroker) Subscribe(ctx context.Context, room string, deliver func(*Publication)) (func(), error) {
	start := time.Now()
	cancel, err := t.Broker.Subscribe(ctx, room, deliver)
	t.m.Backend("Subscribe", time.Since(start), err)
	return cancel, err
}
