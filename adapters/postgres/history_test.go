package wsroompg_test

import (
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	wsroompg "wsroom.dev/adapters/postgres"
	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

func TestAnyTextRoundTrips(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := newStore(t, nil)
	// A JSON client may send "\u0000", which PostgreSQL's text type
	// cannot hold; message fields are stored as bytes.
	in := wsroom.Message{From: "bot\x00", Text: "nul \x00 byte, invalid \xff utf-8", Time: time.Now()}
	m, err := s.Append(ctx, "bytes", in)
	assert.Success(t, err)
	got, err := s.Recent(ctx, "bytes", 1)
	assert.Success(t, err)
	assert.Equal(t, "messages", 1, len(got))
	assert.Equal(t, "from", in.From, got[0].From)
	assert.Equal(t, "text", in.Text, got[0].Text)
	assert.Equal(t, "id", m.ID, got[0].ID)
	assert.True(t, "time to the microsecond", got[0].Time.Equal(in.Time.Truncate(time.Microsecond)))
}

func TestIDs(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, pool := newStore(t, nil)
	before := time.Now()
	first, err := s.Append(ctx, "ids", wsroom.Message{Text: "1"})
	assert.Success(t, err)
	// The first ID of a room is the database clock in microseconds, so
	// that a room whose counter was deleted starts above the IDs it had.
	if d := time.UnixMicro(int64(first.ID)).Sub(before); d < -time.Minute || d > time.Minute {
		t.Fatalf("first ID %d is %v from now in microseconds", first.ID, d)
	}
	// IDs go on across stores (a restarted server) with no gap.
	s2, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: s.Schema()})
	assert.Success(t, err)
	second, err := s2.Append(ctx, "ids", wsroom.Message{Text: "2"})
	assert.Success(t, err)
	assert.Equal(t, "next ID", first.ID+1, second.ID)

	// IDs beyond what bigint holds (a client's guess) behave as the
	// largest one.
	got, err := s.Before(ctx, "ids", math.MaxUint64, 10)
	assert.Success(t, err)
	assert.Equal(t, "before a huge ID", 2, len(got))
	got, complete, err := s.After(ctx, "ids", math.MaxUint64, 10)
	assert.Success(t, err)
	assert.True(t, "after a huge ID: nothing, incomplete", len(got) == 0 && !complete)
	// And a huge limit means all.
	got, complete, err = s.After(ctx, "ids", 0, math.MaxInt)
	assert.Success(t, err)
	assert.True(t, "after 0, no limit: all, complete", len(got) == 2 && complete)
	got, err = s.Recent(ctx, "ids", math.MaxInt)
	assert.Success(t, err)
	assert.Equal(t, "recent, no limit", 2, len(got))
}

func TestAfterFromTheStart(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s, _ := newStore(t, &wsroompg.Options{History: 3})
	got, complete, err := s.After(ctx, "start", 0, 10)
	assert.Success(t, err)
	assert.True(t, "empty room, from the start: complete", len(got) == 0 && complete)
	got, complete, err = s.After(ctx, "start", 5, 10)
	assert.Success(t, err)
	assert.True(t, "empty room, after an ID never issued: incomplete", len(got) == 0 && !complete)
	for i := range 3 {
		_, err := s.Append(ctx, "start", wsroom.Message{Text: fmt.Sprint(i)})
		assert.Success(t, err)
	}
	// Nothing was dropped yet: every message ever appended is there.
	got, complete, err = s.After(ctx, "start", 0, 10)
	assert.Success(t, err)
	assert.True(t, "3 kept, from the start: complete", len(got) == 3 && complete)
	_, err = s.Append(ctx, "start", wsroom.Message{Text: "3"})
	assert.Success(t, err)
	got, complete, err = s.After(ctx, "start", 0, 10)
	assert.Success(t, err)
	assert.True(t, "one dropped, from the start: incomplete", len(got) == 3 && !complete)
	got, complete, err = s.After(ctx, "start", got[0].ID-1, 10)
	assert.Success(t, err)
	assert.True(t, "after the dropped one: complete", len(got) == 3 && complete)
}

