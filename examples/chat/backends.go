package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	wsroomnats "wsroom.dev/adapters/nats"
	wsroompg "wsroom.dev/adapters/postgres"
	wsroomredis "wsroom.dev/adapters/redis"
	"wsroom.dev/wsroom"
)

// backends are the store and the broker the flags name, and how to close
// what was opened for them.
type backends struct {
	store   wsroom.Store
	broker  wsroom.Broker
	closers []func() error
}

// close closes what openBackends opened, the broker first.
func (b *backends) close() error {
	var err error
	for i := len(b.closers) - 1; i >= 0; i-- {
		err = errors.Join(err, b.closers[i]())
	}
	return err
}

// openBackends opens the store and the broker of -store and -broker:
// "memory" (the default: this process only), a redis:// URL (store or
// broker), a postgres:// URL (store) or a nats:// URL (broker).
func openBackends(ctx context.Context, c *config) (*backends, error) {
	b := &backends{}
	var err error
	if b.store, err = openStore(ctx, c, b); err != nil {
		return nil, errors.Join(err, b.close())
	}
	if b.broker, err = openBroker(ctx, c, b); err != nil {
		return nil, errors.Join(err, b.close())
	}
	return b, nil
}

func scheme(s string) (string, error) {
	if s == "" || s == "memory" {
		return "memory", nil
	}
	u, err := url.Parse(s)
	if err != nil || u.Scheme == "" {
		return "", fmt.Errorf("%q is not a URL (or memory)", s)
	}
	return u.Scheme, nil
}

func openStore(ctx context.Context, c *config, b *backends) (wsroom.Store, error) {
	sch, err := scheme(c.store)
	if err != nil {
		return nil, fmt.Errorf("-store: %w", err)
	}
	switch sch {
	case "memory":
		return wsroom.NewMemoryStore(&wsroom.MemoryStoreOptions{History: c.history, MaxRooms: c.rooms}), nil
	case "redis", "rediss", "unix":
		s, err := wsroomredis.OpenStore(ctx, c.store, &wsroomredis.StoreOptions{History: c.history})
		if err != nil {
			return nil, fmt.Errorf("-store: %w", err)
		}
		b.closers = append(b.closers, s.Close)
		return s, nil
	case "postgres", "postgresql":
		s, err := wsroompg.OpenStore(ctx, c.store, &wsroompg.Options{History: c.history})
		if err != nil {
			return nil, fmt.Errorf("-store: %w", err)
		}
		b.closers = append(b.closers, func() error { s.Close(); return nil })
		return s, nil
	}
	return nil, fmt.Errorf("-store: no store for %q: use memory, redis:// or postgres://", sch)
}

func openBroker(ctx context.Context, c *config, b *backends) (wsroom.Broker, error) {
	sch, err := scheme(c.broker)
	if err != nil {
		return nil, fmt.Errorf("-broker: %w", err)
	}
	switch sch {
	case "memory":
		return wsroom.NewMemoryBroker(), nil
	case "redis", "rediss", "unix":
		br, err := wsroomredis.OpenBroker(ctx, c.broker, nil)
		if err != nil {
			return nil, fmt.Errorf("-broker: %w", err)
		}
		b.closers = append(b.closers, br.Close)
		return br, nil
	case "nats", "tls":
		br, err := wsroomnats.OpenBroker(ctx, c.broker, nil)
		if err != nil {
			return nil, fmt.Errorf("-broker: %w", err)
		}
		b.closers = append(b.closers, br.Close)
		return br, nil
	}
	return nil, fmt.Errorf("-broker: no broker for %q: use memory, redis:// or nats://", sch)
}
