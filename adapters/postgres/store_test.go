package wsroompg_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	wsroompg "wsroom.dev/adapters/postgres"
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
	"wsroom.dev/wsroom/storetest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// defaultURL is the test database: PostgreSQL on loopback, user postgres
// with trust authentication, database test.
const defaultURL = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

func testURL() string {
	if u := os.Getenv("WSROOM_POSTGRES_URL"); u != "" {
		return u
	}
	return defaultURL
}

// unavailable skips the test, or fails it when the environment requires
// every backend (CI), with one line saying how to run it.
func unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv("WSROOM_REQUIRE_BACKENDS") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// reach is the outcome of the first attempt to reach the test database:
// when it fails, every test that needs it is skipped at once.
var reach = sync.OnceValue(func() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, testURL())
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	// Drop the schemas of test runs that were killed before their
	// cleanup, an hour on.
	rows, err := conn.Query(ctx, `SELECT nspname FROM pg_namespace WHERE nspname LIKE 'wsroompg\_test\_%'`)
	if err != nil {
		return err
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	for _, name := range names {
		var created int64
		if _, err := fmt.Sscanf(name, "wsroompg_test_%d_", &created); err == nil && time.Since(time.Unix(created, 0)) > time.Hour {
			conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+quote(name)+" CASCADE")
		}
	}
	return nil
})

// connect returns a pool to the test database, closed when t ends;
// configure, if not nil, adjusts its configuration first. It skips (or
// fails) the test when the database cannot be reached.
func connect(t testing.TB, configure func(*pgxpool.Config)) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(testURL())
	if err != nil {
		t.Fatalf("WSROOM_POSTGRES_URL: %v", err)
	}
	if err := reach(); err != nil {
		if op := (*net.OpError)(nil); errors.As(err, &op) {
			err = op.Err // the cause in a few words: "connect: connection refused"
		}
		unavailable(t, "postgresql not reachable at %s:%d (%v): start postgresql (or set WSROOM_POSTGRES_URL) to run these tests", cfg.ConnConfig.Host, cfg.ConnConfig.Port, err)
	}
	cfg.MaxConns = 16
	if configure != nil {
		configure(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// newSchema returns the name of a schema no other test uses, dropped with
// everything in it when t ends.
func newSchema(t testing.TB, pool *pgxpool.Pool) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	schema := fmt.Sprintf("wsroompg_test_%d_%s", time.Now().Unix(), hex.EncodeToString(b))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := pool.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// newStore returns a store in a fresh schema of the test database.
func newStore(t testing.TB, opts *wsroompg.Options) (*wsroompg.Store, *pgxpool.Pool) {
	t.Helper()
	pool := connect(t, nil)
	var o wsroompg.Options
	if opts != nil {
		o = *opts
	}
	if o.Schema == "" {
		o.Schema = newSchema(t, pool)
	}
	s, err := wsroompg.NewStore(pool, &o)
	if err != nil {
		t.Fatalf("NewStore: %v", err)
	}
	return s, pool
}

func TestConformance(t *testing.T) {
	t.Parallel()
	connect(t, nil) // skip at once if the database is not there
	storetest.Run(t, func(t *testing.T, history int) wsroom.Store {
		// A pool and a schema per subtest, as if each were its own
		// cluster: the lease tests count what Refresh returns, which a
		// parallel subtest's Refresh would take if they shared the
		// tables, and they give leases of 400ms, which a Refresh waiting
		// for a connection of a pool busy with another subtest's load
		// could overrun.
		pool := connect(t, func(c *pgxpool.Config) { c.MaxConns = 4 })
		s, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: newSchema(t, pool), History: history})
		if err != nil {
			t.Fatalf("NewStore: %v", err)
		}
		return s
	})
}

func quote(name string) string { return pgx.Identifier{name}.Sanitize() }
