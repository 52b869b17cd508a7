package wsroom

import (
	"container/list"
	"context"
	"fmt"
	"slices"
	"sort"
	"sync"
	"time"
)

// MemoryStoreOptions configures NewMemoryStore. The zero value is ready to
// use.
type MemoryStoreOptions struct {
	// History is the number of recent messages kept per room; older ones
	// are dropped. Default 1000.
	History int

	// MaxRooms bounds how many rooms keep a history. When a further room
	// starts one, the history of the room written least recently is dropped,
	// preferring rooms nobody is in. Default 10000.
	MaxRooms int
}

// MemoryStore is the default Store: presence and history in this process's
// memory. It is safe for concurrent use, and several Servers in one process
// may share it (with a shared Broker) to act as one cluster, which is how the
// package tests multi-server behaviour.
//
// Message IDs start, for each room's history, from the current Unix time in
// microseconds (and above any ID the store issued before), so they keep
// increasing when the process restarts or a room's history is dropped; a
// client resuming from an ID of an earlier run is told its gap could not be
// filled instead of receiving unrelated messages.
type MemoryStore struct {
	history  int
	maxRooms int
	now      func() time.Time

	mu    sync.Mutex
	rooms map[string]*memRoom
	lru   *list.List // of *memRoom with a history, most recently written first
	floor uint64     // highest ID of any dropped history
}

type memRoom struct {
	name    string
	members []string  // sorted
	ring    []Message // capacity history; ring[start] is the oldest
	start   int
	last    uint64 // highest ID issued for the current history; 0 if none
	elem    *list.Element
}

var _ Store = (*MemoryStore)(nil)

// NewMemoryStore returns an empty MemoryStore. opts may be nil.
func NewMemoryStore(opts *MemoryStoreOptions) *MemoryStore {
	var o MemoryStoreOptions
	if opts != nil {
		o = *opts
	}
	if o.History <= 0 {
		o.History = 1000
	}
	if o.MaxRooms <= 0 {
		o.MaxRooms = 10000
	}
	return &MemoryStore{
		history:  o.History,
		maxRooms: o.MaxRooms,
		now:      time.Now,
		rooms:    make(map[string]*memRoom),
		lru:      list.New(),
	}
}

func (s *MemoryStore) room(name string) *memRoom {
	r := s.rooms[name]
	if r == nil {
		r = &memRoom{name: name}
		s.rooms[name] = r
	}
	return r
}

// forget deletes a room that holds nothing.
func (s *MemoryStore) forget(r *memRoom) {
	if len(r.members) == 0 && r.elem == nil {
		delete(s.rooms, r.name)
	}
}

// Reserve implements Presence.
func (s *MemoryStore) Reserve(ctx context.Context, room, name string, max int) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(room)
	i, taken := slices.BinarySearch(r.members, name)
	if taken {
		return fmt.Errorf("reserve %q in %q: %w", name, room, ErrNameTaken)
	}
	if max > 0 && len(r.members) >= max {
		s.forget(r)
		return fmt.Errorf("reserve %q in %q: %w", name, room, ErrRoomFull)
	}
	r.members = slices.Insert(r.members, i, name)
	return nil
}

// Release implements Presence.
func (s *MemoryStore) Release(ctx context.Context, room, name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[room]; r != nil {
		if i, ok := slices.BinarySearch(r.members, name); ok {
			r.members = slices.Delete(r.members, i, i+1)
			if len(r.members) == 0 {
				r.members = nil
			} else if cap(r.members) > 64 && len(r.members) < cap(r.members)/4 {
				r.members = slices.Clip(slices.Clone(r.members))
			}
		}
		s.forget(r)
	}
	return nil
}

// Members implements Presence.
func (s *MemoryStore) Members(ctx context.Context, room string) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if r := s.rooms[room]; r != nil {
		return slices.Clone(r.members), nil
	}
	return nil, nil
}

// Append implements History.
func (s *MemoryStore) Append(ctx context.Context, room string, m Message) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(room)
	if r.elem == nil {
		r.elem = s.lru.PushFront(r)
		r.ring = make([]Message, 0, min(s.history, 64))
		r.start = 0
		r.last = max(uint64(s.now().UnixMicro()), s.floor) // first ID is last+1
		s.evict(r)
	} else {
		s.lru.MoveToFront(r.elem)
	}
	r.last++
	m.ID = r.last
	if len(r.ring) < s.history {
		r.ring = append(r.ring, m)
	} else {
		r.ring[r.start] = m
		r.start = (r.start + 1) % len(r.ring)
	}
	return m, nil
}

// evict drops histories beyond maxRooms, least recently written first,
// sparing rooms with members while others can go, and never keep.
func (s *MemoryStore) evict(keep *memRoom) {
	for s.lru.Len() > s.maxRooms {
		victim := s.lru.Back()
		for e := victim; e != nil && e != keep.elem; e = e.Prev() {
			if len(e.Value.(*memRoom).members) == 0 {
				victim = e
				break
			}
		}
		r := s.lru.Remove(victim).(*memRoom)
		s.floor = max(s.floor, r.last)
		r.elem, r.ring, r.start, r.last = nil, nil, 0, 0
		s.forget(r)
	}
}

// ordered returns the room's retained messages, oldest first, as a view that
// is only valid under s.mu.
func (r *memRoom) ordered() (a, b []Message) {
	if r == nil || len(r.ring) == 0 {
		return nil, nil
	}
	return r.ring[r.start:], r.ring[:r.start]
}

// window copies the messages with index i, j (in ordered terms) into a new
// slice.
func (r *memRoom) window(i, j int) []Message {
	if i >= j {
		return nil
	}
	a, b := r.ordered()
	out := make([]Message, 0, j-i)
	for k := i; k < j; k++ {
		if k < len(a) {
			out = append(out, a[k])
		} else {
			out = append(out, b[k-len(a)])
		}
	}
	return out
}

// search returns the ordered index of the first message with ID > id.
func (r *memRoom) search(id uint64) int {
	a, b := r.ordered()
	n := len(a) + len(b)
	return sort.Search(n, func(k int) bool {
		if k < len(a) {
			return a[k].ID > id
		}
		return b[k-len(a)].ID > id
	})
}

// Recent implements History.
func (s *MemoryStore) Recent(ctx context.Context, room string, limit int) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil || limit <= 0 {
		return nil, nil
	}
	n := len(r.ring)
	return r.window(max(0, n-limit), n), nil
}

// Before implements History.
func (s *MemoryStore) Before(ctx context.Context, room string, id uint64, limit int) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil || limit <= 0 || id == 0 {
		return nil, nil
	}
	j := r.search(id - 1) // first with ID >= id
	return r.window(max(0, j-limit), j), nil
}

// After implements History.
func (s *MemoryStore) After(ctx context.Context, room string, id uint64, limit int) ([]Message, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	if r == nil || len(r.ring) == 0 {
		// Nothing was ever written here that we remember: only "from the
		// very beginning" is known to be complete.
		return nil, id == 0 && s.floor == 0, nil
	}
	if id > r.last {
		return nil, false, nil
	}
	n := len(r.ring)
	i := r.search(id)
	first, _ := r.ordered()
	oldest := first[0].ID
	complete := id+1 >= oldest
	if n-i > limit {
		i = n - max(limit, 0)
		complete = false
	}
	return slices.Clip(r.window(i, n)), complete, nil
}
