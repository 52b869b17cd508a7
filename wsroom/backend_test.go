package wsroom_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestCrashedServerMembersExpire: the members of a server that stops
// refreshing its lease (it crashed) leave every member list within one
// lease, and the room hears their departure once.
func TestCrashedServerMembersExpire(t *testing.T) {
	t.Parallel()
	store, broker := wsroom.NewMemoryStore(nil), wsroom.NewMemoryBroker()
	opts := func() *wsroom.Options {
		return &wsroom.Options{Store: store, Broker: broker, LeaseTime: time.Second, LeaseRefresh: 250 * time.Millisecond}
	}
	one, two := newEnv(t, opts()), newEnv(t, opts())
	ann, _ := one.join("r", "ann")
	bob, _ := two.join("r", "bob")
	cid, _ := two.join("r", "cid")
	ann.until("join")
	ann.until("join")
	start := time.Now()
	wsroom.HaltLease(two.srv) // two "crashed": it refreshes no more
	var left []string
	for len(left) < 2 {
		ev, err := ann.next()
		assert.Success(t, err)
		switch ev.Type {
		case "leave":
			left = append(left, ev.Name)
		case "presence":
			left = append(left, ev.Left...)
		}
	}
	t.Logf("departures announced %v after the crash", time.Since(start))
	assert.True(t, "within a lease and a refresh, and a margin", time.Since(start) < 4*time.Second)
	names, err := one.srv.Room("r").Members(testContext(t))
	assert.Success(t, err)
	assert.Equal(t, "members", []string{"ann"}, names)
	// The names are free on the live server.
	_, w := one.join("r", "bob")
	assert.Equal(t, "bob's name is free", []string{"ann", "bob"}, w.Members)
	ann.until("join")
	// The "crashed" server's members, when they finally go, are not
	// announced a second time.
	bob.c.CloseNow()
	cid.c.CloseNow()
	waitFor(t, "two's members gone", func() bool { return two.srv.Stats().Members == 0 })
	_, err = one.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: "marker"})
	assert.Success(t, err)
	assert.Equal(t, "no second departure", "marker", ann.expect("message").Text)
}

// flakyStore fails Refresh while down.
type flakyStore struct {
	*wsroom.MemoryStore
	down atomic.Bool
}

func (s *flakyStore) Refresh(ctx context.Context, server string, lease time.Duration) ([]wsroom.Reservation, error) {
	if s.down.Load() {
		return nil, errors.New("store unreachable")
	}
	return s.MemoryStore.Refresh(ctx, server, lease)
}

// TestLeaseLost: a server cut off from the store for longer than its lease
// finds its lease lost when the store is back: its members, whose
// departures another server announced, are closed with 1012 and may join
// again.
func TestLeaseLost(t *testing.T) {
	t.Parallel()
	mem, broker := wsroom.NewMemoryStore(nil), wsroom.NewMemoryBroker()
	cut := &flakyStore{MemoryStore: mem}
	lease := func(s wsroom.Store) *wsroom.Options {
		return &wsroom.Options{Store: s, Broker: broker, LeaseTime: time.Second, LeaseRefresh: 250 * time.Millisecond}
	}
	one := newEnv(t, lease(mem))
	l := newLeaves()
	o := lease(cut)
	o.Hooks.OnLeave = l.hook
	two := newEnv(t, o)
	ann, _ := one.join("r", "ann")
	bob, _ := two.join("r", "bob")
	ann.until("join")
	cut.down.Store(true)
	assert.Equal(t, "bob's departure, from the server that reaped it", "bob", ann.until("leave").Name)
	cut.down.Store(false)
	assert.Equal(t, "bob is closed to reconnect", wsroom.StatusLeaseLost, bob.closed())
	ev := l.wait(t)
	assert.Equal(t, "reason", wsroom.ReasonLost, ev.Reason)
	_, w := two.join("r", "bob")
	assert.Equal(t, "bob joins again", []string{"ann", "bob"}, w.Members)
	assert.Equal(t, "and is announced", "bob", ann.until("join").Name)
}

// slowStore makes Append wait for messages that say so.
type slowStore struct {
	*wsroom.MemoryStore
	started chan struct{}
}

