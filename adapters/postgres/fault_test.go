package wsroompg_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	wsroompg "wsroom.dev/adapters/postgres"
	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// callTimeout bounds each call during the fault tests; slack is how much
// later than its context a call may return.
const (
	callTimeout = 500 * time.Millisecond
	slack       = time.Second
)

// senders append to one room until stopped, and remember what the store
// acknowledged.
type senders struct {
	s    *wsroompg.Store
	room string

	mu    sync.Mutex
	acked map[uint64]string // ID → text
	fails atomic.Int64
	late  atomic.Int64 // calls that returned more than slack after their deadline

	stop chan struct{}
	wg   sync.WaitGroup
}

func startSenders(t *testing.T, s *wsroompg.Store, room string, n int) *senders {
	sd := &senders{s: s, room: room, acked: map[uint64]string{}, stop: make(chan struct{})}
	for w := range n {
		sd.wg.Go(func() {
			for i := 0; i < 1_000_000; i++ {
				select {
				case <-sd.stop:
					return
				default:
				}
				text := fmt.Sprintf("%d/%d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				start := time.Now()
				m, err := s.Append(ctx, room, wsroom.Message{From: "sender", Text: text, Time: time.Now()})
				cancel()
				if time.Since(start) > callTimeout+slack {
					sd.late.Add(1)
				}
				if err != nil {
					sd.fails.Add(1)
					// Down: do not spin. Bounded by the stop channel.
					select {
					case <-sd.stop:
						return
					case <-time.After(20 * time.Millisecond):
					}
					continue
				}
				sd.mu.Lock()
				sd.acked[m.ID] = text
				sd.mu.Unlock()
				// A steady load, not a flood that would starve the
				// tests running beside this one.
				select {
				case <-sd.stop:
					return
				case <-time.After(2 * time.Millisecond):
				}
			}
		})
	}
	t.Cleanup(sd.halt)
	return sd
}

func (sd *senders) count() int {
	sd.mu.Lock()
	defer sd.mu.Unlock()
	return len(sd.acked)
}

func (sd *senders) halt() {
	select {
	case <-sd.stop:
	default:
		close(sd.stop)
	}
	sd.wg.Wait()
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(t *testing.T, ctx context.Context, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}

// probe calls every method of the store with a short context while the
// database is unreachable: each must fail, and return within slack of its
// deadline.
func probe(t *testing.T, s *wsroompg.Store, room string) {
	t.Helper()
	res := wsroom.Reservation{Room: room, Name: "probe", Owner: wsroom.Owner{Server: "probe", Conn: "c"}}
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Append", func(ctx context.Context) error {
			_, err := s.Append(ctx, room, wsroom.Message{Text: "down"})
			return err
		}},
		{"Recent", func(ctx context.Context) error { _, err := s.Recent(ctx, room, 10); return err }},
		{"Before", func(ctx context.Context) error { _, err := s.Before(ctx, room, 1<<62, 10); return err }},
		{"After", func(ctx context.Context) error { _, _, err := s.After(ctx, room, 0, 10); return err }},
		{"Reserve", func(ctx context.Context) error {
			_, err := s.Reserve(ctx, res, wsroom.ReserveOptions{Lease: time.Minute})
			return err
		}},
		{"Release", func(ctx context.Context) error { return s.Release(ctx, res) }},
		{"Members", func(ctx context.Context) error { _, _, err := s.Members(ctx, room, "", 0); return err }},
		{"Refresh", func(ctx context.Context) error { _, err := s.Refresh(ctx, "probe", time.Minute); return err }},
		{"Migrate", func(ctx context.Context) error { return s.Migrate(ctx) }},
	}
	for _, c := range calls {
		ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
		start := time.Now()
		err := c.call(ctx)
		took := time.Since(start)
		cancel()
		if err == nil {
			t.Errorf("%s succeeded while the database was down", c.name)
		}
		if took > callTimeout+slack {
			t.Errorf("%s took %v, its context %v", c.name, took, callTimeout)
		}
	}
}

// recovered waits until the store appends again.
func recovered(t *testing.T, s *wsroompg.Store, room string) time.Duration {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	waitFor(t, ctx, "the store to recover", func() bool {
		c, cancel := context.WithTimeout(ctx, callTimeout)
		defer cancel()
		_, err := s.Recent(c, room, 1)
		return err == nil
	})
	return time.Since(start)
}

