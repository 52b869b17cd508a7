package wsroom_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
	"wsroom.dev/wsroom/brokertest"
	"wsroom.dev/wsroom/storetest"
)

func TestMemoryBrokerConformance(t *testing.T) {
	t.Parallel()
	b := wsroom.NewMemoryBroker() // one process: every "server" shares it
	brokertest.Run(t, brokertest.Harness{New: func(*testing.T) wsroom.Broker { return b }})
}

func TestMemoryStoreConformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T, history int) wsroom.Store {
		return wsroom.NewMemoryStore(&wsroom.MemoryStoreOptions{History: history})
	})
}

func TestMemoryStoreEvictsIdleRoomsFirst(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	s := wsroom.NewMemoryStore(&wsroom.MemoryStoreOptions{History: 10, MaxRooms: 2})
	_, err := s.Reserve(ctx, wsroom.Reservation{Room: "busy", Name: "alice", Owner: wsroom.Owner{Server: "s", Conn: "c"}}, wsroom.ReserveOptions{Lease: time.Minute})
	assert.Success(t, err)
	busy, err := s.Append(ctx, "busy", wsroom.Message{Text: "1", Time: time.Now()})
	assert.Success(t, err)
	dropped, err := s.Append(ctx, "idle", wsroom.Message{Text: "1", Time: time.Now()})
	assert.Success(t, err)
	_, err = s.Append(ctx, "third", wsroom.Message{Text: "1", Time: time.Now()})
	assert.Success(t, err)

	got, err := s.Recent(ctx, "idle", 10)
	assert.Success(t, err)
	assert.Equal(t, "idle room's history dropped", 0, len(got))
	got, err = s.Recent(ctx, "busy", 10)
	assert.Success(t, err)
	assert.Equal(t, "busy room's history kept, though older", 1, len(got))

	// A dropped history starts again above every ID issued before, and a
	// resume from before the drop is incomplete.
	next, err := s.Append(ctx, "idle", wsroom.Message{Text: "2", Time: time.Now()})
	assert.Success(t, err)
	assert.True(t, "IDs keep increasing", next.ID > busy.ID)
	_, complete, err := s.After(ctx, "idle", dropped.ID, 10)
	assert.Success(t, err)
	assert.True(t, "resume across a dropped history is incomplete", !complete)
}

func TestMemoryStoreIDsSurviveRestart(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	a := wsroom.NewMemoryStore(nil)
	m1, err := a.Append(ctx, "r", wsroom.Message{Text: "before", Time: time.Now()})
	assert.Success(t, err)
	b := wsroom.NewMemoryStore(nil) // the process restarted
	m2, err := b.Append(ctx, "r", wsroom.Message{Text: "after", Time: time.Now()})
	assert.Success(t, err)
	assert.True(t, "IDs increase across a restart", m2.ID > m1.ID)
	got, complete, err := b.After(ctx, "r", m1.ID, 10)
	assert.Success(t, err)
	assert.True(t, "a resume from before the restart is incomplete", !complete)
	assert.Equal(t, "but gets what there is", 1, len(got))
}

func TestMemoryStoreBoundedInBytes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	const budget, share = 1 << 20, 256 << 10
	s := wsroom.NewMemoryStore(&wsroom.MemoryStoreOptions{MaxBytes: budget, RoomBytes: share})
	text := strings.Repeat("x", 30<<10)
	// 200 rooms, 100 messages of 30 KB each: 600 MB offered.
	for r := range 200 {
		room := "room-" + string(rune('a'+r%26)) + string(rune('a'+r/26))
		for range 100 {
			_, err := s.Append(ctx, room, wsroom.Message{From: "mallory", Text: text, Time: time.Now()})
			assert.Success(t, err)
		}
		got, err := s.Recent(ctx, room, 1000)
		assert.Success(t, err)
		kept := 0
		for _, m := range got {
			kept += len(m.Text) + len(m.From) + 64
		}
		assert.True(t, "a room keeps at most its share", kept <= share)
		assert.True(t, "a room keeps its newest message", len(got) > 0)
	}
	total := 0
	for r := range 200 {
		room := "room-" + string(rune('a'+r%26)) + string(rune('a'+r/26))
		got, err := s.Recent(ctx, room, 1000)
		assert.Success(t, err)
		for _, m := range got {
			total += len(m.Text) + len(m.From) + 64
		}
	}
	assert.True(t, "the store keeps at most its budget", total <= budget)
	assert.True(t, "and uses it", total > budget/2)
}