func (s slowStore) Append(ctx context.Context, room string, m wsroom.Message) (wsroom.Message, error) {
	if m.Text == "slow" {
		close(s.started)
		select {
		case <-time.After(700 * time.Millisecond):
		case <-ctx.Done():
			return wsroom.Message{}, ctx.Err()
		}
	}
	return s.MemoryStore.Append(ctx, room, m)
}

// TestSlowBackendDelaysOnlyItsMessage: no lock is held across a store
// call, so a message that waits for a slow store does not hold up the
// room's other messages.
func TestSlowBackendDelaysOnlyItsMessage(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	e := newEnv(t, &wsroom.Options{Store: slowStore{wsroom.NewMemoryStore(nil), started}})
	watch, _ := e.join("r", "watch")
	x, _ := e.join("r", "x")
	y, _ := e.join("r", "y")
	watch.until("join")
	watch.until("join")
	x.say("slow")
	<-started
	start := time.Now()
	y.say("fast")
	m := watch.expect("message")
	assert.Equal(t, "the fast message first", "fast", m.Text)
	assert.True(t, fmt.Sprintf("without waiting for the slow one (%v)", time.Since(start)), time.Since(start) < 400*time.Millisecond)
	assert.Equal(t, "then the slow one", "slow", watch.expect("message").Text)
}

// lossyBroker drops publications while down, then tells its subscribers
// to resync, as a broker does after a reconnect.
type lossyBroker struct {
	*wsroom.MemoryBroker
	down atomic.Bool
	mu   sync.Mutex
	subs map[string][]func(*wsroom.Publication)
	ctxs []context.Context
}

func (b *lossyBroker) Publish(ctx context.Context, p *wsroom.Publication) error {
	if b.down.Load() {
		return nil // lost on the way
	}
	return b.MemoryBroker.Publish(ctx, p)
}

func (b *lossyBroker) Subscribe(ctx context.Context, room string, deliver func(*wsroom.Publication)) (func(), error) {
	b.mu.Lock()
	b.subs[room] = append(b.subs[room], deliver)
	b.ctxs = append(b.ctxs, ctx)
	b.mu.Unlock()
	return b.MemoryBroker.Subscribe(ctx, room, deliver)
}

func (b *lossyBroker) resync(room string) {
	b.mu.Lock()
	subs := b.subs[room]
	b.mu.Unlock()
	for _, d := range subs {
		d(&wsroom.Publication{Room: room, Type: wsroom.PubResync})
	}
}

// TestResyncCatchesUp: messages a broker lost while its connection was
// down reach the members from the store after the broker's resync, once
// each and in order.
func TestResyncCatchesUp(t *testing.T) {
	t.Parallel()
	b := &lossyBroker{MemoryBroker: wsroom.NewMemoryBroker(), subs: map[string][]func(*wsroom.Publication){}}
	store := wsroom.NewMemoryStore(nil)
	e := newEnv(t, &wsroom.Options{Broker: b, Store: store})
	ann, _ := e.join("r", "ann")
	bob, _ := e.join("r", "bob")
	ann.until("join")
	bob.say("before")
	ann.expect("message")
	b.down.Store(true)
	for i := range 3 {
		bob.say(fmt.Sprint("lost ", i))
	}
	waitFor(t, "bob's messages stored, and lost", func() bool {
		msgs, err := store.Recent(testContext(t), "r", 10)
		return err == nil && len(msgs) == 4
	})
	b.down.Store(false)
	b.resync("r") // the broker is back: it says so before anything else
	bob.say("after")
	var got []string
	for len(got) < 4 {
		got = append(got, ann.expect("message").Text)
	}
	// "after" came through the broker; the lost ones from the store.
	assert.Equal(t, "every message once", 4, len(got))
	seen := map[string]bool{}
	for _, s := range got {
		assert.True(t, "no duplicate: "+s, !seen[s])
		seen[s] = true
	}
	for i := range 3 {
		assert.True(t, fmt.Sprint("lost ", i, " caught up"), seen[fmt.Sprint("lost ", i)])
	}
	_, err := e.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: "marker"})
	assert.Success(t, err)
	assert.Equal(t, "nothing more", "marker", ann.expect("message").Text)
}

