package wsroompg_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	wsroompg "wsroom.dev/adapters/postgres"
	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// roundTrips counts the calls that each cost one round trip to the
// server once their statements are prepared: Query, QueryRow and Exec
// (BEGIN and COMMIT among them) and SendBatch.
type roundTrips struct{ queries, batches atomic.Int64 }

func (c *roundTrips) TraceQueryStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceQueryStartData) context.Context {
	c.queries.Add(1)
	return ctx
}
func (c *roundTrips) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (c *roundTrips) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	c.batches.Add(1)
	return ctx
}
func (c *roundTrips) TraceBatchQuery(context.Context, *pgx.Conn, pgx.TraceBatchQueryData) {}
func (c *roundTrips) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData)     {}

// count returns how many round trips fn costs.
func (c *roundTrips) count(fn func()) (queries, batches int64) {
	q, b := c.queries.Load(), c.batches.Load()
	fn()
	return c.queries.Load() - q, c.batches.Load() - b
}

func TestRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	trace := &roundTrips{}
	pool := connect(t, func(c *pgxpool.Config) {
		c.MaxConns = 1 // one connection: its statement cache is warm after the first call
		c.ConnConfig.Tracer = trace
	})
	s, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: newSchema(t, pool)})
	assert.Success(t, err)
	srv := "srv-round-trips"
	res := func(room, name string) wsroom.Reservation {
		return wsroom.Reservation{Room: room, Name: name, Owner: wsroom.Owner{Server: srv, Conn: "c-" + name}}
	}

	check := func(what string, wantQueries, wantBatches int64, fn func() error) {
		t.Helper()
		var err error
		q, b := trace.count(func() { err = fn() })
		assert.Success(t, err)
		if q != wantQueries || b != wantBatches {
			t.Fatalf("%s: %d queries and %d batches, want %d and %d", what, q, b, wantQueries, wantBatches)
		}
	}
	// Warm the statement cache.
	_, err = s.Reserve(ctx, res("warm", "a"), wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	assert.Success(t, s.Release(ctx, res("warm", "a")))
	_, err = s.Refresh(ctx, srv, time.Minute)
	assert.Success(t, err)
	_, err = s.Append(ctx, "warm", wsroom.Message{Text: "x"})
	assert.Success(t, err)

	check("Reserve", 1, 1, func() error { // the batch, then COMMIT
		_, err := s.Reserve(ctx, res("r", "alice"), wsroom.ReserveOptions{Lease: time.Minute})
		return err
	})
	check("Release", 1, 0, func() error { return s.Release(ctx, res("r", "alice")) })
	check("Append", 0, 1, func() error {
		_, err := s.Append(ctx, "r", wsroom.Message{Text: "hello"})
		return err
	})

	// Refresh costs one round trip whatever the number of reservations
	// it extends.
	const many = 2000
	_, err = pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.reservations (room, name, server, conn)
		SELECT 'big', 'm' || i, $1, 'c' || i FROM generate_series(1, %d) AS i`, pgx.Identifier{s.Schema()}.Sanitize(), many), srv)
	assert.Success(t, err)
	start := time.Now()
	check("Refresh", 0, 1, func() error {
		_, err := s.Refresh(ctx, srv, time.Minute)
		return err
	})
	t.Logf("Refresh of a lease holding %d reservations: %v", many+1, time.Since(start))
	names, total, err := s.Members(ctx, "big", "", 0)
	assert.Success(t, err)
	assert.Equal(t, "members under the refreshed lease", many, total)
	assert.Equal(t, "names", many, len(names))
}

func TestExpiredLeaseReleaseIsRefreshs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := newStore(t, nil)
	r := wsroom.Reservation{Room: "room", Name: "alice", Owner: wsroom.Owner{Server: "crashed", Conn: "c1"}}
	_, err := s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: 100 * time.Millisecond})
	assert.Success(t, err)
	waitDB(t, s.Pool(), 200*time.Millisecond)
	// The lease ended: the late Release is not the caller's to announce;
	// Refresh hands the reservation out.
	assert.ErrorIs(t, wsroom.ErrNotMember, s.Release(ctx, r))
	expired, err := s.Refresh(ctx, "live", time.Minute)
	assert.Success(t, err)
	assert.Equal(t, "handed out", []wsroom.Reservation{r}, expired)
	_, err = s.Refresh(ctx, "crashed", time.Minute)
	assert.ErrorIs(t, wsroom.ErrLeaseExpired, err)
	_, err = s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: time.Minute})
	assert.ErrorIs(t, wsroom.ErrLeaseExpired, err)
}

// waitDB waits until d has passed on the database's clock, which leases
// are measured by.
func waitDB(t testing.TB, pool *pgxpool.Pool, d time.Duration) {
	t.Helper()
	_, err := pool.Exec(testContext(t), `SELECT pg_sleep($1)`, d.Seconds())
	assert.Success(t, err)
}

// TestExpiredExactlyOnceUnderRaces races Refreshes of several servers with
// takeovers of the names of an ended lease: each name must either be taken
// over (and the taker told whom it replaced) or handed out by a Refresh,
// exactly once, never both.
func TestExpiredExactlyOnceUnderRaces(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := newStore(t, nil)
	const rounds, names, refreshers, takers = 5, 40, 4, 4
	for round := range rounds {
		room := fmt.Sprintf("race-%d", round)
		crashed := fmt.Sprintf("crashed-%d", round)
		for i := range names {
			r := wsroom.Reservation{Room: room, Name: fmt.Sprintf("n%02d", i), Owner: wsroom.Owner{Server: crashed, Conn: fmt.Sprint(i)}}
			_, err := s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: time.Minute})
			assert.Success(t, err)
		}
		// The server's last Refresh sets its lease to end at once. It may
		// itself see the lease end: then it hands the reservations out.
		seen := map[string]int{}
		expired, err := s.Refresh(ctx, crashed, time.Millisecond)
		if err != nil && !errors.Is(err, wsroom.ErrLeaseExpired) {
			t.Fatal(err)
		}
		for _, e := range expired {
			seen[e.Name]++
		}
		waitDB(t, s.Pool(), 10*time.Millisecond)

		var mu sync.Mutex
		var wg sync.WaitGroup
		refresh := func() {
			for w := range refreshers {
				wg.Go(func() {
					for range 10 {
						expired, err := s.Refresh(ctx, fmt.Sprintf("live-%d-%d", round, w), time.Minute)
						if err != nil {
							t.Error(err)
							return
						}
						mu.Lock()
						for _, e := range expired {
							if e.Room == room {
								seen[e.Name]++
							}
						}
						mu.Unlock()
					}
				})
			}
		}
		take := func() {
			for w := range takers {
				wg.Go(func() {
					for i := w; i < names; i += takers {
						name := fmt.Sprintf("n%02d", i)
						r := wsroom.Reservation{Room: room, Name: name, Owner: wsroom.Owner{Server: fmt.Sprintf("taker-%d", round), Conn: name}}
						replaced, err := s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: time.Minute})
						if err != nil {
							t.Error(err)
							return
						}
						if !replaced.IsZero() {
							if replaced.Server != crashed {
								t.Errorf("%s: replaced %+v", name, replaced)
							}
							mu.Lock()
							seen[name]++
							mu.Unlock()
						}
					}
				})
			}
		}
		// Start one side first, then the other, round by round.
		if round%2 == 0 {
			refresh()
			take()
		} else {
			take()
			refresh()
		}
		wg.Wait()
		// A last Refresh collects what a takeover's lock made the racing
		// ones skip.
		expired, err = s.Refresh(ctx, "collector", time.Minute)
		assert.Success(t, err)
		for _, e := range expired {
			if e.Room == room {
				seen[e.Name]++
			}
		}
		for i := range names {
			if n := seen[fmt.Sprintf("n%02d", i)]; n != 1 {
				t.Fatalf("round %d: n%02d was handed out or taken over %d times, want once", round, i, n)
			}
		}
		_, total, err := s.Members(ctx, room, "", 0)
		assert.Success(t, err)
		assert.Equal(t, "every name is the taker's", names, total)
	}
}

func TestReserveRollsBackWhenRefused(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, pool := newStore(t, nil)
	holder := wsroom.Reservation{Room: "r", Name: "alice", Owner: wsroom.Owner{Server: "a", Conn: "1"}}
	_, err := s.Reserve(ctx, holder, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	// A refused Reserve starts no lease for its server.
	_, err = s.Reserve(ctx, wsroom.Reservation{Room: "r", Name: "alice", Owner: wsroom.Owner{Server: "b", Conn: "1"}}, wsroom.ReserveOptions{Lease: time.Minute})
	assert.ErrorIs(t, wsroom.ErrNameTaken, err)
	_, err = s.Reserve(ctx, wsroom.Reservation{Room: "r", Name: "bob", Owner: wsroom.Owner{Server: "b", Conn: "1"}}, wsroom.ReserveOptions{Lease: time.Minute, Max: 1})
	assert.ErrorIs(t, wsroom.ErrRoomFull, err)
	var leases int
	err = pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{s.Schema(), "leases"}.Sanitize()+` WHERE server = 'b'`).Scan(&leases)
	assert.Success(t, err)
	assert.Equal(t, "leases of the refused server", 0, leases)
}

func TestMembersByteOrder(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := newStore(t, nil)
	// Go's order (bytes), not a locale's: upper case first, then lower
	// case, then non-ASCII by UTF-8 bytes.
	want := []string{"Bob", "Zoe", "alice", "bob", "Ärger", "ärger", "é", "中文", "😀"}
	for i := len(want) - 1; i >= 0; i-- {
		r := wsroom.Reservation{Room: "order", Name: want[i], Owner: wsroom.Owner{Server: "s", Conn: fmt.Sprint(i)}}
		_, err := s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: time.Minute})
		assert.Success(t, err)
	}
	names, total, err := s.Members(ctx, "order", "", 0)
	assert.Success(t, err)
	assert.Equal(t, "total", len(want), total)
	assert.Equal(t, "names", want, names)
	names, _, err = s.Members(ctx, "order", "Zz", 3)
	assert.Success(t, err)
	assert.Equal(t, "page after Zz", want[2:5], names)
}

func TestCallsRespectContext(t *testing.T) {
	t.Parallel()
	s, pool := newStore(t, nil)
	ctx := testContext(t)
	// Hold the room's counter row so that an Append must wait for it;
	// the Append gives up when its context ends.
	_, err := s.Append(ctx, "busy", wsroom.Message{Text: "first"})
	assert.Success(t, err)
	tx, err := pool.Begin(ctx)
	assert.Success(t, err)
	defer tx.Rollback(ctx)
	_, err = tx.Exec(ctx, `SELECT 1 FROM `+pgx.Identifier{s.Schema(), "rooms"}.Sanitize()+` WHERE room = 'busy' FOR UPDATE`)
	assert.Success(t, err)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = s.Append(short, "busy", wsroom.Message{Text: "blocked"})
	if err == nil {
		t.Fatal("Append succeeded while the room's counter was locked")
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Logf("error (not wrapping context.DeadlineExceeded): %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("Append returned %v after its deadline", d-200*time.Millisecond)
	}
	assert.Success(t, tx.Rollback(ctx))
	// The store works on; the failed Append may or may not have been
	// stored (its transaction went on in the server until it noticed the
	// connection was gone), but it got no ID.
	_, err = s.Append(ctx, "busy", wsroom.Message{Text: "after"})
	assert.Success(t, err)
}
