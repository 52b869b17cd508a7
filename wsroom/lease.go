package wsroom

import (
	"context"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"time"
)

// lease is the server's presence lease: every name its members hold is
// reserved under the lease's id, and lives as long as the lease. A
// goroutine, started with the first reservation and stopped by Shutdown,
// refreshes it every LeaseRefresh for LeaseTime, in one store call however
// many members the server has. On the same call the store hands over the
// reservations of servers whose lease ended (a crash, a partition): their
// departures are announced from here, once. A release that failed is
// retried here too, and so is a departure whose publication failed (the
// broker was down): once its name is released, unless someone holds the
// name again by then.
//
// If the lease itself is found lost (the store was unreachable for longer
// than LeaseTime, say), its members' departures have been announced: the
// server takes a new lease id and closes those members with 1012, so that
// they reconnect and join again.
type lease struct {
	s *Server

	mu      sync.Mutex
	cur     string
	running bool
	halted  bool
	retry   []Reservation // releases to try again
	gone    []Reservation // departures to announce again (Room and Name)
	stop    chan struct{}
	done    chan struct{}
}

func (l *lease) init(s *Server) {
	l.s = s
	l.cur = rand.Text()
	l.stop = make(chan struct{})
	l.done = make(chan struct{})
}

// id returns the current lease id.
func (l *lease) id() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.cur
}

// start starts the refreshing goroutine, once, unless the server is shut
// down.
func (l *lease) start() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.running || l.halted {
		return
	}
	l.running = true
	go l.loop()
}

// halt stops the refreshing goroutine and waits for it.
func (l *lease) halt() {
	l.mu.Lock()
	running := l.running
	if !l.halted {
		l.halted = true
		close(l.stop)
	}
	l.mu.Unlock()
	if running {
		<-l.done
	}
}

func (l *lease) loop() {
	defer close(l.done)
	t := time.NewTicker(l.s.opts.LeaseRefresh)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			l.refresh()
		}
	}
}

// releaseLater keeps a reservation to release at the next refresh.
func (l *lease) releaseLater(res Reservation) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.retry = append(l.retry, res)
}

// maxGone bounds the departures kept to announce again, through a long
// broker outage.
const maxGone = 10000

// announceLater keeps departures whose publication failed, to announce
// at the next refresh.
func (l *lease) announceLater(room string, names ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, name := range names {
		l.gone = append(l.gone, Reservation{Room: room, Name: name})
	}
	if n := len(l.gone) - maxGone; n > 0 {
		l.s.log.Warn("wsroom: too many departures waiting for the broker; the oldest are not announced", "count", n)
		l.gone = slices.Delete(l.gone, 0, n)
	}
}

// refresh extends the lease, announces the departures of expired
// reservations, and retries failed releases and announcements.
func (l *lease) refresh() {
	s := l.s
	ctx, cancel := context.WithTimeout(context.Background(), s.backendTimeout())
	defer cancel()
	l.mu.Lock()
	retry, gone, id := l.retry, l.gone, l.cur
	l.retry, l.gone = nil, nil
	l.mu.Unlock()
	var again []Reservation
	for _, res := range retry {
		err := s.opts.Store.Release(ctx, res)
		if err != nil && !errors.Is(err, ErrNotMember) {
			again = append(again, res) // its departure was announced already
		}
	}
	if len(again) > 0 {
		l.mu.Lock()
		l.retry = append(l.retry, again...)
		l.mu.Unlock()
	}
	expired, err := s.opts.Store.Refresh(ctx, id, s.opts.LeaseTime)
	for room, names := range byRoom(expired) {
		if aerr := s.announceGone(ctx, room, names); aerr != nil {
			l.announceLater(room, names...)
		}
	}
	l.announceAgain(ctx, gone, again)
	switch {
	case errors.Is(err, ErrLeaseExpired):
		l.lost(id)
	case err != nil:
		s.log.Warn("wsroom: presence lease refresh failed", "lease", id, "err", err)
	case len(expired) > 0:
		s.log.Info("wsroom: members of a server whose lease ended have left", "count", len(expired))
	}
}

// lost replaces a lease found lost with a new one, once, and closes the
// members that held names under it.
func (l *lease) lost(id string) {
	l.mu.Lock()
	if l.cur != id {
		l.mu.Unlock()
		return // renewed already
	}
	l.cur = rand.Text()
	l.mu.Unlock()
	s := l.s
	s.log.Error("wsroom: presence lease lost (the store was unreachable for longer than LeaseTime?); its members are closed with 1012 and may reconnect", "lease", id)
	for _, m := range s.membersOf(id) {
		m.t.kill(ReasonLost, StatusLeaseLost, "presence lost; reconnect", nil)
	}
}

// announceAgain announces the departures whose publication failed. One
// whose name is still to be released waits for it (until then the store
// lists the name); one whose name someone holds again by now is dropped:
// the room heard of the newcomer, or will.
func (l *lease) announceAgain(ctx context.Context, gone, unreleased []Reservation) {
	if len(gone) == 0 {
		return
	}
	s := l.s
	var keep []Reservation
	rooms := byRoom(slices.DeleteFunc(gone, func(g Reservation) bool {
		held := slices.ContainsFunc(unreleased, func(r Reservation) bool { return r.Room == g.Room && r.Name == g.Name })
		if held {
			keep = append(keep, g)
		}
		return held
	}))
	for _, g := range keep {
		l.announceLater(g.Room, g.Name)
	}
	for room, names := range rooms {
		live, _, err := s.opts.Store.Members(ctx, room, "", 0)
		if err != nil {
			l.announceLater(room, names...)
			continue
		}
		names = slices.DeleteFunc(names, func(n string) bool { _, found := slices.BinarySearch(live, n); return found })
		if len(names) == 0 {
			continue
		}
		if err := s.announceGone(ctx, room, names); err != nil {
			l.announceLater(room, names...)
		}
	}
}

// byRoom groups reservations' names by room, each name once.
func byRoom(rs []Reservation) map[string][]string {
	m := map[string][]string{}
	for _, r := range rs {
		if !slices.Contains(m[r.Room], r.Name) {
			m[r.Room] = append(m[r.Room], r.Name)
		}
	}
	return m
}

// announceGone tells a room that members left whom no member of this
// server announces now: the members of a server whose lease ended, and
// departures whose first announcement failed.
func (s *Server) announceGone(ctx context.Context, room string, names []string) error {
	p := &Publication{Room: room, Type: PubLeave, Name: names[0], Origin: s.id}
	if len(names) > 1 {
		p = &Publication{Room: room, Type: PubPresence, Left: names, Origin: s.id}
	}
	if err := s.opts.Broker.Publish(ctx, p); err != nil {
		s.log.Warn("wsroom: could not announce departures; trying again at the next refresh", "room", room, "count", len(names), "err", err)
		return err
	}
	return nil
}