// TestResyncCatchesUpQuietRoom: a room where nothing was delivered on
// this server before the broker lost publications is caught up too, from
// what its members' welcomes held: the lost messages arrive, once, and
// the history the welcomes held does not arrive again.
func TestResyncCatchesUpQuietRoom(t *testing.T) {
	t.Parallel()
	for _, old := range []int{0, 2} { // messages in the history before anyone joined
		t.Run(fmt.Sprint(old, " old messages"), func(t *testing.T) {
			t.Parallel()
			b := &lossyBroker{MemoryBroker: wsroom.NewMemoryBroker(), subs: map[string][]func(*wsroom.Publication){}}
			store := wsroom.NewMemoryStore(nil)
			for i := range old {
				_, err := store.Append(testContext(t), "r", wsroom.Message{From: "gone", Text: fmt.Sprint("old ", i), Time: time.Now()})
				assert.Success(t, err)
			}
			e := newEnv(t, &wsroom.Options{Broker: b, Store: store})
			ann, w := e.join("r", "ann")
			assert.Equal(t, "history in the welcome", old, len(w.History))
			bob, _ := e.join("r", "bob")
			ann.until("join")
			b.down.Store(true) // nothing was delivered here yet
			bob.say("lost")
			waitFor(t, "bob's message stored, and lost", func() bool {
				msgs, err := store.Recent(testContext(t), "r", 10)
				return err == nil && len(msgs) == old+1
			})
			b.down.Store(false)
			b.resync("r")
			assert.Equal(t, "the lost message, from the store", "lost", ann.expect("message").Text)
			_, err := e.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: "marker"})
			assert.Success(t, err)
			assert.Equal(t, "nothing more (no old message again)", "marker", ann.expect("message").Text)
		})
	}
}

// outage makes a store's Release fail while store is set, and a broker's
// Publish while broker is: both, as a Redis that holds both does when it
// is unreachable.
type outage struct {
	store, broker atomic.Bool
	lostLeaves    atomic.Int32 // departures the broker failed to publish
}

type outageStore struct {
	*wsroom.MemoryStore
	o *outage
}

func (s outageStore) Release(ctx context.Context, r wsroom.Reservation) error {
	if s.o.store.Load() {
		return errors.New("store unreachable")
	}
	return s.MemoryStore.Release(ctx, r)
}

type outageBroker struct {
	*wsroom.MemoryBroker
	o *outage
}

func (b outageBroker) Publish(ctx context.Context, p *wsroom.Publication) error {
	if b.o.broker.Load() {
		if p.Type == wsroom.PubLeave {
			b.o.lostLeaves.Add(1)
		}
		return errors.New("broker unreachable")
	}
	return b.MemoryBroker.Publish(ctx, p)
}

// TestDepartureInOutage: a departure that could not be published (nor,
// with the store down too, released) is announced once the backends are
// back, at a lease refresh, once; but not for a name that someone holds
// again by then.
func TestDepartureInOutage(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		storeDown bool // Release fails too
		retaken   bool // a new member takes the name before the broker is back
	}{
		{name: "store and broker down", storeDown: true},
		{name: "broker down"},
		{name: "broker down, name retaken", retaken: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			o := &outage{}
			e := newEnv(t, &wsroom.Options{
				Store: outageStore{wsroom.NewMemoryStore(nil), o}, Broker: outageBroker{wsroom.NewMemoryBroker(), o},
				LeaseTime: 2 * time.Second, LeaseRefresh: 50 * time.Millisecond,
			})
			ann, _ := e.join("r", "ann")
			bob, _ := e.join("r", "bob")
			ann.until("join")
			o.store.Store(tc.storeDown)
			o.broker.Store(true)
			bob.c.Close(websocket.StatusNormalClosure, "")
			waitFor(t, "bob's departure lost", func() bool { return o.lostLeaves.Load() > 0 })
			if tc.retaken {
				e.join("r", "bob") // its arrival is lost too
			}
			o.store.Store(false)
			o.broker.Store(false)
			if !tc.retaken {
				assert.Equal(t, "bob's departure, once the backends are back", "bob", ann.expect("leave").Name)
				waitFor(t, "bob's name released", func() bool {
					names, err := e.srv.Room("r").Members(testContext(t))
					return err == nil && len(names) == 1
				})
			}
			// A few more refreshes: nothing more. (A call may fail at once
			// for half a second after the broker's last failure.)
			time.Sleep(200 * time.Millisecond) // an observation window, not a synchronisation
			waitFor(t, "a broadcast goes through", func() bool {
				_, err := e.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: "marker"})
				return err == nil
			})
			assert.Equal(t, "nothing more", "marker", ann.expect("message").Text)
		})
	}
}

