package wsroompg

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"wsroom.dev/wsroom"
)

// tombstoneTTL is how long a dead lease is remembered after it ended, so
// that its server learns it was lost.
const tombstoneTTL = time.Hour

// Reserve implements wsroom.Presence. It is one transaction in two round
// trips: the room's advisory lock, the decision (and the insert or
// takeover), the owner's lease, sent at once; then COMMIT, or ROLLBACK when
// it fails, so that a refused Reserve changes nothing, not even the lease.
func (s *Store) Reserve(ctx context.Context, r wsroom.Reservation, o wsroom.ReserveOptions) (wsroom.Owner, error) {
	replaced, err := s.reserve(ctx, r, o)
	if err != nil {
		return wsroom.Owner{}, fmt.Errorf("wsroompg: reserve %q in %q: %w", r.Name, r.Room, err)
	}
	return replaced, nil
}

func (s *Store) reserve(ctx context.Context, r wsroom.Reservation, o wsroom.ReserveOptions) (wsroom.Owner, error) {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	b.Queue(`SELECT pg_advisory_xact_lock($1)`, lockKey("wsroompg.room", s.q.schema, r.Room))
	b.Queue(s.q.reserve, r.Room, r.Name, r.Owner.Server, r.Owner.Conn, o.Replace, int64(max(o.Max, 0)))
	b.Queue(s.q.lease, r.Owner.Server, o.Lease)
	br := s.pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx) // after Commit, a no-op

	var verdict string
	var holder wsroom.Owner
	var live bool
	_, err := br.Exec() // BEGIN
	if err == nil {
		_, err = br.Exec() // the lock
	}
	if err == nil {
		err = br.QueryRow().Scan(&verdict, &holder.Server, &holder.Conn)
	}
	if err == nil {
		err = br.QueryRow().Scan(&live)
		if errors.Is(err, pgx.ErrNoRows) {
			err = nil
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return wsroom.Owner{}, err
	case !live:
		return wsroom.Owner{}, wsroom.ErrLeaseExpired
	case verdict == "taken":
		return wsroom.Owner{}, wsroom.ErrNameTaken
	case verdict == "full":
		return wsroom.Owner{}, wsroom.ErrRoomFull
	}
	if err := tx.Commit(ctx); err != nil {
		return wsroom.Owner{}, err
	}
	if verdict == "same" {
		return wsroom.Owner{}, nil
	}
	return holder, nil
}

// Release implements wsroom.Presence, in one statement.
func (s *Store) Release(ctx context.Context, r wsroom.Reservation) error {
	tag, err := s.pool.Exec(ctx, s.q.release, r.Room, r.Name, r.Owner.Server, r.Owner.Conn)
	if err != nil {
		return fmt.Errorf("wsroompg: release %q in %q: %w", r.Name, r.Room, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("wsroompg: release %q in %q: %w", r.Name, r.Room, wsroom.ErrNotMember)
	}
	return nil
}

// Members implements wsroom.Presence, in one statement: the page and the
// total come from one snapshot. Names sort byte-wise (COLLATE "C"), as Go
// compares strings.
func (s *Store) Members(ctx context.Context, room, after string, limit int) ([]string, int, error) {
	var lim any // NULL: LIMIT ALL
	if limit > 0 {
		lim = int64(limit)
	}
	var total int64
	var names []string
	if err := s.pool.QueryRow(ctx, s.q.members, room, after, lim).Scan(&total, &names); err != nil {
		return nil, 0, fmt.Errorf("wsroompg: members of %q: %w", room, err)
	}
	if len(names) == 0 {
		names = nil
	}
	return names, int(total), nil
}

// Refresh implements wsroom.Presence. It is one transaction sent in one
// round trip, whatever the number of reservations: it extends the
// server's lease (one row: reservations live as long as their lease),
// marks every ended lease dead, deletes and returns the reservations of
// dead leases, and forgets old tombstones.
func (s *Store) Refresh(ctx context.Context, server string, lease time.Duration) ([]wsroom.Reservation, error) {
	b := &pgx.Batch{}
	b.Queue(s.q.refreshOwn, server, lease)
	b.Queue(s.q.reap)
	b.Queue(s.q.handOut)
	b.Queue(s.q.tombstones, tombstoneTTL)
	br := s.pool.SendBatch(ctx, b)

	var live bool
	var expired []wsroom.Reservation
	err := br.QueryRow().Scan(&live)
	if errors.Is(err, pgx.ErrNoRows) {
		err = nil
	}
	if err == nil {
		_, err = br.Exec()
	}
	if err == nil {
		var rows pgx.Rows
		rows, err = br.Query()
		if err == nil {
			var e wsroom.Reservation
			_, err = pgx.ForEachRow(rows, []any{&e.Room, &e.Name, &e.Owner.Server, &e.Owner.Conn}, func() error {
				expired = append(expired, e)
				return nil
			})
		}
	}
	if err == nil {
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		// The transaction rolled back, so what it read stays to be
		// handed out; unless the connection broke as it committed, and
		// those departures are lost (see Outages in the package doc).
		return nil, fmt.Errorf("wsroompg: refresh lease %q: %w", server, err)
	}
	if !live {
		return expired, fmt.Errorf("wsroompg: refresh lease %q: %w", server, wsroom.ErrLeaseExpired)
	}
	return expired, nil
}
