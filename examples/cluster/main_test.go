package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	wsroomnats "wsroom.dev/adapters/nats"
	wsroompg "wsroom.dev/adapters/postgres"
	wsroomredis "wsroom.dev/adapters/redis"
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// The shared servers; the environment variables are the adapters' own.
const (
	defaultRedis    = "redis://127.0.0.1:6379/0"
	defaultPostgres = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	defaultNATS     = "nats://127.0.0.1:4222"
)

func redisURL() string    { return env("WSROOM_REDIS_URL", defaultRedis) }
func postgresURL() string { return env("WSROOM_POSTGRES_URL", defaultPostgres) }
func natsURL() string     { return env("WSROOM_NATS_URL", defaultNATS) }

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// required reports whether a missing backend fails the tests instead of
// skipping them (CI sets it).
func required() bool { return os.Getenv("WSROOM_REQUIRE_BACKENDS") == "1" }

// unavailable skips the test with one line saying why, or fails it under
// WSROOM_REQUIRE_BACKENDS=1.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if required() {
		t.Fatal(why + " (WSROOM_REQUIRE_BACKENDS=1)")
	}
	t.Skip(why)
}

// combo is a pair of shared backends the chat servers run on.
type combo struct {
	name          string
	store, broker string // -store and -broker
}

func combos() []combo {
	return []combo{
		{name: "redis", store: redisURL(), broker: redisURL()},
		{name: "postgres+nats", store: postgresURL(), broker: natsURL()},
	}
}

// args are the chat server's flags for the combo.
func (c combo) args() []string { return []string{"-store", c.store, "-broker", c.broker} }

// backends is a store and a broker opened in the test process, on the same
// servers as the chat servers', for an in-process wsroom.Server.
type backends struct {
	store  wsroom.Store
	broker wsroom.Broker
}

// openCombo opens the combo's store and broker in this process, closed
// when t ends; it skips (or fails) the test when a server is unreachable.
func openCombo(t testing.TB, c combo) *backends {
	t.Helper()
	for _, u := range []string{c.store, c.broker} {
		if err := reachable(u); err != nil {
			unavailable(t, err.Error())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	b := &backends{}
	var err error
	switch c.name {
	case "redis":
		var s *wsroomredis.Store
		if s, err = wsroomredis.OpenStore(ctx, c.store, nil); err == nil {
			t.Cleanup(func() { s.Close() })
			b.store = s
			var br *wsroomredis.Broker
			if br, err = wsroomredis.OpenBroker(ctx, c.broker, &wsroomredis.BrokerOptions{Logger: quietLogger()}); err == nil {
				t.Cleanup(func() { br.Close() })
				b.broker = br
			}
		}
	case "postgres+nats":
		var s *wsroompg.Store
		if s, err = wsroompg.OpenStore(ctx, c.store, nil); err == nil {
			t.Cleanup(s.Close)
			b.store = s
			var br *wsroomnats.Broker
			if br, err = wsroomnats.OpenBroker(ctx, c.broker, nil); err == nil {
				t.Cleanup(func() { br.Close() })
				b.broker = br
			}
		}
	default:
		t.Fatalf("no backends for %q", c.name)
	}
	if err != nil {
		unavailable(t, fmt.Sprintf("%s: %v: start the server (or set WSROOM_REDIS_URL, WSROOM_POSTGRES_URL, WSROOM_NATS_URL) to run these tests", c.name, err))
	}
	return b
}

// reachable dials a backend URL's host, so that a missing server is told
// in one line at once rather than by a client's retries.
func reachable(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("bad backend URL %q: %w", raw, err)
	}
	kind := map[string]string{"rediss": "redis", "postgresql": "postgres"}[u.Scheme]
	if kind == "" {
		kind = u.Scheme
	}
	server, ok := map[string][2]string{
		"redis":    {"6379", "redis-server"},
		"postgres": {"5432", "PostgreSQL"},
		"nats":     {"4222", "nats-server"},
	}[kind]
	if !ok {
		return fmt.Errorf("backend URL %q: not redis://, postgres:// or nats://", raw)
	}
	host := u.Host
	if u.Port() == "" {
		host = net.JoinHostPort(u.Hostname(), server[0])
	}
	c, err := net.DialTimeout("tcp", host, 2*time.Second)
	if err != nil {
		return fmt.Errorf("%s not reachable at %s: start %s (or set WSROOM_%s_URL) to run these tests", kind, host, server[1], strings.ToUpper(kind))
	}
	return c.Close()
}

// buildChat builds examples/chat (its own module) as bin, with the race
// detector when the tests run with it, so that a data race in a server
// shows in its log.
func buildChat(bin string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.CommandContext(ctx, "go", append(args, ".")...)
	cmd.Dir = filepath.Join("..", "chat")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build examples/chat: %w\n%s", err, out)
	}
	return bin, nil
}

// testContext bounds a test's waits.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// pause waits for d, or until ctx ends: an observation window (nothing
// more must happen in it), never a synchronisation.
func pause(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// poll calls cond every interval until it holds or ctx ends.
func poll(ctx context.Context, interval time.Duration, cond func() bool) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
	return nil
}

func quietLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
