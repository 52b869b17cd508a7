package wsroomredis

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
	"wsroom.dev/wsroom/storetest"
)

// TestStoreConformance does not run in parallel with the other tests: the
// suite's lease tests refresh a 400ms lease every 100ms, and the broker
// tests' busy loops on two cores can delay a refresh past the lease.
func TestStoreConformance(t *testing.T) {
	needRedis(t)
	storetest.Run(t, func(t *testing.T, history int) wsroom.Store {
		s, _ := newTestStore(t, StoreOptions{History: history})
		return s
	})
}

func TestStoreOptions(t *testing.T) {
	t.Parallel()
	_, err := NewStore(nil, nil)
	assert.ErrorIs(t, wsroom.ErrBadOptions, err)
	o, err := (*StoreOptions)(nil).withDefaults()
	assert.Success(t, err)
	assert.Equal(t, "defaults", StoreOptions{Prefix: "wsroom:", History: 1000, RoomBytes: 1 << 20, HistoryTTL: 30 * 24 * time.Hour}, o)
	for _, p := range []string{"a{b", "a}", "{x}"} {
		_, err := (&StoreOptions{Prefix: p}).withDefaults()
		assert.ErrorIs(t, wsroom.ErrBadOptions, err)
	}
	_, err = (&BrokerOptions{ReconnectMin: time.Second, ReconnectMax: time.Millisecond}).withDefaults()
	assert.ErrorIs(t, wsroom.ErrBadOptions, err)
}

// TestKeysShareSlots checks the key layout for Redis Cluster: all presence
// keys hash to one slot, each room's history keys to one slot of the room,
// whatever the room's name, and distinct names give distinct keys.
func TestKeysShareSlots(t *testing.T) {
	t.Parallel()
	k := newKeys("wsroom:")
	rooms := []string{"lobby", "", "{", "}", "}x{", "a{b}c", "{}", "%", "%7B", "%7D", "%25", "聊天室 🎉", "a:b", "*?[]"}
	presence := slot(k.leases)
	seen := map[string]string{}
	for _, r := range rooms {
		for _, key := range []string{k.members(r), k.holders(r), k.lease(r), k.dead, k.expired} {
			if slot(key) != presence {
				t.Errorf("presence key %q is in slot %d, not %d", key, slot(key), presence)
			}
		}
		if slot(k.log(r)) != slot(k.meta(r)) || slot(k.log(r)) != slot(k.sizes(r)) {
			t.Errorf("room %q: history keys %q, %q and %q in different slots", r, k.log(r), k.meta(r), k.sizes(r))
		}
		if got := hashTag(k.log(r)); got != tag(r) || got == "" {
			t.Errorf("room %q: hash tag %q, want %q", r, got, tag(r))
		}
		if strings.ContainsAny(tag(r), "{}") {
			t.Errorf("room %q: tag %q has a brace", r, tag(r))
		}
		for _, key := range []string{k.log(r), k.meta(r), k.sizes(r), k.members(r), k.holders(r), channel("wsroom:", r)} {
			if other, dup := seen[key]; dup {
				t.Errorf("rooms %q and %q share the key %q", other, r, key)
			}
			seen[key] = r
		}
	}
	if slot(k.log("lobby")) == slot(k.log("general")) {
		t.Log("two rooms share a slot (possible, but unlikely for these names)")
	}
}

func TestPair(t *testing.T) {
	t.Parallel()
	for _, p := range [][2]string{{"", ""}, {"a", "b"}, {"1:2", ":3"}, {"srv-1", ""}, {"", "c"}, {"聊天", "室:{}"}} {
		a, b, ok := unpair(pair(p[0], p[1]))
		if !ok || a != p[0] || b != p[1] {
			t.Errorf("unpair(pair(%q, %q)) = %q, %q, %v", p[0], p[1], a, b, ok)
		}
	}
	for _, bad := range []string{"", "x", "5:ab", "-1:a"} {
		if _, _, ok := unpair(bad); ok {
			t.Errorf("unpair(%q) succeeded", bad)
		}
	}
}

