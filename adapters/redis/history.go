package wsroomredis

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/wsroom"
)

// msgOverhead is what a kept message costs beyond its name and text, as in
// wsroom.MemoryStore.
const msgOverhead = 64

// Append implements wsroom.History: one script issues the ID, adds the
// message to the room's log and trims the log to its bounds.
func (s *Store) Append(ctx context.Context, room string, m wsroom.Message) (wsroom.Message, error) {
	if err := ctx.Err(); err != nil {
		return wsroom.Message{}, fmt.Errorf("wsroomredis: append to %q: %w", room, err)
	}
	ts := ""
	if !m.Time.IsZero() {
		ts = strconv.FormatInt(m.Time.UnixMilli(), 10)
	}
	ttl := int64(0)
	if s.opts.HistoryTTL > 0 {
		ttl = leaseMillis(s.opts.HistoryTTL)
	}
	id, err := appendScript.Run(ctx, s.client, []string{s.keys.log(room), s.keys.meta(room), s.keys.sizes(room)},
		m.From, m.Text, ts, len(m.From)+len(m.Text)+msgOverhead, bound(int64(s.opts.History)), bound(s.opts.RoomBytes), ttl,
	).Text()
	if err != nil {
		return wsroom.Message{}, fmt.Errorf("wsroomredis: append to %q: %w", room, err)
	}
	if m.ID, err = strconv.ParseUint(id, 10, 64); err != nil {
		return wsroom.Message{}, fmt.Errorf("wsroomredis: append to %q: bad id %q", room, id)
	}
	return m, nil
}

// bound passes a bound to a script: -1 for none.
func bound(n int64) int64 {
	if n < 0 {
		return -1
	}
	return n
}

// Recent implements wsroom.History.
func (s *Store) Recent(ctx context.Context, room string, limit int) ([]wsroom.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroomredis: recent of %q: %w", room, err)
	}
	if limit <= 0 {
		return nil, nil
	}
	xs, err := s.client.XRevRangeN(ctx, s.keys.log(room), "+", "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("wsroomredis: recent of %q: %w", room, err)
	}
	return fromLog(xs)
}

// Before implements wsroom.History.
func (s *Store) Before(ctx context.Context, room string, id uint64, limit int) ([]wsroom.Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroomredis: history of %q before %d: %w", room, id, err)
	}
	if limit <= 0 || id == 0 {
		return nil, nil
	}
	// An end without a sequence part means "<id-1>-<any>": IDs below id.
	xs, err := s.client.XRevRangeN(ctx, s.keys.log(room), strconv.FormatUint(id-1, 10), "-", int64(limit)).Result()
	if err != nil {
		return nil, fmt.Errorf("wsroomredis: history of %q before %d: %w", room, id, err)
	}
	return fromLog(xs)
}

// After implements wsroom.History. One script reads, at one instant, the
// last ID issued, the oldest ID kept and the newest limit+1 messages after
// id: complete is false when id was never issued, when messages after it
// were dropped (the oldest kept is past id+1), or when more than limit
// follow it.
func (s *Store) After(ctx context.Context, room string, id uint64, limit int) ([]wsroom.Message, bool, error) {
	fail := func(err error) ([]wsroom.Message, bool, error) {
		return nil, false, fmt.Errorf("wsroomredis: history of %q after %d: %w", room, id, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	limit = min(max(limit, 0), 1<<30) // limit+1 must not overflow
	res, err := afterScript.Run(ctx, s.client, []string{s.keys.log(room), s.keys.meta(room)},
		strconv.FormatUint(id, 10)+"-1", limit+1).Slice()
	if err == nil && len(res) != 3 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return fail(err)
	}
	seq, _ := res[0].(string)
	last, err := strconv.ParseUint(seq, 10, 64)
	if err != nil {
		return fail(fmt.Errorf("bad seq %q", seq))
	}
	if id > last {
		return nil, false, nil // never issued
	}
	oldestID, _ := res[1].(string)
	if oldestID == "" {
		// Nothing kept: complete only if nothing was issued after id.
		return nil, id == last, nil
	}
	oldest, err := logID(oldestID)
	if err != nil {
		return fail(err)
	}
	raw, _ := res[2].([]any)
	complete := id+1 >= oldest
	if len(raw) > limit {
		raw = raw[:limit]
		complete = false
	}
	msgs := make([]wsroom.Message, len(raw))
	for i, e := range raw {
		m, err := fromRaw(e)
		if err != nil {
			return fail(err)
		}
		msgs[len(raw)-1-i] = m // newest first -> oldest first
	}
	if len(msgs) == 0 {
		msgs = nil
	}
	return msgs, complete, nil
}

// fromLog converts stream entries, newest first, to messages, oldest
// first.
func fromLog(xs []redis.XMessage) ([]wsroom.Message, error) {
	if len(xs) == 0 {
		return nil, nil
	}
	msgs := make([]wsroom.Message, len(xs))
	for i, x := range xs {
		id, err := logID(x.ID)
		if err != nil {
			return nil, err
		}
		from, _ := x.Values["f"].(string)
		text, _ := x.Values["t"].(string)
		ts, _ := x.Values["ts"].(string)
		m, err := message(id, from, text, ts)
		if err != nil {
			return nil, err
		}
		msgs[len(xs)-1-i] = m
	}
	return msgs, nil
}

// fromRaw converts one stream entry as a script returns it:
// {id, {"f", from, "t", text, "ts", ts}}.
func fromRaw(e any) (wsroom.Message, error) {
	pair, _ := e.([]any)
	if len(pair) != 2 {
		return wsroom.Message{}, fmt.Errorf("bad log entry %v", e)
	}
	sid, _ := pair[0].(string)
	fields, _ := pair[1].([]any)
	id, err := logID(sid)
	if err != nil {
		return wsroom.Message{}, err
	}
	var from, text, ts string
	for i := 0; i+1 < len(fields); i += 2 {
		k, _ := fields[i].(string)
		v, _ := fields[i+1].(string)
		switch k {
		case "f":
			from = v
		case "t":
			text = v
		case "ts":
			ts = v
		}
	}
	return message(id, from, text, ts)
}

func message(id uint64, from, text, ts string) (wsroom.Message, error) {
	m := wsroom.Message{ID: id, From: from, Text: text}
	if ts != "" {
		t, err := strconv.ParseInt(ts, 10, 64)
		if err != nil {
			return wsroom.Message{}, fmt.Errorf("bad time %q in message %d", ts, id)
		}
		m.Time = time.UnixMilli(t)
	}
	return m, nil
}

// logID reads the message ID of a stream entry ID, "<id>-0".
func logID(s string) (uint64, error) {
	if i := strings.IndexByte(s, '-'); i >= 0 {
		s = s[:i]
	}
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("bad log entry id %q", s)
	}
	return id, nil
}
