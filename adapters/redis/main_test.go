package wsroomredis

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/internal/leakcheck"
)

// redisURL is the shared Redis the tests use: WSROOM_REDIS_URL, or the
// local default.
var redisURL = func() string {
	if u := os.Getenv("WSROOM_REDIS_URL"); u != "" {
		return u
	}
	return "redis://127.0.0.1:6379/0"
}()

// unreachable says why the shared Redis cannot be used; "" when it can.
var unreachable string

func TestMain(m *testing.M) {
	// go-redis logs every failed dial; the fault tests make many on purpose.
	redis.SetLogger(quiet{})
	unreachable = probe()
	if unreachable != "" && !required() {
		fmt.Fprintln(os.Stderr, "wsroomredis: skipping the tests that need Redis: "+unreachable)
	}
	leakcheck.Main(m)
}

// required reports whether a missing backend fails the tests instead of
// skipping them (CI sets it).
func required() bool { return os.Getenv("WSROOM_REQUIRE_BACKENDS") == "1" }

func probe() string {
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		return fmt.Sprintf("bad WSROOM_REDIS_URL %q: %v", redisURL, err)
	}
	o.DialerRetries = 1
	o.MaxRetries = -1
	c := redis.NewClient(o)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		return fmt.Sprintf("redis not reachable at %s (%v): start redis-server (or set WSROOM_REDIS_URL) to run these tests", o.Addr, err)
	}
	return ""
}

// needRedis skips the test, or fails it under WSROOM_REQUIRE_BACKENDS=1,
// when the shared Redis is not reachable.
func needRedis(t testing.TB) {
	t.Helper()
	if unreachable == "" {
		return
	}
	if required() {
		t.Fatal(unreachable)
	}
	t.Skip("redis not reachable (see the line printed above the tests)")
}

// testClient returns a client of the shared Redis, closed when the test
// ends.
func testClient(t testing.TB) *redis.Client {
	t.Helper()
	needRedis(t)
	o, err := redis.ParseURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	o.ContextTimeoutEnabled = true
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return c
}

func random() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testPrefix returns a key prefix of the test's own, whose keys are deleted
// when it ends.
func testPrefix(t testing.TB, c *redis.Client) string {
	prefix := "wsroomtest-" + random() + ":"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		for _, match := range []string{prefix + "*", "{" + prefix + "}*"} {
			iter := c.Scan(ctx, 0, match, 1000).Iterator()
			var batch []string
			for iter.Next(ctx) {
				batch = append(batch, iter.Val())
			}
			if err := iter.Err(); err != nil {
				t.Errorf("cleaning up %s: %v", match, err)
				return
			}
			if len(batch) > 0 {
				if err := c.Del(ctx, batch...).Err(); err != nil {
					t.Errorf("cleaning up %s: %v", match, err)
				}
			}
		}
	})
	return prefix
}

// testContext is bounded, and canceled when the test ends.
func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newTestStore returns a Store on the shared Redis under a prefix of the
// test's own.
func newTestStore(t testing.TB, opts StoreOptions) (*Store, *redis.Client) {
	t.Helper()
	c := testClient(t)
	if opts.Prefix == "" {
		opts.Prefix = testPrefix(t, c)
	}
	if opts.HistoryTTL == 0 {
		opts.HistoryTTL = time.Hour // in case the cleanup does not run
	}
	s, err := NewStore(c, &opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

// quiet is a go-redis logger that drops everything.
type quiet struct{}

func (quiet) Printf(context.Context, string, ...any) {}
