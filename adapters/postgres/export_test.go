package wsroompg

// Explained is a statement of the store with its arguments, for tests
// that EXPLAIN it.
type Explained struct {
	Name string
	SQL  string
	Args []any
}

// ExplainHistory returns the history statements as Append, Recent, Before
// and After run them in room, around id.
func ExplainHistory(s *Store, room string, id uint64, limit int) []Explained {
	return []Explained{
		{"append", s.q.appendMsg, []any{room, int64(s.opts.History), []byte("from"), []byte("text"), nil}},
		{"prune", s.q.prune, []any{room}},
		{"recent", s.q.recent, []any{room, int64(limit)}},
		{"before", s.q.before, []any{room, clampID(id), int64(limit)}},
		{"after", s.q.after, []any{room, clampID(id), int64(limit) + 1}},
	}
}
