package wsroom_test

import (
	"context"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
	"wsroom.dev/wsroom/storetest"
)

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
	assert.Success(t, s.Reserve(ctx, "busy", "alice", 0))
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
