package wsroompg

import (
	"context"
	"fmt"
	"hash/fnv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"wsroom.dev/wsroom"
)

// Store is a wsroom.Store kept in PostgreSQL: presence with server leases
// and a bounded history per room, shared by every server that uses the same
// database and schema. It is safe for concurrent use; it starts no
// goroutine of its own.
type Store struct {
	pool *pgxpool.Pool
	own  bool // the pool is ours to close
	opts Options
	q    queries
}

var _ wsroom.Store = (*Store)(nil)

// migrateTimeout bounds the migration NewStore runs, having no context of
// its own; it covers a wait for another server's migration.
const migrateTimeout = time.Minute

// NewStore returns a Store that uses the application's pool, which it
// never closes. Unless opts.SkipMigrate, it runs Migrate first, under a
// timeout of one minute (NewStore takes no context: to bound the migration
// yourself, set SkipMigrate and call Migrate). opts may be nil.
func NewStore(pool *pgxpool.Pool, opts *Options) (*Store, error) {
	if pool == nil {
		return nil, fmt.Errorf("wsroompg: nil pool: %w", wsroom.ErrBadOptions)
	}
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &Store{pool: pool, opts: o, q: newQueries(o.Schema)}
	if !o.SkipMigrate {
		ctx, cancel := context.WithTimeout(context.Background(), migrateTimeout)
		defer cancel()
		if err := s.Migrate(ctx); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// OpenStore connects to the database at url (a PostgreSQL URL or keyword/value
// string, as pgxpool.ParseConfig reads it, with its pool_* parameters) and
// returns a Store that owns the pool: Close releases it. Unless
// opts.SkipMigrate it runs Migrate; otherwise it checks that the database
// answers. ctx bounds both. opts may be nil.
//
// Set connect_timeout in url to bound each connection attempt on its own;
// every call of the Store is bounded by its context either way.
func OpenStore(ctx context.Context, url string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("wsroompg: parse url: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("wsroompg: open pool: %w", err)
	}
	s := &Store{pool: pool, own: true, opts: o, q: newQueries(o.Schema)}
	if o.SkipMigrate {
		err = pool.Ping(ctx)
		if err != nil {
			err = fmt.Errorf("wsroompg: connect: %w", err)
		}
	} else {
		err = s.Migrate(ctx)
	}
	if err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the pool if OpenStore opened it, waiting for the
// connections in use to be returned; a Store made by NewStore leaves the
// application's pool alone. Close is idempotent; the Store must not be used
// after it.
func (s *Store) Close() {
	if s.own {
		s.pool.Close()
	}
}

// Pool returns the pool the Store uses.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Schema returns the schema that holds the Store's tables.
func (s *Store) Schema() string { return s.opts.Schema }

// lockKey is the key of a transaction-level advisory lock: a 64-bit hash
// of the parts, which name what is locked. A collision only makes two
// unrelated callers wait for each other.
func lockKey(parts ...string) int64 {
	h := fnv.New64a()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return int64(h.Sum64())
}

// queries holds the statements, with the schema name quoted in.
type queries struct {
	schema string // as given, for lock keys

	reserve, lease, release, members      string
	refreshOwn, reap, handOut, tombstones string
	appendMsg, prune                      string
	recent, before, after                 string
}

// now is the database clock: every lease is measured by it, never by the
// clocks of the servers. statement_timestamp() is fixed for a statement,
// so one statement sees one instant, and fresh for each statement of a
// transaction.
const now = `statement_timestamp()`

func newQueries(schema string) queries {
	s := pgx.Identifier{schema}.Sanitize()
	f := func(format string) string { return fmt.Sprintf(format, s, now) }
	return queries{
		schema: schema,

		// reserve decides, under the room's advisory lock, and takes the
		// name when it may. The current holder's row is locked first, so
		// a Release or a Refresh deleting it finishes before the decision.
		// Only Reserve adds members to a room, and Reserves of a room are
		// serialised by the lock, so the count of live members cannot
		// grow between the count and the insert. The members are counted
		// only when the name is free, and only up to the limit.
		reserve: f(`
WITH cur AS (
	SELECT r.server, r.conn FROM %[1]s.reservations r
	WHERE r.room = $1 AND r.name = $2
	FOR UPDATE
), state AS (
	SELECT cur.server, cur.conn,
		EXISTS (SELECT 1 FROM %[1]s.leases l
			WHERE l.server = cur.server AND NOT l.dead AND l.expires > %[2]s) AS live
	FROM (VALUES (1)) AS one LEFT JOIN cur ON true
), verdict AS (
	SELECT server, conn, CASE
		WHEN server = $3 AND conn = $4 THEN 'same'
		WHEN live AND NOT $5::boolean THEN 'taken'
		WHEN live THEN 'replace'
		WHEN $6::bigint > 0 AND (SELECT count(*) FROM (
			SELECT FROM %[1]s.reservations r JOIN %[1]s.leases l ON l.server = r.server
			WHERE r.room = $1 AND NOT l.dead AND l.expires > %[2]s
			LIMIT $6::bigint) AS members) >= $6::bigint THEN 'full'
		ELSE 'take'
	END AS v
	FROM state
), up AS (
	INSERT INTO %[1]s.reservations AS r (room, name, server, conn)
	SELECT $1, $2, $3, $4 FROM verdict WHERE v IN ('replace', 'take')
	ON CONFLICT (room, name) DO UPDATE SET server = excluded.server, conn = excluded.conn
)
SELECT v, coalesce(server, ''), coalesce(conn, '') FROM verdict`),

		// lease starts or extends a live lease (never shortens it) and
		// returns no row when the lease has ended: dead, or expired and
		// not yet reaped.
		lease: f(`
INSERT INTO %[1]s.leases AS l (server, expires) VALUES ($1, %[2]s + $2::interval)
ON CONFLICT (server) DO UPDATE SET expires = greatest(l.expires, excluded.expires)
WHERE NOT l.dead AND l.expires > %[2]s
RETURNING true`),

		// release deletes the reservation if its owner's lease is live;
		// a reservation whose lease ended is left for Refresh to hand out.
		release: f(`
DELETE FROM %[1]s.reservations
WHERE room = $1 AND name = $2 AND server = $3 AND conn = $4
AND EXISTS (SELECT 1 FROM %[1]s.leases l WHERE l.server = $3 AND NOT l.dead AND l.expires > %[2]s)`),

		members: f(`
WITH live AS (
	SELECT r.name FROM %[1]s.reservations r JOIN %[1]s.leases l ON l.server = r.server
	WHERE r.room = $1 AND NOT l.dead AND l.expires > %[2]s
)
SELECT (SELECT count(*) FROM live),
	ARRAY(SELECT name FROM live WHERE name > $2 COLLATE "C" ORDER BY name COLLATE "C" LIMIT $3)`),

		// refreshOwn sets the server's lease to end lease from now, or
		// starts it, and returns no row when it had ended. It locks the
		// row either way, so that reap, in the same transaction, reaps an
		// ended own lease too.
		refreshOwn: f(`
INSERT INTO %[1]s.leases AS l (server, expires) VALUES ($1, %[2]s + $2::interval)
ON CONFLICT (server) DO UPDATE SET expires = excluded.expires
WHERE NOT l.dead AND l.expires > %[2]s
RETURNING true`),

		// reap marks every ended lease dead: a tombstone that fails its
		// server's next Reserve or Refresh. SKIP LOCKED: a lease locked
		// by another transaction is being extended or reaped there.
		reap: f(`
UPDATE %[1]s.leases SET dead = true
WHERE server IN (
	SELECT server FROM %[1]s.leases WHERE NOT dead AND expires <= %[2]s
	FOR UPDATE SKIP LOCKED)`),

		// handOut deletes and returns the reservations of dead leases;
		// deleting a row is what makes it exactly once. SKIP LOCKED: a
		// row locked elsewhere is being handed out or taken over there
		// (or, if that transaction rolls back, is left for the next
		// Refresh).
		handOut: f(`
DELETE FROM %[1]s.reservations
WHERE (room, name) IN (
	SELECT r.room, r.name FROM %[1]s.reservations r JOIN %[1]s.leases l ON l.server = r.server
	WHERE l.dead
	FOR UPDATE OF r SKIP LOCKED)
RETURNING room, name, server, conn`),

		// tombstones forgets dead leases that ended long ago and hold
		// nothing.
		tombstones: f(`
DELETE FROM %[1]s.leases
WHERE server IN (
	SELECT l.server FROM %[1]s.leases l
	WHERE l.dead AND l.expires < %[2]s - $1::interval
	AND NOT EXISTS (SELECT 1 FROM %[1]s.reservations r WHERE r.server = l.server)
	FOR UPDATE OF l SKIP LOCKED)`),

		// appendMsg takes the room's next ID by updating its counter row,
		// whose lock it holds until the transaction commits: appends to a
		// room commit one after the other, in ID order. The first ID of a
		// room is the database clock in microseconds. The counter also
		// moves the room's retention floor: dropped is the highest ID
		// dropped (0: none yet), prev_dropped the one before this append,
		// so that prune deletes exactly the messages this append drops.
		appendMsg: f(`
WITH c AS (
	INSERT INTO %[1]s.rooms AS h (room, first_id, last_id, dropped, prev_dropped)
	VALUES ($1, (extract(epoch FROM %[2]s) * 1000000)::bigint, (extract(epoch FROM %[2]s) * 1000000)::bigint, 0, 0)
	ON CONFLICT (room) DO UPDATE SET
		last_id = h.last_id + 1,
		prev_dropped = h.dropped,
		dropped = CASE WHEN h.last_id + 1 - $2::bigint >= h.first_id
			THEN greatest(h.dropped, h.last_id + 1 - $2::bigint) ELSE h.dropped END
	RETURNING last_id
)
INSERT INTO %[1]s.messages (room, id, sender, body, sent)
SELECT $1, last_id, $3, $4, $5 FROM c
RETURNING id`),

		// prune runs in the append's transaction as a statement of its
		// own, so its snapshot, taken after the counter's lock was
		// granted, sees every message the drop covers.
		prune: f(`
DELETE FROM %[1]s.messages m USING %[1]s.rooms h
WHERE h.room = $1 AND m.room = $1 AND m.id > h.prev_dropped AND m.id <= h.dropped`),

		recent: f(`
SELECT m.id, m.sender, m.body, m.sent FROM %[1]s.messages m
WHERE m.room = $1 AND m.id > coalesce((SELECT dropped FROM %[1]s.rooms WHERE room = $1), 0)
ORDER BY m.id DESC LIMIT $2`),

		before: f(`
SELECT m.id, m.sender, m.body, m.sent FROM %[1]s.messages m
WHERE m.room = $1 AND m.id < $2
AND m.id > coalesce((SELECT dropped FROM %[1]s.rooms WHERE room = $1), 0)
ORDER BY m.id DESC LIMIT $3`),

		// after reads the counter and the page in one snapshot; it asks
		// for one message more than limit to learn whether limit cut.
		after: f(`
SELECT h.last_id, h.dropped, m.id, m.sender, m.body, m.sent
FROM %[1]s.rooms h LEFT JOIN LATERAL (
	SELECT id, sender, body, sent FROM %[1]s.messages
	WHERE room = h.room AND id > greatest($2::bigint, h.dropped)
	ORDER BY id DESC LIMIT $3
) m ON true
WHERE h.room = $1`),
	}
}
