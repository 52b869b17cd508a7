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
// use; the defaults suit a small server: history costs at most MaxBytes of
// memory whatever the clients send.
type MemoryStoreOptions struct {
	// History is the most messages kept per room; older ones are dropped.
	// Default 1000.
	History int

	// RoomBytes is the most bytes of history kept per room (a message costs
	// its sender's name and text plus 64 bytes); older messages are dropped.
	// Default 1 MiB.
	RoomBytes int64

	// MaxBytes is the most bytes of history kept in all. When a message
	// would pass it, the history of the room written least recently is
	// dropped, preferring rooms nobody is in. Default 64 MiB.
	MaxBytes int64

	// MaxRooms bounds how many rooms keep a history, dropping the least
	// recently written as MaxBytes does. Default 10000.
	MaxRooms int
}

// msgOverhead is what a kept message costs beyond its name and text.
const msgOverhead = 64

// tombstoneTTL is how long an ended lease is remembered, so that its server
// learns it was lost.
const tombstoneTTL = time.Hour

// MemoryStore is the default Store: presence and history in this process's
// memory, bounded in bytes. It is safe for concurrent use, and several
// Servers in one process may share it (with a shared Broker) to act as one
// cluster, which is how the package tests multi-server behaviour.
//
// Message IDs start, for each room's history, from the current Unix time in
// microseconds (and above any ID the store issued before), then increase by
// one, so they keep increasing when the process restarts or a room's
// history is dropped; a client resuming from an ID of an earlier run is told
// its gap could not be filled instead of receiving unrelated messages.
type MemoryStore struct {
	opts MemoryStoreOptions
	now  func() time.Time

	mu      sync.Mutex
	rooms   map[string]*memRoom
	lru     *list.List // of *memRoom with a history, most recently written first
	bytes   int64      // history bytes in all
	floor   uint64     // highest ID of any dropped history
	leases  map[string]*memLease
	expired []Reservation // reaped, not yet handed to a Refresh
}

type memRoom struct {
	name    string
	members []string         // sorted
	holders map[string]Owner // by name
	msgs    []Message        // msgs[head:] is the history, oldest first
	head    int
	bytes   int64
	last    uint64 // highest ID issued for the current history; 0 if none
	elem    *list.Element
}

type memLease struct {
	expires time.Time
	dead    bool // ended and reaped; kept until expires+tombstoneTTL
	res     map[resKey]struct{}
}