type reqKey struct{}

// TestSubscriptionNotTiedToRequest: the broker subscription of a room is
// made under the server's context, not the request of the member that
// opened the room.
func TestSubscriptionNotTiedToRequest(t *testing.T) {
	t.Parallel()
	b := &lossyBroker{MemoryBroker: wsroom.NewMemoryBroker(), subs: map[string][]func(*wsroom.Publication){}}
	e := newEnv(t, &wsroom.Options{Broker: b})
	first, _ := e.join("r", "first")
	second, _ := e.join("r", "second")
	first.c.Close(websocket.StatusNormalClosure, "")
	second.until("leave")
	b.mu.Lock()
	ctx := b.ctxs[0]
	b.mu.Unlock()
	assert.True(t, "no request values", ctx.Value(reqKey{}) == nil)
	second.say("still delivered")
	assert.Equal(t, "delivered", "still delivered", second.expect("message").Text)
}

// hangingStore makes Append wait for its context while down.
type hangingStore struct {
	*wsroom.MemoryStore
	down *atomic.Bool
}

func (s hangingStore) Append(ctx context.Context, room string, m wsroom.Message) (wsroom.Message, error) {
	if s.down.Load() {
		<-ctx.Done()
		return wsroom.Message{}, ctx.Err()
	}
	return s.MemoryStore.Append(ctx, room, m)
}

// TestBreakerKeepsMembersAlive: while the store hangs, a member's messages
// fail at once after the first times out, instead of holding its reading
// goroutine BackendTimeout each: it keeps answering pings and stays. Once
// the store answers again, messages go through within half a second.
func TestBreakerKeepsMembersAlive(t *testing.T) {
	t.Parallel()
	var down atomic.Bool
	l := newLeaves()
	e := newEnv(t, &wsroom.Options{
		Store: hangingStore{wsroom.NewMemoryStore(nil), &down}, BackendTimeout: 400 * time.Millisecond,
		PingInterval: 200 * time.Millisecond, PongTimeout: 600 * time.Millisecond, RateLimit: -1,
		Hooks: wsroom.Hooks{OnLeave: l.hook},
	})
	a, _ := e.join("r", "ann")
	down.Store(true)
	start := time.Now()
	for range 10 {
		a.say("during the outage")
	}
	for range 10 {
		assert.Equal(t, "unavailable", wsroom.CodeUnavailable, a.until("error").Code)
	}
	took := time.Since(start)
	t.Logf("10 messages refused in %v", took)
	assert.True(t, "refused at once after the first timeout", took < 10*400*time.Millisecond/2)
	down.Store(false)
	waitFor(t, "a message goes through", func() bool {
		a.say("after")
		for {
			ev, err := a.next()
			if err != nil {
				return false
			}
			if ev.Type == "message" {
				return true
			}
			if ev.Type == "error" {
				return false
			}
		}
	})
	assert.Equal(t, "ann is still connected", 0, len(l.all()))
}

// deafBroker is a server's Broker that hears nothing while down (its
// connection to the backend dropped), then resyncs its subscriptions.
type deafBroker struct {
	wsroom.Broker
	down atomic.Bool
	mu   sync.Mutex
	subs []func(*wsroom.Publication)
}

func (b *deafBroker) Subscribe(ctx context.Context, room string, deliver func(*wsroom.Publication)) (func(), error) {
	b.mu.Lock()
	b.subs = append(b.subs, deliver)
	b.mu.Unlock()
	return b.Broker.Subscribe(ctx, room, func(p *wsroom.Publication) {
		if !b.down.Load() {
			deliver(p)
		}
	})
}

func (b *deafBroker) back(room string) {
	b.down.Store(false)
	b.mu.Lock()
	subs := slices.Clone(b.subs)
	b.mu.Unlock()
	for _, d := range subs {
		d(&wsroom.Publication{Room: room, Type: wsroom.PubResync})
	}
}

