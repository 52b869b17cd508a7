package wsroomredis

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/wsroom"
)

// Store is a wsroom.Store in Redis: member names with leases (Presence) and
// a bounded history per room (History), shared by every server that uses
// the same Redis and Prefix. It is safe for concurrent use. It starts no
// goroutine; Close releases the client only if OpenStore created it.
type Store struct {
	client redis.UniversalClient
	owned  bool
	opts   StoreOptions
	keys   keys

	// known holds the lease ids this Store reserved or refreshed under:
	// when Redis no longer knows one of them (it lost its data), the lease
	// was lost, not new.
	known sync.Map // string -> struct{}
}

var _ wsroom.Store = (*Store)(nil)

// NewStore returns a Store that uses client, the application's own, which
// may be a *redis.Client, a Sentinel-backed failover client or a
// *redis.ClusterClient. opts may be nil. Close does not close client.
//
// Set ContextTimeoutEnabled in the client's options: without it go-redis
// bounds each call by its ReadTimeout and WriteTimeout rather than by the
// context's deadline.
func NewStore(client redis.UniversalClient, opts *StoreOptions) (*Store, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: nil redis client", wsroom.ErrBadOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Store{client: client, opts: o, keys: newKeys(o.Prefix)}, nil
}

// OpenStore connects to the Redis at url (redis://, rediss:// or unix://,
// as redis.ParseURL reads it), checks that it answers within ctx, and
// returns a Store that owns the connection: Close closes it. Each call of
// the Store is bounded by its context's deadline.
func OpenStore(ctx context.Context, url string, opts *StoreOptions) (*Store, error) {
	client, err := dial(ctx, url)
	if err != nil {
		return nil, err
	}
	s, err := NewStore(client, opts)
	if err != nil {
		client.Close()
		return nil, err
	}
	s.owned = true
	return s, nil
}

// dial opens a client for url and pings it.
func dial(ctx context.Context, url string) (*redis.Client, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("wsroomredis: %w", err)
	}
	o.ContextTimeoutEnabled = true
	client := redis.NewClient(o)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, fmt.Errorf("wsroomredis: connect to %s: %w", o.Addr, err)
	}
	return client, nil
}

// Close closes the connection if OpenStore opened it; a Store from
// NewStore leaves its client to the application.
func (s *Store) Close() error {
	if !s.owned {
		return nil
	}
	if err := s.client.Close(); err != nil && !errors.Is(err, redis.ErrClosed) {
		return fmt.Errorf("wsroomredis: close: %w", err)
	}
	return nil
}
