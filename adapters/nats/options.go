package wsroomnats

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"wsroom.dev/wsroom"
)

// Options configures a Broker. The zero value (or a nil *Options) works;
// each field's documentation ends with its default.
type Options struct {
	// Prefix starts the subject of every room: a room's publications go to
	// Prefix followed by the room's name, escaped into one token (see the
	// package documentation). Brokers see each other only if they share
	// the Prefix. It must be a literal subject ending with a dot. Default
	// "wsroom.".
	Prefix string

	// Timeout bounds a round trip to the server that no context bounds:
	// Subscribe's, when its context has no deadline, and the check after
	// a reconnect before subscriptions are told to resync. For a
	// connection that OpenBroker dials it is also the write deadline, so
	// it bounds how long Publish can block on a server that stopped
	// reading. Default 5 seconds.
	Timeout time.Duration

	// MaxPending is the most publications of one room that may wait on
	// this Broker for their deliver calls; beyond it nats.go drops them
	// (a slow consumer), and the room's subscriptions get a PubResync.
	// Default 65536.
	MaxPending int

	// Logger receives reconnects, resyncs and publications that cannot be
	// decoded. Default slog.Default().
	Logger *slog.Logger

	// NATSOptions are applied by OpenBroker after its own (unlimited
	// reconnects with capped exponential backoff and jitter, a ping every
	// 20 seconds, Timeout as the write deadline), so they can add
	// credentials or TLS, or override those. NewBroker ignores them: the
	// application configured its own connection. Default none.
	NATSOptions []nats.Option
}

// Defaults.
const (
	defaultPrefix     = "wsroom."
	defaultTimeout    = 5 * time.Second
	defaultMaxPending = 65536
)

func (o *Options) withDefaults() (Options, error) {
	var c Options
	if o != nil {
		c = *o
	}
	if c.Prefix == "" {
		c.Prefix = defaultPrefix
	}
	if err := checkPrefix(c.Prefix); err != nil {
		return c, err
	}
	switch {
	case c.Timeout == 0:
		c.Timeout = defaultTimeout
	case c.Timeout < 0:
		return c, fmt.Errorf("wsroomnats: Timeout %v is negative: %w", c.Timeout, wsroom.ErrBadOptions)
	}
	switch {
	case c.MaxPending == 0:
		c.MaxPending = defaultMaxPending
	case c.MaxPending < 0:
		return c, fmt.Errorf("wsroomnats: MaxPending %d is negative: %w", c.MaxPending, wsroom.ErrBadOptions)
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c, nil
}