type resKey struct{ room, name string }

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
	if o.RoomBytes <= 0 {
		o.RoomBytes = 1 << 20
	}
	if o.MaxBytes <= 0 {
		o.MaxBytes = 64 << 20
	}
	if o.MaxRooms <= 0 {
		o.MaxRooms = 10000
	}
	return &MemoryStore{
		opts:   o,
		now:    time.Now,
		rooms:  make(map[string]*memRoom),
		lru:    list.New(),
		leases: make(map[string]*memLease),
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

// reap removes the reservations of every lease that ended and keeps them
// for Refresh to hand out.
func (s *MemoryStore) reap(now time.Time) {
	for id, l := range s.leases {
		switch {
		case l.dead && now.After(l.expires.Add(tombstoneTTL)):
			delete(s.leases, id)
		case !l.dead && now.After(l.expires):
			l.dead = true
			for k := range l.res {
				owner := Owner{Server: id}
				if r := s.rooms[k.room]; r != nil {
					owner = r.holders[k.name]
					s.unhold(r, k.name)
				}
				s.expired = append(s.expired, Reservation{Room: k.room, Name: k.name, Owner: owner})
			}
			l.res = nil
		}
	}
}

// unhold removes name from the room's members.
func (s *MemoryStore) unhold(r *memRoom, name string) {
	if i, ok := slices.BinarySearch(r.members, name); ok {
		r.members = slices.Delete(r.members, i, i+1)
		if len(r.members) == 0 {
			r.members = nil
		} else if cap(r.members) > 64 && len(r.members) < cap(r.members)/4 {
			r.members = slices.Clip(slices.Clone(r.members))
		}
	}
	delete(r.holders, name)
	if len(r.holders) == 0 {
		r.holders = nil // a room that keeps only a history holds no map
	}
	s.forget(r)
}

// Reserve implements Presence.
func (s *MemoryStore) Reserve(ctx context.Context, res Reservation, o ReserveOptions) (Owner, error) {
	if err := ctx.Err(); err != nil {
		return Owner{}, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reap(now)
	l := s.leases[res.Owner.Server]
	if l != nil && l.dead {
		return Owner{}, fmt.Errorf("reserve %q in %q: %w", res.Name, res.Room, ErrLeaseExpired)
	}
	r := s.room(res.Room)
	var replaced Owner
	i, held := slices.BinarySearch(r.members, res.Name)
	if held {
		holder := r.holders[res.Name]
		if holder != res.Owner {
			if !o.Replace {
				return Owner{}, fmt.Errorf("reserve %q in %q: %w", res.Name, res.Room, ErrNameTaken)
			}
			replaced = holder
			if hl := s.leases[holder.Server]; hl != nil {
				delete(hl.res, resKey{res.Room, res.Name})
			}
		}
	} else {
		if o.Max > 0 && len(r.members) >= o.Max {
			s.forget(r)
			return Owner{}, fmt.Errorf("reserve %q in %q: %w", res.Name, res.Room, ErrRoomFull)
		}
		// A holder whose lease ended is replaced, and its departure is
		// no longer due.
		for j, e := range s.expired {
			if e.Room == res.Room && e.Name == res.Name {
				replaced = e.Owner
				s.expired = slices.Delete(s.expired, j, j+1)
				break
			}
		}
		r.members = slices.Insert(r.members, i, res.Name)
	}
	if r.holders == nil {
		r.holders = make(map[string]Owner)
	}
	r.holders[res.Name] = res.Owner
	if l == nil {
		l = &memLease{}
		s.leases[res.Owner.Server] = l
	}
	if l.res == nil {
		l.res = make(map[resKey]struct{})
	}
	l.res[resKey{res.Room, res.Name}] = struct{}{}
	l.expires = later(l.expires, now.Add(o.Lease))
	return replaced, nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Release implements Presence.
func (s *MemoryStore) Release(ctx context.Context, res Reservation) error {
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reap(now)
	r := s.rooms[res.Room]
	if r == nil || r.holders[res.Name] != res.Owner {
		return fmt.Errorf("release %q in %q: %w", res.Name, res.Room, ErrNotMember)
	}
	if l := s.leases[res.Owner.Server]; l != nil {
		delete(l.res, resKey{res.Room, res.Name})
	}
	s.unhold(r, res.Name)
	return nil
}

// Members implements Presence.
func (s *MemoryStore) Members(ctx context.Context, room, after string, limit int) ([]string, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reap(now)
	r := s.rooms[room]
	if r == nil {
		return nil, 0, nil
	}
	i := 0
	if after != "" {
		i, _ = slices.BinarySearch(r.members, after)
		if i < len(r.members) && r.members[i] == after {
			i++
		}
	}
	j := len(r.members)
	if limit > 0 {
		j = min(j, i+limit)
	}
	return slices.Clone(r.members[i:j]), len(r.members), nil
}

// Refresh implements Presence.
func (s *MemoryStore) Refresh(ctx context.Context, server string, lease time.Duration) ([]Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l := s.leases[server]
	lost := l != nil && (l.dead || now.After(l.expires))
	s.reap(now)
	expired := s.expired
	s.expired = nil
	switch {
	case lost:
		return expired, fmt.Errorf("refresh lease %q: %w", server, ErrLeaseExpired)
	case l == nil:
		s.leases[server] = &memLease{expires: now.Add(lease)}
	default:
		l.expires = now.Add(lease)
	}
	return expired, nil
}

// Append implements History.
func (s *MemoryStore) Append(ctx context.Context, room string, m Message) (Message, error) {
	if err := ctx.Err(); err != nil {
		return Message{}, err
	}
	cost := int64(len(m.From) + len(m.Text) + msgOverhead)
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.room(room)
	if r.elem == nil {
		r.elem = s.lru.PushFront(r)
		r.last = max(uint64(s.now().UnixMicro()), s.floor) // first ID is last+1
	} else {
		s.lru.MoveToFront(r.elem)
	}
	r.last++
	m.ID = r.last
	r.msgs = append(r.msgs, m)
	r.bytes += cost
	s.bytes += cost
	for len(r.msgs)-r.head > 1 && (len(r.msgs)-r.head > s.opts.History || r.bytes > s.opts.RoomBytes) {
		s.dropOldest(r)
	}
	s.evict(r)
	return m, nil
}

// dropOldest drops the room's oldest message.
func (s *MemoryStore) dropOldest(r *memRoom) {
	old := r.msgs[r.head]
	cost := int64(len(old.From) + len(old.Text) + msgOverhead)
	r.msgs[r.head] = Message{}
	r.head++
	r.bytes -= cost
	s.bytes -= cost
	if r.head >= 64 && r.head*2 >= len(r.msgs) {
		r.msgs = slices.Clone(r.msgs[r.head:])
		r.head = 0
	}
}

// evict drops whole histories, least recently written first, sparing rooms
// with members while others can go, and never keep, until the store is
// within MaxBytes and MaxRooms.
func (s *MemoryStore) evict(keep *memRoom) {
	for s.lru.Len() > s.opts.MaxRooms || s.bytes > s.opts.MaxBytes && s.lru.Len() > 1 {
		victim := s.lru.Back()
		for e := victim; e != nil && e != keep.elem; e = e.Prev() {
			if len(e.Value.(*memRoom).members) == 0 {
				victim = e
				break
			}
		}
		if victim == keep.elem {
			break
		}
		r := s.lru.Remove(victim).(*memRoom)
		s.floor = max(s.floor, r.last)
		s.bytes -= r.bytes
		r.elem, r.msgs, r.head, r.bytes, r.last = nil, nil, 0, 0, 0
		s.forget(r)
	}
	for s.bytes > s.opts.MaxBytes && len(keep.msgs)-keep.head > 1 {
		s.dropOldest(keep)
	}
}

// history returns the room's retained messages, oldest first, as a view
// that is only valid under s.mu.
func (r *memRoom) history() []Message {
	if r == nil {
		return nil
	}
	return r.msgs[r.head:]
}

// search returns the index in h of the first message with ID > id.
func search(h []Message, id uint64) int {
	return sort.Search(len(h), func(k int) bool { return h[k].ID > id })
}

// Recent implements History.
func (s *MemoryStore) Recent(ctx context.Context, room string, limit int) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.rooms[room].history()
	if limit <= 0 || len(h) == 0 {
		return nil, nil
	}
	return slices.Clone(h[max(0, len(h)-limit):]), nil
}

// Before implements History.
func (s *MemoryStore) Before(ctx context.Context, room string, id uint64, limit int) ([]Message, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.rooms[room].history()
	if limit <= 0 || id == 0 || len(h) == 0 {
		return nil, nil
	}
	j := search(h, id-1) // first with ID >= id
	if j == 0 {
		return nil, nil
	}
	return slices.Clone(h[max(0, j-limit):j]), nil
}

// After implements History.
func (s *MemoryStore) After(ctx context.Context, room string, id uint64, limit int) ([]Message, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.rooms[room]
	h := r.history()
	if len(h) == 0 {
		// Nothing was ever written here that we remember: only "from the
		// very beginning" is known to be complete.
		return nil, id == 0 && s.floor == 0, nil
	}
	if id > r.last {
		return nil, false, nil
	}
	i := search(h, id)
	complete := id+1 >= h[0].ID
	if len(h)-i > limit {
		i = len(h) - max(limit, 0)
		complete = false
	}
	if i == len(h) {
		return nil, complete, nil
	}
	return slices.Clone(h[i:]), complete, nil
}