// TestRetentionDeletes checks that the bound deletes rows, not just hides
// them, under concurrent appends, and that reads see exactly the bound.
func TestRetentionDeletes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const bound, writers, each = 10, 8, 30
	s, pool := newStore(t, &wsroompg.Options{History: bound})
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range each {
				if _, err := s.Append(ctx, "bounded", wsroom.Message{From: fmt.Sprint(w), Text: fmt.Sprint(i)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	var rows, dropped, last int64
	err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT (SELECT count(*) FROM %[1]s.messages WHERE room = 'bounded'), dropped, last_id
		FROM %[1]s.rooms WHERE room = 'bounded'`, pgx.Identifier{s.Schema()}.Sanitize())).Scan(&rows, &dropped, &last)
	assert.Success(t, err)
	assert.Equal(t, "rows kept", int64(bound), rows)
	assert.Equal(t, "highest dropped ID", last-bound, dropped)
	got, err := s.Recent(ctx, "bounded", 100)
	assert.Success(t, err)
	assert.Equal(t, "recent", bound, len(got))
	assert.Equal(t, "newest", uint64(last), got[bound-1].ID)
}

// TestBoundChanges: a store restarted with another bound applies it from
// its next append.
func TestBoundChanges(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	big, pool := newStore(t, &wsroompg.Options{History: 20})
	for i := range 20 {
		_, err := big.Append(ctx, "r", wsroom.Message{Text: fmt.Sprint(i)})
		assert.Success(t, err)
	}
	small, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: big.Schema(), History: 5})
	assert.Success(t, err)
	m, err := small.Append(ctx, "r", wsroom.Message{Text: "last"})
	assert.Success(t, err)
	got, err := big.Recent(ctx, "r", 100)
	assert.Success(t, err)
	assert.Equal(t, "kept after the smaller bound", 5, len(got))
	assert.Equal(t, "newest", m.ID, got[4].ID)
	var rows int
	err = pool.QueryRow(ctx, `SELECT count(*) FROM `+pgx.Identifier{big.Schema(), "messages"}.Sanitize()).Scan(&rows)
	assert.Success(t, err)
	assert.Equal(t, "rows", 5, rows)
}

// TestPlans checks, on a room of 100,000 messages, that the history
// queries read the primary key's index and sort nothing. It does not run
// in parallel with the other tests: writing its rooms floods the WAL,
// which would hold up their commits past the conformance suite's 400ms
// leases on a small machine.
func TestPlans(t *testing.T) {
	ctx := testContext(t)
	s, pool := newStore(t, &wsroompg.Options{History: 1_000_000})
	const n = 100_000
	seedRoom(t, pool, s.Schema(), "big", n)
	for _, p := range wsroompg.ExplainHistory(s, "big", 1_000_000+n/2, 50) {
		var plan []string
		rows, err := pool.Query(ctx, "EXPLAIN "+p.SQL, p.Args...)
		assert.Success(t, err)
		for rows.Next() {
			var line string
			assert.Success(t, rows.Scan(&line))
			plan = append(plan, line)
		}
		assert.Success(t, rows.Err())
		text := strings.Join(plan, "\n")
		if strings.Contains(text, "Seq Scan on messages") || strings.Contains(text, "Sort") || !strings.Contains(text, "Index") {
			t.Errorf("%s: plan reads messages without the index:\n%s", p.Name, text)
		}
	}
}

// seedRoom fills a room with n messages, IDs 1,000,001 onwards, as if
// they had been appended, and updates the planner's statistics.
func seedRoom(t testing.TB, pool *pgxpool.Pool, schema, room string, n int) {
	t.Helper()
	ctx := testContext(t)
	q := pgx.Identifier{schema}.Sanitize()
	_, err := pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.rooms (room, first_id, last_id, dropped, prev_dropped)
		VALUES ($1, 1000001, 1000000 + $2::bigint, 0, 0)`, q), room, n)
	assert.Success(t, err)
	_, err = pool.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.messages (room, id, sender, body, sent)
		SELECT $1, 1000000 + i, 'seed', convert_to('message ' || i, 'UTF8'), now() FROM generate_series(1, $2::bigint) AS i`, q), room, n)
	assert.Success(t, err)
	_, err = pool.Exec(ctx, fmt.Sprintf(`ANALYZE %[1]s.messages; ANALYZE %[1]s.rooms`, q))
	assert.Success(t, err)
}
