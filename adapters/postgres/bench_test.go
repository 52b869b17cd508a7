package wsroompg_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	wsroompg "wsroom.dev/adapters/postgres"
	"wsroom.dev/wsroom"
)

// parallel runs fn b.N times in all, split among workers goroutines, and
// reports the rate as per_s.
func parallel(b *testing.B, workers int, unit string, fn func(ctx context.Context, worker, i int) error) {
	ctx := testContext(b)
	var wg sync.WaitGroup
	b.ResetTimer()
	start := time.Now()
	for w := range workers {
		n := b.N / workers
		if w < b.N%workers {
			n++
		}
		wg.Go(func() {
			for i := range n {
				if err := fn(ctx, w, i); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), unit+"/s")
}

func benchStore(b *testing.B, history int) *wsroompg.Store {
	pool := connect(b, func(c *pgxpool.Config) { c.MaxConns = 32 })
	s, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: newSchema(b, pool), History: history})
	if err != nil {
		b.Fatal(err)
	}
	return s
}

// BenchmarkAppend measures the messages per second that one room sustains
// (senders in one room) and, for comparison, that separate rooms do. The
// room's history is full, so every append also drops a message, except
// with keep=all, which shows what dropping costs.
func BenchmarkAppend(b *testing.B) {
	for _, bc := range []struct {
		senders int
		each    bool // a room per sender
		keepAll bool
	}{{1, false, false}, {1, false, true}, {4, false, false}, {4, false, true}, {16, false, false}, {16, true, false}} {
		name := fmt.Sprintf("senders=%d/room=one", bc.senders)
		if bc.each {
			name = fmt.Sprintf("senders=%d/room=each", bc.senders)
		}
		history := 1000
		if bc.keepAll {
			name += "/keep=all"
			history = 1 << 30
		}
		b.Run(name, func(b *testing.B) {
			s := benchStore(b, history)
			// Fill the histories first (to their bound of 1000), as in
			// rooms that have been busy.
			for w := range bc.senders {
				if w > 0 && !bc.each {
					break
				}
				for i := range 1000 {
					if _, err := s.Append(testContext(b), roomOf(bc.each, w), wsroom.Message{Text: fmt.Sprint(i)}); err != nil {
						b.Fatal(err)
					}
				}
			}
			parallel(b, bc.senders, "msgs", func(ctx context.Context, w, i int) error {
				_, err := s.Append(ctx, roomOf(bc.each, w), wsroom.Message{From: "alice", Text: "hello, world", Time: time.Now()})
				return err
			})
		})
	}
}

// BenchmarkCommit is the yardstick for BenchmarkAppend: the rate of
// one-row INSERT transactions (a commit each) that the database sustains,
// by 1, 4 and 16 clients.
func BenchmarkCommit(b *testing.B) {
	for _, senders := range []int{1, 4, 16} {
		b.Run(fmt.Sprintf("senders=%d", senders), func(b *testing.B) {
			s := benchStore(b, 1000)
			table := quote(s.Schema()) + ".commits"
			if _, err := s.Pool().Exec(testContext(b), "CREATE TABLE "+table+" (id bigint, body bytea)"); err != nil {
				b.Fatal(err)
			}
			parallel(b, senders, "commits", func(ctx context.Context, w, i int) error {
				_, err := s.Pool().Exec(ctx, "INSERT INTO "+table+" VALUES ($1, $2)", int64(i), []byte("hello, world"))
				return err
			})
		})
	}
}

func roomOf(each bool, worker int) string {
	if each {
		return fmt.Sprint("room-", worker)
	}
	return "room"
}

// BenchmarkReserveRelease measures joins and leaves: a Reserve and a
// Release of a fresh name, by workers of one server, in one room or each
// in its own.
func BenchmarkReserveRelease(b *testing.B) {
	for _, bc := range []struct {
		workers int
		rooms   bool
		servers bool
	}{{1, false, false}, {8, false, false}, {8, true, false}, {8, true, true}} {
		name := fmt.Sprintf("workers=%d/room=one", bc.workers)
		if bc.rooms {
			name = fmt.Sprintf("workers=%d/room=each", bc.workers)
		}
		if bc.servers {
			name += "/server=each"
		}
		b.Run(name, func(b *testing.B) {
			s := benchStore(b, 10)
			parallel(b, bc.workers, "pairs", func(ctx context.Context, w, i int) error {
				r := wsroom.Reservation{Room: "room", Name: fmt.Sprintf("m%d-%d", w, i), Owner: wsroom.Owner{Server: "srv", Conn: fmt.Sprint(w)}}
				if bc.rooms {
					r.Room = fmt.Sprint("room-", w)
				}
				if bc.servers {
					r.Owner.Server = fmt.Sprint("srv-", w)
				}
				if _, err := s.Reserve(ctx, r, wsroom.ReserveOptions{Max: 1000, Lease: time.Minute}); err != nil {
					return err
				}
				return s.Release(ctx, r)
			})
		})
	}
}