func TestHistoryRoomBytes(t *testing.T) {
	t.Parallel()
	s, c := newTestStore(t, StoreOptions{History: 100, RoomBytes: 3*(64+1+10) + 10})
	ctx := testContext(t)
	var ids []uint64
	for i := range 5 {
		m, err := s.Append(ctx, "r", wsroom.Message{From: "a", Text: strings.Repeat("x", 9) + string(rune('0'+i)), Time: time.Now()})
		assert.Success(t, err)
		ids = append(ids, m.ID)
	}
	got, err := s.Recent(ctx, "r", 10)
	assert.Success(t, err)
	if len(got) != 3 || got[0].ID != ids[2] {
		t.Fatalf("kept %v, want the last 3 of %v", got, ids)
	}
	// One message bigger than the bound is kept alone.
	big, err := s.Append(ctx, "r", wsroom.Message{Text: strings.Repeat("y", 1000)})
	assert.Success(t, err)
	got, err = s.Recent(ctx, "r", 10)
	assert.Success(t, err)
	if len(got) != 1 || got[0].ID != big.ID || !got[0].Time.IsZero() {
		t.Fatalf("kept %v, want only the big message, with no time", got)
	}
	// The log lost without its meta (its count of bytes is stale): the
	// count starts again from the log's first message.
	assert.Success(t, c.Del(ctx, s.keys.log("r")).Err())
	for i := range 3 {
		_, err := s.Append(ctx, "r", wsroom.Message{From: "a", Text: strings.Repeat("z", 9) + string(rune('0'+i))})
		assert.Success(t, err)
	}
	got, err = s.Recent(ctx, "r", 10)
	assert.Success(t, err)
	if len(got) != 3 {
		t.Fatalf("kept %d messages after the log was lost, want 3", len(got))
	}
	n, err := c.XLen(ctx, s.keys.log("r")).Result()
	assert.Success(t, err)
	sizes, err := c.LRange(ctx, s.keys.sizes("r"), 0, -1).Result()
	assert.Success(t, err)
	assert.Equal(t, "sizes", []string{"75", "75", "75"}, sizes)
	assert.Equal(t, "log length", int64(3), n)
}

func TestHistoryTTL(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	for _, tc := range []struct {
		ttl  time.Duration
		want func(time.Duration) bool
	}{
		{time.Hour, func(d time.Duration) bool { return d > 59*time.Minute && d <= time.Hour }},
		{-1, func(d time.Duration) bool { return d == -1 }}, // PTTL: no expiry
	} {
		s, c := newTestStore(t, StoreOptions{HistoryTTL: tc.ttl})
		_, err := s.Append(ctx, "r", wsroom.Message{Text: "x"})
		assert.Success(t, err)
		for _, key := range []string{s.keys.log("r"), s.keys.meta("r"), s.keys.sizes("r")} {
			d, err := c.PTTL(ctx, key).Result()
			assert.Success(t, err)
			if !tc.want(d) {
				t.Errorf("HistoryTTL %v: %s has PTTL %v", tc.ttl, key, d)
			}
		}
	}
}

// TestIDsIncreaseAfterHistoryLost: a room whose history expired (or whose
// Redis lost its data) issues IDs above the old ones, and a resume from an
// old ID is incomplete.
func TestIDsIncreaseAfterHistoryLost(t *testing.T) {
	t.Parallel()
	s, c := newTestStore(t, StoreOptions{})
	ctx := testContext(t)
	first, err := s.Append(ctx, "r", wsroom.Message{Text: "1"})
	assert.Success(t, err)
	if now := uint64(time.Now().UnixMicro()); first.ID+uint64(time.Minute/time.Microsecond) < now {
		t.Fatalf("first ID %d does not start near the time in µs (%d)", first.ID, now)
	}
	assert.Success(t, c.Del(ctx, s.keys.log("r"), s.keys.meta("r"), s.keys.sizes("r")).Err())
	msgs, complete, err := s.After(ctx, "r", first.ID, 10)
	assert.Success(t, err)
	if len(msgs) != 0 || complete {
		t.Fatalf("after a lost history: %v, complete %v", msgs, complete)
	}
	second, err := s.Append(ctx, "r", wsroom.Message{Text: "2"})
	assert.Success(t, err)
	if second.ID <= first.ID {
		t.Fatalf("ID %d after %d", second.ID, first.ID)
	}
	msgs, complete, err = s.After(ctx, "r", first.ID, 10)
	assert.Success(t, err)
	if len(msgs) != 1 || msgs[0].ID != second.ID || complete {
		t.Fatalf("after the old ID: %v, complete %v; want the new message, incomplete", msgs, complete)
	}
	// Only the log lost (its meta survived some other way): IDs stay above it.
	assert.Success(t, c.Del(ctx, s.keys.meta("r")).Err())
	third, err := s.Append(ctx, "r", wsroom.Message{Text: "3"})
	assert.Success(t, err)
	if third.ID <= second.ID {
		t.Fatalf("ID %d after %d", third.ID, second.ID)
	}
}

func TestAfterEmptyRoom(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, StoreOptions{})
	ctx := testContext(t)
	msgs, complete, err := s.After(ctx, "nobody-spoke", 0, 10)
	assert.Success(t, err)
	if msgs != nil || !complete {
		t.Fatalf("after 0 in an empty room: %v, complete %v; want none, complete", msgs, complete)
	}
	_, complete, err = s.After(ctx, "nobody-spoke", 5, 10)
	assert.Success(t, err)
	assert.True(t, "after an ID never issued is incomplete", !complete)
	got, err := s.Before(ctx, "nobody-spoke", 5, 10)
	assert.Success(t, err)
	assert.True(t, "before in an empty room", got == nil)
}

