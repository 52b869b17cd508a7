package wsroomprom_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/client_golang/prometheus/testutil"

	wsroomprom "wsroom.dev/adapters/prometheus"
	"wsroom.dev/wsroom"
)

// TestScrape runs a real server with real clients and checks what a scrape
// reports: gauges, traffic counters, refusals by code (the rate limit and
// the per-address cap), backend calls, departures by reason and room sizes.
func TestScrape(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: 2, RateBurst: 2, MaxConnectionsPerIP: 3}, &wsroomprom.Options{RoomSizes: true})
	alice := e.join("r", "alice")
	bob := e.join("r", "bob")
	bob.send(e.ctx, map[string]any{"type": "message", "text": "hi"})
	if ev := alice.expect(e.ctx, "message"); ev["text"] != "hi" {
		t.Fatalf("alice got %v", ev)
	}
	// Over the rate limit (join and "hi" took the burst of 2): refused,
	// without closing bob (that takes more than a burst in a row).
	for range 2 {
		bob.send(e.ctx, map[string]any{"type": "message", "text": "too fast"})
	}
	if ev := bob.expect(e.ctx, "error"); ev["code"] != wsroom.CodeRateLimited {
		t.Fatalf("bob got %v", ev)
	}
	echo, _, err := websocket.Dial(e.ctx, e.ws+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.CloseNow()
	// A fourth connection from 127.0.0.1: 429.
	if _, _, err := websocket.Dial(e.ctx, e.ws+"/echo", nil); err == nil || !strings.Contains(err.Error(), "429") {
		t.Fatalf("fourth connection: %v, want 429", err)
	}

	m := e.metrics()
	want := map[string]float64{
		"wsroom_connections":                     3,
		"wsroom_members":                         2,
		"wsroom_rooms":                           1,
		"wsroom_room_members{room=r}":            2,
		"wsroom_refusals_total{code=429}":        1,
		"wsroom_refusals_total{code=503}":        0,
		"wsroom_departures_total{reason=closed}": 0,
		"wsroom_departures_total{reason=slow}":   0,
		"wsroom_slow_drops_total":                0,
		"wsroom_queued_events":                   0,
		"wsroom_queued_bytes":                    0,
		"wsroom_backend_errors_total{op=Append}": 0,
	}
	for k, v := range want {
		got, ok := m[k]
		if !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
	atLeast := map[string]float64{
		"wsroom_received_messages_total":                   3, // two joins and "hi", at least
		"wsroom_received_bytes_total":                      40,
		"wsroom_sent_frames_total":                         3,
		"wsroom_sent_bytes_total":                          100,
		"wsroom_deliveries_total":                          3,
		"wsroom_refusals_total{code=rate_limited}":         1,
		"wsroom_backend_call_duration_seconds{op=Reserve}": 2,
		"wsroom_backend_call_duration_seconds{op=Append}":  1,
		"wsroom_backend_call_duration_seconds{op=Publish}": 1,
	}
	for k, v := range atLeast {
		if got := m[k]; got < v {
			t.Errorf("%s = %v, want at least %v", k, got, v)
		}
	}

	alice.c.Close(websocket.StatusNormalClosure, "")
	e.waitFor("alice's departure", func() bool { return e.metrics()["wsroom_departures_total{reason=closed}"] == 1 })
	m = e.metrics()
	if m["wsroom_members"] != 1 || m["wsroom_room_members{room=r}"] != 1 {
		t.Errorf("after alice left: members %v, room r %v", m["wsroom_members"], m["wsroom_room_members{room=r}"])
	}
	var left int64
	for _, n := range e.srv.Stats().Left {
		left += n
	}
	if left != 1 {
		t.Errorf("Stats counts %d departures, the exporter 1", left)
	}

	// The exposition a Prometheus server scrapes, and its lint.
	ts := httptest.NewServer(promhttp.HandlerFor(e.reg, promhttp.HandlerOpts{}))
	defer ts.Close()
	resp, err := http.Get(ts.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, line := range []string{
		"# HELP wsroom_connections Open WebSocket connections, chat and echo.",
		"# TYPE wsroom_backend_call_duration_seconds histogram",
		`wsroom_departures_total{reason="closed"} 1`,
		`wsroom_refusals_total{code="429"} 1`,
		`wsroom_room_members{room="r"} 1`,
		"wsroom_members 1",
	} {
		if !strings.Contains(string(body), line+"\n") {
			t.Errorf("the scrape has no line %q:\n%s", line, body)
		}
	}
	problems, err := testutil.GatherAndLint(e.reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// failStore fails every Append of the text "fail".
type failStore struct{ *wsroom.MemoryStore }

var errDisk = errors.New("disk on fire")

func (s failStore) Append(ctx context.Context, room string, m wsroom.Message) (wsroom.Message, error) {
	if m.Text == "fail" {
		return wsroom.Message{}, errDisk
	}
	return s.MemoryStore.Append(ctx, room, m)
}

// TestBackendErrors: a failed Store call is counted by its method; a
// store's answer (a name taken) is timed but is not an error.
func TestBackendErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Store: failStore{wsroom.NewMemoryStore(nil)}}, nil)
	ann := e.join("b", "ann")
	ann.send(e.ctx, map[string]any{"type": "message", "text": "fail"})
	if ev := ann.expect(e.ctx, "error"); ev["code"] != wsroom.CodeUnavailable {
		t.Fatalf("ann got %v", ev)
	}
	// The failure opened the store's breaker: for half a second its calls
	// fail at once (ErrUnavailable, counted as errors, in no time). Try
	// again, well under the rate limit, until a message goes through.
	refused := 0
	for {
		ann.send(e.ctx, map[string]any{"type": "message", "text": "fine"})
		ev := ann.expectOne(e.ctx, "message", "error")
		if ev["type"] == "message" {
			break
		}
		if ev["code"] != wsroom.CodeUnavailable {
			t.Fatalf("ann got %v", ev)
		}
		refused++
		select {
		case <-time.After(50 * time.Millisecond):
		case <-e.ctx.Done():
			t.Fatal("the breaker never closed")
		}
	}

	c, _, err := websocket.Dial(e.ctx, e.ws+"/chat/b", &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	twin := &client{t: t, c: c}
	twin.send(e.ctx, map[string]any{"type": "join", "name": "ann"})
	if ev := twin.expect(e.ctx, "error"); ev["code"] != wsroom.CodeNameTaken {
		t.Fatalf("twin got %v", ev)
	}

	m := e.metrics()
	for k, v := range map[string]float64{
		"wsroom_backend_errors_total{op=Append}":           float64(1 + refused),
		"wsroom_backend_call_duration_seconds{op=Append}":  float64(2 + refused),
		"wsroom_backend_errors_total{op=Reserve}":          0,
		"wsroom_backend_call_duration_seconds{op=Reserve}": 2,
	} {
		if got, ok := m[k]; !ok || got != v {
			t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
		}
	}
}

// TestQueueDepth: what waits for a member that stopped reading shows in
// the queue gauges at scrape time, and is gone once it has left.
func TestQueueDepth(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{SendQueue: -1, SendQueueBytes: -1, RateLimit: -1}, nil)
	stuck := e.join("q", "stuck") // never reads again
	room := e.srv.Room("q")
	text := strings.Repeat("x", 16<<10)
	e.waitFor("a queue to build up", func() bool {
		// Loopback buffers take a few MiB before the writer blocks.
		if _, err := room.Broadcast(e.ctx, wsroom.Message{Text: text}); err != nil {
			t.Fatal(err)
		}
		m := e.metrics()
		return m["wsroom_queued_events"] > 0 && m["wsroom_queued_bytes"] > 16<<10
	})
	stuck.c.CloseNow()
	e.waitFor("the queue to go", func() bool {
		m := e.metrics()
		return m["wsroom_queued_events"] == 0 && m["wsroom_queued_bytes"] == 0 && m["wsroom_members"] == 0
	})
}

// TestRoomSeries: per-room gauges are off by default; on, the largest
// MaxRoomSeries rooms are exported.
func TestRoomSeries(t *testing.T) {
	t.Parallel()
	off := newEnv(t, &wsroom.Options{}, nil)
	off.join("a", "x")
	for k := range off.metrics() {
		if strings.HasPrefix(k, "wsroom_room_members") {
			t.Fatalf("%s exported without RoomSizes", k)
		}
	}

	e := newEnv(t, &wsroom.Options{}, &wsroomprom.Options{RoomSizes: true, MaxRoomSeries: 2})
	for room, n := range map[string]int{"big": 3, "mid": 2, "small": 1} {
		for i := range n {
			e.join(room, string(rune('a'+i)))
		}
	}
	m := e.metrics()
	var got []string
	for k, v := range m {
		if strings.HasPrefix(k, "wsroom_room_members") {
			got = append(got, k+"="+string(rune('0'+int(v))))
		}
	}
	if len(got) != 2 || m["wsroom_room_members{room=big}"] != 3 || m["wsroom_room_members{room=mid}"] != 2 {
		t.Fatalf("room series: %v, want big=3 and mid=2 only", got)
	}
}

// TestSeveralServers: two Exporters with their own ConstLabels share a
// registry; one not yet watching a Server exports only what it was told.
func TestSeveralServers(t *testing.T) {
	t.Parallel()
	reg := prometheus.NewPedanticRegistry()
	a := wsroomprom.New(&wsroomprom.Options{ConstLabels: prometheus.Labels{"server": "a"}})
	b := wsroomprom.New(&wsroomprom.Options{ConstLabels: prometheus.Labels{"server": "b"}})
	reg.MustRegister(a, b)
	srv, err := wsroom.New(&wsroom.Options{Metrics: a})
	if err != nil {
		t.Fatal(err)
	}
	a.Watch(srv)
	defer srv.Shutdown(context.Background())
	b.Refused("429")
	if n, err := testutil.GatherAndCount(reg, "wsroom_connections"); err != nil || n != 1 {
		t.Fatalf("wsroom_connections series: %d, %v; want 1 (b watches no server)", n, err)
	}
	if n, err := testutil.GatherAndCount(reg, "wsroom_refusals_total"); err != nil || n != 6 {
		t.Fatalf("wsroom_refusals_total series: %d, %v; want 3 codes × 2 servers", n, err)
	}
	m := gather(t, reg)
	if m["wsroom_refusals_total{code=429,server=b}"] != 1 || m["wsroom_refusals_total{code=429,server=a}"] != 0 {
		t.Fatalf("429 refusals: a %v, b %v; want 0 and 1", m["wsroom_refusals_total{code=429,server=a}"], m["wsroom_refusals_total{code=429,server=b}"])
	}
}