// BenchmarkBigRoom reads a room of a million messages, logs the plans of
// the history statements (EXPLAIN ANALYZE) and measures an append and the
// reads a client makes: the newest page, a resume after an ID, a page
// before an ID.
func BenchmarkBigRoom(b *testing.B) {
	const n = 1_000_000
	pool := connect(b, nil)
	s, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: newSchema(b, pool), History: n})
	if err != nil {
		b.Fatal(err)
	}
	ctx := testContext(b)
	start := time.Now()
	// 10,000 other rooms of 10 messages, then the big one.
	_, err = pool.Exec(ctx, fmt.Sprintf(`
INSERT INTO %[1]s.rooms (room, first_id, last_id, dropped, prev_dropped)
	SELECT 'room-' || r, 1, 10, 0, 0 FROM generate_series(1, 10000) AS r;
INSERT INTO %[1]s.messages (room, id, sender, body, sent)
	SELECT 'room-' || r, i, 'x', 'y', now() FROM generate_series(1, 10000) AS r, generate_series(1, 10) AS i`, quote(s.Schema())))
	if err != nil {
		b.Fatal(err)
	}
	seedRoom(b, pool, s.Schema(), "big", n)
	b.Logf("seeded %d messages in one room and 100,000 in 10,000 others in %v", n, time.Since(start).Round(time.Millisecond))
	mid := uint64(1_000_000 + n/2)
	// The writes are explained in a transaction that is rolled back.
	tx, err := pool.Begin(ctx)
	if err != nil {
		b.Fatal(err)
	}
	for _, p := range wsroompg.ExplainHistory(s, "big", mid, 50) {
		if p.Name == "append" {
			p.Args[4] = time.Now()
		}
		rows, err := tx.Query(ctx, "EXPLAIN (ANALYZE, BUFFERS) "+p.SQL, p.Args...)
		if err != nil {
			b.Fatal(err)
		}
		var plan []string
		for rows.Next() {
			var line string
			rows.Scan(&line)
			plan = append(plan, line)
		}
		b.Logf("%s:\n%s", p.Name, strings.Join(plan, "\n"))
	}
	tx.Rollback(ctx)
	b.Run("Append", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Append(ctx, "big", wsroom.Message{Text: "x"}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Recent50", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Recent(ctx, "big", 50); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("After500", func(b *testing.B) {
		for b.Loop() {
			if _, _, err := s.After(ctx, "big", uint64(1_000_000+n-400), 500); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Before50", func(b *testing.B) {
		for b.Loop() {
			if _, err := s.Before(ctx, "big", mid, 50); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkRetentionCost compares, in alternating blocks so that the
// machine's noise falls on both alike, appends to a full room (each drops
// a message) with appends to a room that keeps everything.
func BenchmarkRetentionCost(b *testing.B) {
	pool := connect(b, nil)
	drop, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: newSchema(b, pool), History: 100})
	if err != nil {
		b.Fatal(err)
	}
	keep, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: newSchema(b, pool), History: 1 << 30})
	if err != nil {
		b.Fatal(err)
	}
	ctx := testContext(b)
	for range 200 {
		for _, s := range []*wsroompg.Store{drop, keep} {
			if _, err := s.Append(ctx, "room", wsroom.Message{Text: "fill"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	const block = 50
	var took [2]time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i += block {
		for k, s := range []*wsroompg.Store{drop, keep} {
			start := time.Now()
			for range min(block, b.N-i) {
				if _, err := s.Append(ctx, "room", wsroom.Message{Text: "hello, world"}); err != nil {
					b.Fatal(err)
				}
			}
			took[k] += time.Since(start)
		}
	}
	b.ReportMetric(float64(took[0].Microseconds())/float64(b.N), "µs/append-dropping")
	b.ReportMetric(float64(took[1].Microseconds())/float64(b.N), "µs/append-keeping")
}