// TestLeaseLostWithData: when Redis loses its data (a restart without
// persistence, a failover to a replica that lagged), a server that held a
// lease learns that it lost it, as it would if the lease had ended.
func TestLeaseLostWithData(t *testing.T) {
	t.Parallel()
	s, c := newTestStore(t, StoreOptions{})
	ctx := testContext(t)
	r := wsroom.Reservation{Room: "r", Name: "alice", Owner: wsroom.Owner{Server: "srv-" + random(), Conn: "c1"}}
	_, err := s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	_, err = s.Refresh(ctx, r.Owner.Server, time.Minute)
	assert.Success(t, err)
	keys, err := c.Keys(ctx, s.keys.presence+"*").Result()
	assert.Success(t, err)
	assert.Success(t, c.Del(ctx, keys...).Err())

	_, err = s.Refresh(ctx, r.Owner.Server, time.Minute)
	assert.ErrorIs(t, wsroom.ErrLeaseExpired, err)
	_, err = s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: time.Minute})
	assert.ErrorIs(t, wsroom.ErrLeaseExpired, err)
	// Another Store (another process) that never held it learns it too:
	// the loss is recorded in Redis.
	other, err := NewStore(c, &s.opts)
	assert.Success(t, err)
	_, err = other.Refresh(ctx, r.Owner.Server, time.Minute)
	assert.ErrorIs(t, wsroom.ErrLeaseExpired, err)
	// A new lease id works.
	r.Owner.Server = "srv-" + random()
	_, err = s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
}

// TestRefreshManyOneRoundTrip: Refresh keeps every reservation of a server
// alive with one script call, whatever their number.
func TestRefreshManyOneRoundTrip(t *testing.T) {
	t.Parallel()
	s, c := newTestStore(t, StoreOptions{})
	ctx := testContext(t)
	srv := "srv-" + random()
	const n = 300
	for i := range n {
		r := wsroom.Reservation{Room: "r" + string(rune('a'+i%3)), Name: strings.Repeat("n", 1+i/3), Owner: wsroom.Owner{Server: srv, Conn: "c"}}
		_, err := s.Reserve(ctx, r, wsroom.ReserveOptions{Lease: 500 * time.Millisecond})
		assert.Success(t, err)
	}
	calls := countCalls(c)
	deadline := time.Now().Add(1200 * time.Millisecond)
	rounds := 0
	for time.Now().Before(deadline) {
		_, err := s.Refresh(ctx, srv, 500*time.Millisecond)
		assert.Success(t, err)
		rounds++
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		}
	}
	if got := calls.Load(); got != int64(rounds) {
		t.Fatalf("%d Refresh calls made %d round trips", rounds, got)
	}
	total := 0
	for _, room := range []string{"ra", "rb", "rc"} {
		_, m, err := s.Members(ctx, room, "", 1)
		assert.Success(t, err)
		total += m
	}
	if total != n {
		t.Fatalf("%d members after refreshing past the lease, want %d", total, n)
	}
}

func TestOpenStore(t *testing.T) {
	t.Parallel()
	needRedis(t)
	ctx := testContext(t)
	s, err := OpenStore(ctx, redisURL, &StoreOptions{Prefix: "wsroomtest-" + random() + ":"})
	assert.Success(t, err)
	m, err := s.Append(ctx, "r", wsroom.Message{Text: "hi"})
	assert.Success(t, err)
	got, err := s.Recent(ctx, "r", 1)
	assert.Success(t, err)
	assert.True(t, "recent", len(got) == 1 && got[0].ID == m.ID)
	assert.Success(t, s.Close())
	assert.Success(t, s.Close())
	if _, err := s.Recent(ctx, "r", 1); err == nil {
		t.Fatal("Recent after Close succeeded")
	}

	if _, err := OpenStore(ctx, "postgres://nope", nil); err == nil {
		t.Fatal("OpenStore with a bad URL succeeded")
	}
	if _, err := OpenStore(ctx, redisURL, &StoreOptions{Prefix: "{bad}"}); !errors.Is(err, wsroom.ErrBadOptions) {
		t.Fatalf("bad prefix: %v", err)
	}
}

// TestMembersOrder: names are ordered by their bytes, as Go compares
// strings.
func TestMembersOrder(t *testing.T) {
	t.Parallel()
	s, _ := newTestStore(t, StoreOptions{})
	ctx := testContext(t)
	names := []string{"bob", "Bob", "ärger", "zed", "émile", "b", "bb", "黄", "🎉", "a b"}
	for i, n := range names {
		_, err := s.Reserve(ctx, wsroom.Reservation{Room: "r", Name: n, Owner: wsroom.Owner{Server: "s", Conn: string(rune('a' + i))}}, wsroom.ReserveOptions{Lease: time.Minute})
		assert.Success(t, err)
	}
	got, total, err := s.Members(ctx, "r", "", 0)
	assert.Success(t, err)
	want := slices.Sorted(slices.Values(names))
	assert.Equal(t, "members", want, got)
	assert.Equal(t, "total", len(names), total)
}