// TestOutage stops the database twice under load, once cleanly and once as
// a crash: calls fail while it is down and return within their contexts,
// the store recovers by itself, and every append it acknowledged is there
// afterwards, in order.
//
// It does not run in parallel with the other tests (nor does TestFreeze):
// its load and the restarts of a second server would slow the conformance
// suite's calls past its 400ms leases on a small machine.
func TestOutage(t *testing.T) {
	c := startCluster(t)
	ctx := testContext(t)
	s, err := wsroompg.OpenStore(ctx, c.url()+"&pool_max_conns=6", &wsroompg.Options{History: 1_000_000})
	assert.Success(t, err)
	defer s.Close()

	long := wsroom.Reservation{Room: "outage", Name: "alice", Owner: wsroom.Owner{Server: "long", Conn: "c"}}
	_, err = s.Reserve(ctx, long, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	short := wsroom.Reservation{Room: "outage", Name: "bob", Owner: wsroom.Owner{Server: "short", Conn: "c"}}
	_, err = s.Reserve(ctx, short, wsroom.ReserveOptions{Lease: time.Second})
	assert.Success(t, err)

	sd := startSenders(t, s, "outage", 4)
	for _, mode := range []string{"fast", "immediate"} {
		before := sd.count()
		waitFor(t, ctx, "appends", func() bool { return sd.count() >= before+50 })
		c.stop(ctx, mode)
		down := time.Now()
		probe(t, s, "outage")
		fails := sd.fails.Load()
		waitFor(t, ctx, "senders to fail", func() bool { return sd.fails.Load() >= fails+8 })
		// Stay down longer than the short lease, on the database's
		// clock too.
		select {
		case <-time.After(time.Until(down.Add(1500 * time.Millisecond))):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
		c.start(ctx)
		t.Logf("stop -m %s: down %v, recovered %v after the start", mode, time.Since(down).Round(time.Millisecond), recovered(t, s, "outage").Round(time.Millisecond))
	}
	before := sd.count()
	waitFor(t, ctx, "appends after the outages", func() bool { return sd.count() >= before+50 })
	sd.halt()
	if n := sd.late.Load(); n > 0 {
		t.Errorf("%d Appends returned more than %v after their deadline", n, slack)
	}

	// Every acknowledged message is there, once, in ID order.
	got, complete, err := s.After(ctx, "outage", 0, 1_000_000)
	assert.Success(t, err)
	assert.True(t, "complete history", complete)
	for i := 1; i < len(got); i++ {
		if got[i].ID <= got[i-1].ID {
			t.Fatalf("history out of order: %d then %d", got[i-1].ID, got[i].ID)
		}
	}
	stored := map[uint64]string{}
	for _, m := range got {
		stored[m.ID] = m.Text
	}
	var missing []uint64
	for id, text := range sd.acked {
		if stored[id] != text {
			missing = append(missing, id)
		}
	}
	slices.Sort(missing)
	if len(missing) > 0 {
		t.Fatalf("%d of %d acknowledged messages missing or changed after the outages, e.g. %v", len(missing), len(sd.acked), missing[:min(5, len(missing))])
	}
	t.Logf("%d messages acknowledged and found, %d stored in all (a failed Append may have committed), %d failed calls", len(sd.acked), len(got), sd.fails.Load())

	// Leases ran on the database's clock through the outages: the short
	// one ended and is handed out; the long one holds.
	expired, err := s.Refresh(ctx, "short", time.Minute)
	assert.ErrorIs(t, wsroom.ErrLeaseExpired, err)
	if !slices.Contains(expired, short) {
		t.Fatalf("the ended lease's reservation was not handed out: %v", expired)
	}
	_, err = s.Refresh(ctx, "long", time.Minute)
	assert.Success(t, err)
	names, _, err := s.Members(ctx, "outage", "", 0)
	assert.Success(t, err)
	assert.Equal(t, "members", []string{"alice"}, names)
}

// TestFreeze makes the database hang (every process stopped, as in a
// partition that drops packets): calls return when their contexts end,
// and the store recovers once it answers again.
func TestFreeze(t *testing.T) {
	c := startCluster(t)
	ctx := testContext(t)
	s, err := wsroompg.OpenStore(ctx, c.url()+"&pool_max_conns=6", &wsroompg.Options{History: 1_000_000})
	assert.Success(t, err)
	defer s.Close()
	first, err := s.Append(ctx, "freeze", wsroom.Message{Text: "before"})
	assert.Success(t, err)

	sd := startSenders(t, s, "freeze", 4)
	waitFor(t, ctx, "appends", func() bool { return sd.count() >= 20 })
	c.freeze()
	probe(t, s, "freeze")
	fails := sd.fails.Load()
	waitFor(t, ctx, "senders to time out", func() bool { return sd.fails.Load() >= fails+8 })
	c.thaw()
	t.Logf("recovered %v after the thaw", recovered(t, s, "freeze").Round(time.Millisecond))
	before := sd.count()
	waitFor(t, ctx, "appends after the thaw", func() bool { return sd.count() >= before+20 })
	sd.halt()
	if n := sd.late.Load(); n > 0 {
		t.Errorf("%d Appends returned more than %v after their deadline", n, slack)
	}
	got, _, err := s.After(ctx, "freeze", first.ID-1, 1_000_000)
	assert.Success(t, err)
	stored := map[uint64]string{}
	for _, m := range got {
		stored[m.ID] = m.Text
	}
	for id, text := range sd.acked {
		if stored[id] != text {
			t.Fatalf("acknowledged message %d (%q) missing after the freeze", id, text)
		}
	}
}
