package wsroompg

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// migrations are the schema's versions, in order: migration i brings the
// schema to version i+1. A published migration never changes; a new
// version appends one. %[1]s is the quoted schema.
var migrations = []string{
	// 1: presence and history.
	`
CREATE TABLE %[1]s.leases (
	server  text        PRIMARY KEY,
	expires timestamptz NOT NULL,
	dead    boolean     NOT NULL DEFAULT false
) WITH (fillfactor = 50);
CREATE INDEX leases_ending ON %[1]s.leases (expires) WHERE NOT dead;
CREATE INDEX leases_dead ON %[1]s.leases (expires) WHERE dead;

CREATE TABLE %[1]s.reservations (
	room   text COLLATE "C" NOT NULL,
	name   text COLLATE "C" NOT NULL,
	server text NOT NULL,
	conn   text NOT NULL,
	PRIMARY KEY (room, name)
);
CREATE INDEX reservations_server ON %[1]s.reservations (server);

CREATE TABLE %[1]s.rooms (
	room         text COLLATE "C" PRIMARY KEY,
	first_id     bigint NOT NULL,
	last_id      bigint NOT NULL,
	dropped      bigint NOT NULL,
	prev_dropped bigint NOT NULL
) WITH (fillfactor = 50);

CREATE TABLE %[1]s.messages (
	room   text COLLATE "C" NOT NULL,
	id     bigint      NOT NULL,
	sender bytea       NOT NULL,
	body   bytea       NOT NULL,
	sent   timestamptz NOT NULL,
	PRIMARY KEY (room, id)
);
`,
}

// SchemaVersion is the version of the schema this package writes and
// reads, recorded in the schema's migrations table.
const SchemaVersion = 1

// Migrate creates the store's schema and tables, or brings them up to
// SchemaVersion. It is idempotent, and safe when several servers start at
// once: it runs in one transaction under an advisory lock of the schema,
// so the servers migrate one after the other and all but the first find
// nothing to do. A schema newer than this package is left alone (versions
// only add to the schema). It needs the right to create the schema and
// tables; a role without it can use a schema migrated beforehand
// (Options.SkipMigrate).
func (s *Store) Migrate(ctx context.Context) error {
	if err := s.migrate(ctx); err != nil {
		return fmt.Errorf("wsroompg: migrate schema %q: %w", s.opts.Schema, err)
	}
	return nil
}

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx)
	schema := pgx.Identifier{s.opts.Schema}.Sanitize()
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, lockKey("wsroompg.migrate", s.opts.Schema)); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, fmt.Sprintf(`
CREATE SCHEMA IF NOT EXISTS %[1]s;
CREATE TABLE IF NOT EXISTS %[1]s.migrations (
	version integer     PRIMARY KEY,
	applied timestamptz NOT NULL DEFAULT now()
)`, schema)); err != nil {
		return err
	}
	var version int
	if err := tx.QueryRow(ctx, fmt.Sprintf(`SELECT coalesce(max(version), 0) FROM %s.migrations`, schema)).Scan(&version); err != nil {
		return err
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.Exec(ctx, fmt.Sprintf(migrations[v], schema)); err != nil {
			return fmt.Errorf("to version %d: %w", v+1, err)
		}
		if _, err := tx.Exec(ctx, fmt.Sprintf(`INSERT INTO %s.migrations (version) VALUES ($1)`, schema), v+1); err != nil {
			return err
		}
	}
	return tx.Commit(ctx)
}
