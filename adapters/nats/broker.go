package wsroomnats

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"wsroom.dev/wsroom"
)

// Broker is a wsroom.Broker over core NATS publish/subscribe. It is safe
// for concurrent use. Each room this Broker subscribes to is one NATS
// subscription, shared by the room's subscriptions on this Broker.
//
// Goroutines: the Broker starts one, which watches the connection's status
// and tells subscriptions to resync after a reconnect; Close stops it and
// waits for it. nats.go runs each NATS subscription's handler on a
// goroutine of its own, which ends when the room's last subscription is
// cancelled (or at Close).
type Broker struct {
	nc   *nats.Conn
	own  bool // Close closes nc
	opts Options
	log  *slog.Logger

	ctx    context.Context // ended by Close; bounds the broker's own round trips
	stop   context.CancelFunc
	status chan nats.Status // the connection's status changes, read by watch
	done   chan struct{}    // closed when watch returns

	closed atomic.Bool
	mu     sync.Mutex       // guards rooms and each room's refs
	rooms  map[string]*room // by room name

	confirmMu sync.Mutex
	confirmed atomic.Uint64 // the latest reconnect known to have our subscriptions again
}

var _ wsroom.Broker = (*Broker)(nil)

// NewBroker returns a Broker that uses the application's connection nc.
// The Broker does not close nc, nor touch its handlers: it watches its
// status through nc.StatusChanged. nc must keep echo on (the default: the
// Broker receives its own publications through the NATS server, in the
// server's order, like everyone else's), and should reconnect
// (nats.go's default is 60 attempts, 2 s apart; OpenBroker's defaults are
// better suited). opts.NATSOptions is ignored.
func NewBroker(nc *nats.Conn, opts *Options) (*Broker, error) {
	if nc == nil {
		return nil, fmt.Errorf("wsroomnats: NewBroker needs a connection: %w", wsroom.ErrBadOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if nc.Opts.NoEcho {
		return nil, fmt.Errorf("wsroomnats: the connection has NoEcho: this server would not receive its own publications: %w", wsroom.ErrBadOptions)
	}
	if nc.IsClosed() {
		return nil, fmt.Errorf("wsroomnats: NewBroker: %w", nats.ErrConnectionClosed)
	}
	return newBroker(nc, o, false), nil
}

// Reconnect backoff of OpenBroker: the delay before each round of attempts
// doubles from reconnectMin up to reconnectMax; each is drawn uniformly
// from its upper half (jitter), so that servers that lost the same NATS
// server do not come back in step.
const (
	reconnectMin = 100 * time.Millisecond
	reconnectMax = 2 * time.Second
	pingInterval = 20 * time.Second
)

func backoff(attempt int) time.Duration {
	d := reconnectMax
	if attempt >= 1 && attempt < 16 {
		d = min(reconnectMin<<(attempt-1), reconnectMax)
	}
	return d/2 + rand.N(d/2+1)
}

// OpenBroker connects to the NATS server at url (a comma-separated list
// for a cluster) and returns a Broker that owns the connection: Close
// closes it. ctx bounds the dial (unless opts.NATSOptions sets a dialer of
// its own); the handshake is bounded by nats.go's Timeout (2 s by
// default).
//
// The connection reconnects without limit, waiting 50-100 ms before the
// first round of attempts and twice as long before each next one, up to
// 1-2 s (the jitter keeps servers from coming back in step); it pings the
// server every 20 s, so that a half-open connection is found within a
// minute; and it buffers publications while reconnecting, up to nats.go's
// ReconnectBufSize (8 MiB), after which Publish fails. opts.NATSOptions
// can change any of these.
func OpenBroker(ctx context.Context, url string, opts *Options) (*Broker, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroomnats: connect to %s: %w", redact(url), err)
	}
	d := &dialer{ctx: ctx}
	d.Timeout = nats.DefaultTimeout
	var self atomic.Pointer[Broker] // for the error handler, set once the Broker exists
	natsOpts := []nats.Option{
		nats.Name("wsroom"),
		nats.MaxReconnects(-1),
		nats.CustomReconnectDelay(backoff),
		nats.PingInterval(pingInterval),
		nats.FlusherTimeout(o.Timeout),
		nats.SetCustomDialer(d),
		// nats.go's default prints asynchronous errors (a permissions
		// violation, a slow consumer) to stderr: log them instead.
		nats.ErrorHandler(func(_ *nats.Conn, ns *nats.Subscription, err error) {
			b := self.Load()
			if b == nil || b.closed.Load() || errors.Is(err, nats.ErrSlowConsumer) {
				return // a slow consumer is logged with its room
			}
			subject := ""
			if ns != nil {
				subject = ns.Subject
			}
			b.log.Error("wsroomnats: asynchronous error", "subject", subject, "err", err)
		}),
	}
	natsOpts = append(natsOpts, o.NATSOptions...)
	natsOpts = append(natsOpts, func(no *nats.Options) error {
		if no.CustomDialer == d && no.Timeout > 0 {
			d.Timeout = no.Timeout
		}
		if no.NoEcho {
			return fmt.Errorf("wsroomnats: NoEcho: this server would not receive its own publications: %w", wsroom.ErrBadOptions)
		}
		return nil
	})
	nc, err := nats.Connect(url, natsOpts...)
	d.connected()
	if err != nil {
		if cerr := ctx.Err(); cerr != nil {
			err = fmt.Errorf("%w (%w)", cerr, err)
		}
		return nil, fmt.Errorf("wsroomnats: connect to %s: %w", redact(url), err)
	}
	b := newBroker(nc, o, true)
	self.Store(b)
	return b, nil
}

// dialer dials with OpenBroker's context while it runs, then without.
type dialer struct {
	net.Dialer
	mu  sync.Mutex
	ctx context.Context
}

func (d *dialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	ctx := d.ctx
	d.mu.Unlock()
	if ctx == nil {
		ctx = context.Background()
	}
	return d.DialContext(ctx, network, address)
}

func (d *dialer) connected() {
	d.mu.Lock()
	d.ctx = nil
	d.mu.Unlock()
}

// redact drops the passwords and tokens of a server list, for errors.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, s := range parts {
		s = strings.TrimSpace(s)
		if u, err := url.Parse(s); err == nil && u.User != nil {
			u.User = url.User("redacted")
			s = u.String()
		}
		parts[i] = s
	}
	return strings.Join(parts, ",")
}

