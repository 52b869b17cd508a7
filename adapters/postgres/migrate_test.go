package wsroompg_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	wsroompg "wsroom.dev/adapters/postgres"
	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestMigrateConcurrently starts several servers at once on a schema that
// does not exist yet: all of them come up, and the schema is migrated
// once.
func TestMigrateConcurrently(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := connect(t, nil)
	schema := newSchema(t, pool)
	const servers = 8
	var wg sync.WaitGroup
	stores := make([]*wsroompg.Store, servers)
	errs := make([]error, servers)
	for i := range servers {
		wg.Go(func() { stores[i], errs[i] = wsroompg.NewStore(pool, &wsroompg.Options{Schema: schema}) })
	}
	wg.Wait()
	for _, err := range errs {
		assert.Success(t, err)
	}
	var versions, latest int
	err := pool.QueryRow(ctx, `SELECT count(*), max(version) FROM `+quote(schema)+`.migrations`).Scan(&versions, &latest)
	assert.Success(t, err)
	assert.Equal(t, "migrations recorded", wsroompg.SchemaVersion, versions)
	assert.Equal(t, "version", wsroompg.SchemaVersion, latest)
	// Idempotent, and every store works on the one schema.
	assert.Success(t, stores[0].Migrate(ctx))
	m, err := stores[1].Append(ctx, "r", wsroom.Message{Text: "x"})
	assert.Success(t, err)
	got, err := stores[2].Recent(ctx, "r", 1)
	assert.Success(t, err)
	assert.Equal(t, "shared history", m.ID, got[0].ID)
}

func TestSchemasAreSeparate(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := connect(t, nil)
	// Any name works, quoted.
	odd := newSchema(t, pool) + ` "q"; DROP x;--`
	t.Cleanup(func() { pool.Exec(testContext(t), `DROP SCHEMA IF EXISTS `+quote(odd)+` CASCADE`) })
	a, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: newSchema(t, pool)})
	assert.Success(t, err)
	b, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: odd})
	assert.Success(t, err)
	res := wsroom.Reservation{Room: "r", Name: "alice", Owner: wsroom.Owner{Server: "s", Conn: "c"}}
	_, err = a.Reserve(ctx, res, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	_, err = b.Reserve(ctx, res, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err) // not taken: another schema
	_, err = a.Append(ctx, "r", wsroom.Message{Text: "in a"})
	assert.Success(t, err)
	got, err := b.Recent(ctx, "r", 10)
	assert.Success(t, err)
	assert.Equal(t, "b's history", 0, len(got))
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	pool := connect(t, nil)
	for _, o := range []wsroompg.Options{
		{History: -1},
		{Schema: "a_schema_name_longer_than_the_63_bytes_postgresql_keeps_of_a_name"},
		{Schema: "nul\x00"},
	} {
		if _, err := wsroompg.NewStore(pool, &o); !errors.Is(err, wsroom.ErrBadOptions) {
			t.Errorf("NewStore(%+v): want ErrBadOptions, got %v", o, err)
		}
		if _, err := wsroompg.OpenStore(testContext(t), testURL(), &o); !errors.Is(err, wsroom.ErrBadOptions) {
			t.Errorf("OpenStore(%+v): want ErrBadOptions, got %v", o, err)
		}
	}
	if _, err := wsroompg.NewStore(nil, nil); !errors.Is(err, wsroom.ErrBadOptions) {
		t.Errorf("NewStore(nil pool): want ErrBadOptions, got %v", err)
	}
}

func TestOpenStore(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	pool := connect(t, nil)
	schema := newSchema(t, pool)
	s, err := wsroompg.OpenStore(ctx, testURL(), &wsroompg.Options{Schema: schema})
	assert.Success(t, err)
	_, err = s.Append(ctx, "r", wsroom.Message{Text: "x"})
	assert.Success(t, err)
	s.Close()
	s.Close() // idempotent
	if _, err := s.Recent(ctx, "r", 1); err == nil {
		t.Fatal("Recent after Close succeeded")
	}
	// SkipMigrate only checks the database answers.
	s, err = wsroompg.OpenStore(ctx, testURL(), &wsroompg.Options{Schema: schema, SkipMigrate: true})
	assert.Success(t, err)
	got, err := s.Recent(ctx, "r", 1)
	assert.Success(t, err)
	assert.Equal(t, "history", 1, len(got))
	s.Close()
	// A store made by NewStore leaves the application's pool open.
	s, err = wsroompg.NewStore(pool, &wsroompg.Options{Schema: schema, SkipMigrate: true})
	assert.Success(t, err)
	s.Close()
	assert.Success(t, pool.Ping(ctx))

	if _, err := wsroompg.OpenStore(ctx, "postgres://postgres@127.0.0.1:1/test?connect_timeout=2", nil); err == nil {
		t.Fatal("OpenStore of a closed port succeeded")
	}
}
