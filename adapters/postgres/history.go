package wsroompg

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"wsroom.dev/wsroom"
)

// Append implements wsroom.History. It is one transaction sent in one
// round trip: the room's counter row gives the ID and is held locked until
// the commit, the message is inserted, and the messages that fall out of
// the newest Options.History are deleted. An Append that returns an ID was
// committed (durably, under the server's synchronous_commit); one that
// fails may still have been, if the connection broke during the commit.
func (s *Store) Append(ctx context.Context, room string, m wsroom.Message) (wsroom.Message, error) {
	b := &pgx.Batch{}
	b.Queue(s.q.appendMsg, room, int64(s.opts.History), []byte(m.From), []byte(m.Text), m.Time)
	b.Queue(s.q.prune, room)
	br := s.pool.SendBatch(ctx, b)
	var id int64
	err := br.QueryRow().Scan(&id)
	if err == nil {
		_, err = br.Exec()
	}
	// Close reads to the end of the batch: past the commit.
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return wsroom.Message{}, fmt.Errorf("wsroompg: append to %q: %w", room, err)
	}
	m.ID = uint64(id)
	return m, nil
}

// Recent implements wsroom.History.
func (s *Store) Recent(ctx context.Context, room string, limit int) ([]wsroom.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroompg: recent in %q: %w", room, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	msgs, err := s.page(ctx, s.q.recent, room, int64(limit))
	if err != nil {
		return nil, fmt.Errorf("wsroompg: recent in %q: %w", room, err)
	}
	return msgs, nil
}

// Before implements wsroom.History.
func (s *Store) Before(ctx context.Context, room string, id uint64, limit int) ([]wsroom.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroompg: history of %q before %d: %w", room, id, err)
	}
	if limit <= 0 || id == 0 {
		return nil, nil
	}
	msgs, err := s.page(ctx, s.q.before, room, clampID(id), int64(limit))
	if err != nil {
		return nil, fmt.Errorf("wsroompg: history of %q before %d: %w", room, id, err)
	}
	return msgs, nil
}

// maxLimit bounds the limit of After, which asks for one message more.
const maxLimit = 1 << 40

// clampID maps an ID to bigint: the store issues none above math.MaxInt64,
// so a bigger one (from a client) means the same as math.MaxInt64.
func clampID(id uint64) int64 {
	return int64(min(id, math.MaxInt64))
}

// page runs a query returning messages newest first and returns them
// oldest first.
func (s *Store) page(ctx context.Context, query string, args ...any) ([]wsroom.Message, error) {
	rows, err := s.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	var msgs []wsroom.Message
	var id int64
	var from, text []byte
	var sent time.Time
	_, err = pgx.ForEachRow(rows, []any{&id, &from, &text, &sent}, func() error {
		msgs = append(msgs, wsroom.Message{ID: uint64(id), From: string(from), Text: string(text), Time: sent})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.Reverse(msgs)
	return msgs, nil
}

// After implements wsroom.History, in one statement: the page and the
// room's counter come from one snapshot. complete is true when no message
// after id was dropped by the bound (or none was ever dropped), limit cut
// nothing, and id is not above the room's last ID.
func (s *Store) After(ctx context.Context, room string, id uint64, limit int) ([]wsroom.Message, bool, error) {
	msgs, complete, err := s.after(ctx, room, id, min(max(limit, 0), maxLimit))
	if err != nil {
		return nil, false, fmt.Errorf("wsroompg: history of %q after %d: %w", room, id, err)
	}
	return msgs, complete, nil
}

func (s *Store) after(ctx context.Context, room string, id uint64, limit int) ([]wsroom.Message, bool, error) {
	rows, err := s.pool.Query(ctx, s.q.after, room, clampID(id), int64(limit)+1)
	if err != nil {
		return nil, false, err
	}
	found := false
	var last, dropped int64
	var msgs []wsroom.Message
	var mid *int64
	var from, text []byte
	var sent *time.Time
	_, err = pgx.ForEachRow(rows, []any{&last, &dropped, &mid, &from, &text, &sent}, func() error {
		found = true
		if mid != nil {
			msgs = append(msgs, wsroom.Message{ID: uint64(*mid), From: string(from), Text: string(text), Time: *sent})
		}
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	if !found {
		// Nothing was ever appended here: only "from the very
		// beginning" is known to be complete.
		return nil, id == 0, nil
	}
	if id > uint64(last) {
		return nil, false, nil
	}
	complete := uint64(dropped) <= id
	if len(msgs) > limit {
		msgs = msgs[:limit] // newest first: drop the oldest
		complete = false
	}
	if len(msgs) == 0 {
		return nil, complete, nil
	}
	slices.Reverse(msgs)
	return msgs, complete, nil
}