func newBroker(nc *nats.Conn, o Options, own bool) *Broker {
	b := &Broker{nc: nc, own: own, opts: o, log: o.Logger, rooms: make(map[string]*room), done: make(chan struct{})}
	b.ctx, b.stop = context.WithCancel(context.Background())
	b.confirmed.Store(b.epoch())
	b.status = nc.StatusChanged()
	go b.watch() // stopped by Close: RemoveStatusListener closes b.status
	return b
}

// Close cancels every subscription (no deliver runs once Close returns)
// and stops the Broker's goroutine. A Broker from OpenBroker then flushes
// what it buffered, if the connection is up, and closes the connection;
// the flush's error is returned. Close is idempotent. Publish and
// Subscribe fail with ErrClosed afterwards.
func (b *Broker) Close() error {
	b.mu.Lock()
	if b.closed.Load() {
		b.mu.Unlock()
		return nil
	}
	b.closed.Store(true)
	rooms := b.rooms
	b.rooms = nil
	b.mu.Unlock()

	b.stop()
	for _, r := range rooms {
		r.shut()
	}
	b.nc.RemoveStatusListener(b.status)
	<-b.done
	if !b.own {
		return nil
	}
	var err error
	if b.nc.IsConnected() {
		if ferr := b.nc.FlushTimeout(b.opts.Timeout); ferr != nil {
			err = fmt.Errorf("wsroomnats: close: flush: %w", ferr)
		}
	}
	b.nc.Close()
	return err
}

// subject returns the subject of a room.
func (b *Broker) subject(room string) (string, error) {
	tok, err := roomToken(room)
	if err != nil {
		return "", err
	}
	return b.opts.Prefix + tok, nil
}

// Publish implements wsroom.Broker. It encodes p with MarshalBinary and
// hands it to nats.go, which sends it in the background: Publish does not
// wait for the server, and returns nil once the publication is queued on
// the connection (or, while reconnecting, in the reconnect buffer). It
// blocks only when nats.go's write buffer is full, and then at most for the
// connection's write deadline. A publication larger than the server's
// max_payload fails with ErrTooLarge.
func (b *Broker) Publish(ctx context.Context, p *wsroom.Publication) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wsroomnats: publish to room %q: %w", p.Room, err)
	}
	if b.closed.Load() {
		return fmt.Errorf("wsroomnats: publish to room %q: %w", p.Room, ErrClosed)
	}
	subj, err := b.subject(p.Room)
	if err != nil {
		return err
	}
	data, err := p.MarshalBinary()
	if err != nil {
		return err
	}
	if err := b.nc.Publish(subj, data); err != nil {
		if errors.Is(err, nats.ErrMaxPayload) {
			return fmt.Errorf("wsroomnats: publish to room %q: %d bytes encoded, the server's max_payload is %d: %w", p.Room, len(data), b.nc.MaxPayload(), ErrTooLarge)
		}
		return fmt.Errorf("wsroomnats: publish to room %q: %w", p.Room, err)
	}
	return nil
}