// TestResyncSetsMemberListsRight: arrivals and departures a server missed
// while its broker connection was down reach its members after the resync,
// as one presence event with the differences.
func TestResyncSetsMemberListsRight(t *testing.T) {
	t.Parallel()
	one, two, deaf, _ := deafPair(t)
	bob, _ := one.join("r", "bob")
	ann, w := two.join("r", "ann")
	assert.Equal(t, "members", []string{"ann", "bob"}, w.Members)
	bob.until("join")
	deaf.down.Store(true)
	bob.c.Close(websocket.StatusNormalClosure, "")
	one.join("r", "carol")
	waitMembers(t, one, "ann", "carol")
	deaf.back("r")
	ev := ann.expect("presence")
	assert.Equal(t, "joined meanwhile", []string{"carol"}, ev.Joined)
	assert.Equal(t, "left meanwhile", []string{"bob"}, ev.Left)
	nothingMore(t, one, ann)
}

// deafPair starts two servers on one store and one broker; the second
// hears the broker through a deafBroker.
func deafPair(t *testing.T) (one, two *env, deaf *deafBroker, shared *wsroom.MemoryBroker) {
	store, shared := wsroom.NewMemoryStore(nil), wsroom.NewMemoryBroker()
	deaf = &deafBroker{Broker: shared}
	one = newEnv(t, &wsroom.Options{Store: store, Broker: shared})
	two = newEnv(t, &wsroom.Options{Store: store, Broker: deaf})
	return one, two, deaf, shared
}

// waitMembers waits until room "r" lists exactly names, in order.
func waitMembers(t *testing.T, e *env, names ...string) {
	t.Helper()
	waitFor(t, fmt.Sprint("members ", names), func() bool {
		got, err := e.srv.Room("r").Members(testContext(t))
		return err == nil && slices.Equal(got, names)
	})
}

// nothingMore checks that c's next event is a marker broadcast now in
// room "r" through e: nothing else was on its way.
func nothingMore(t *testing.T, e *env, c *client) {
	t.Helper()
	_, err := e.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: "marker"})
	assert.Success(t, err)
	assert.Equal(t, "then the next event", "marker", c.expect("message").Text)
}

// TestLateDepartureAfterResyncIsNotRepeated: a departure that the resync
// announced already, published late by the departing member's server
// (its broker was down too, and it tries again at its lease refresh), is
// not heard a second time; a departure nobody here heard of yet still is.
func TestLateDepartureAfterResyncIsNotRepeated(t *testing.T) {
	t.Parallel()
	one, two, deaf, shared := deafPair(t)
	bob, _ := one.join("r", "bob")
	one.join("r", "carol")
	ann, w := two.join("r", "ann")
	assert.Equal(t, "members", []string{"ann", "bob", "carol"}, w.Members)
	bob.until("join")
	deaf.down.Store(true)
	bob.c.Close(websocket.StatusNormalClosure, "")
	waitMembers(t, one, "ann", "carol")
	deaf.back("r")
	assert.Equal(t, "bob's departure, from the resync", []string{"bob"}, ann.expect("presence").Left)
	late := []*wsroom.Publication{
		{Room: "r", Type: wsroom.PubLeave, Name: "bob", Origin: "one"},
		{Room: "r", Type: wsroom.PubPresence, Left: []string{"bob"}, Origin: "one"},
		{Room: "r", Type: wsroom.PubPresence, Left: []string{"bob", "carol"}, Origin: "one"},
	}
	for _, p := range late {
		assert.Success(t, shared.Publish(testContext(t), p))
	}
	ev := ann.expect("presence")
	assert.Equal(t, "only carol's departure is new", []string{"carol"}, ev.Left)
	nothingMore(t, one, ann)
}

// TestShutdownMidMessageIsNotAnError: a message whose store call is cut
// short by the server shutting down is the member's end, not a backend
// failure: nothing is logged at Error (the interop flood found this).
func TestShutdownMidMessageIsNotAnError(t *testing.T) {
	t.Parallel()
	started := make(chan struct{})
	var logs logBuffer
	e := newEnv(t, &wsroom.Options{
		Store:  slowStore{wsroom.NewMemoryStore(nil), started},
		Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	a, _ := e.join("r", "ann")
	a.say("slow")
	<-started
	ctx, cancel := context.WithTimeout(testContext(t), 5*time.Second)
	defer cancel()
	assert.Success(t, e.srv.Shutdown(ctx))
	assert.Equal(t, "closed with 1001", websocket.StatusGoingAway, a.closed())
	assert.True(t, "no Error logged:\n"+logs.String(), !strings.Contains(logs.String(), "level=ERROR"))
}
