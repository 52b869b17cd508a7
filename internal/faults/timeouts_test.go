package faults_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// TestServerTimeoutsSpareMembers: an http.Server's ReadTimeout and
// WriteTimeout, set for the application's other routes, do not cut the
// WebSocket members it upgraded: they chat past both.
func TestServerTimeoutsSpareMembers(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	srv, err := wsroom.New(&wsroom.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", srv)
	ts := httptest.NewUnstartedServer(mux)
	ts.Config.ReadTimeout = 500 * time.Millisecond
	ts.Config.WriteTimeout = 500 * time.Millisecond
	ts.Start()
	defer ts.Close()
	defer srv.Shutdown(ctx)
	ws := "ws" + strings.TrimPrefix(ts.URL, "http") + "/chat/r"
	a, err := joinURL(ctx, ws, "a", "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.close()
	b, err := joinURL(ctx, ws, "b", "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.close()
	timer := time.NewTimer(1500 * time.Millisecond) // past both timeouts
	select {
	case <-timer.C:
	case <-a.done:
		t.Fatalf("a was cut: %v", a.err)
	}
	if err := a.say(ctx, "later"); err != nil {
		t.Fatal(err)
	}
	if ev, err := b.next(ctx, "message"); err != nil || ev.Text != "later" {
		t.Fatalf("b: %+v %v", ev, err)
	}
}

// stuckStore is a Store whose Append never returns before its context
// ends.
type stuckStore struct{ *wsroom.MemoryStore }

func (s stuckStore) Append(ctx context.Context, room string, m wsroom.Message) (wsroom.Message, error) {
	<-ctx.Done()
	return wsroom.Message{}, ctx.Err()
}

// TestBackendTimeout: a store call that hangs is abandoned after
// BackendTimeout, and the member is told the server is unavailable; it
// stays connected.
func TestBackendTimeout(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	e := newEnv(t, wsroom.Options{Store: stuckStore{wsroom.NewMemoryStore(nil)}, BackendTimeout: 300 * time.Millisecond})
	a := e.join(ctx, "stuck", "a")
	start := time.Now()
	if err := a.say(ctx, "hello"); err != nil {
		t.Fatal(err)
	}
	ev, err := a.next(ctx, "error", "message")
	took := time.Since(start)
	if err != nil || ev.Type != "error" || ev.Code != wsroom.CodeUnavailable {
		t.Fatalf("a: %+v %v, want an unavailable error", ev, err)
	}
	t.Logf("unavailable after %v", took.Round(time.Millisecond))
	if took < 300*time.Millisecond || took > 5*time.Second {
		t.Errorf("unavailable after %v, want about BackendTimeout (300ms)", took)
	}
	if err := a.send(ctx, map[string]any{"type": "history"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.next(ctx, "history", "error"); err != nil {
		t.Fatalf("a after the timeout: %v", err)
	}
}
