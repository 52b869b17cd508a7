package wsroom_test

import (
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestConnectionCaps: one address holds at most MaxConnectionsPerIP
// connections (429), the server at most MaxConnections (503), counting chat
// and echo; a freed place is taken again.
func TestConnectionCaps(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{MaxConnectionsPerIP: 2})
	a := e.dial("/echo", false)
	e.dial("/chat/x", true)
	_, err := e.dialErr("/echo", false, nil)
	assert.True(t, "third from one address: 429", err != nil && strings.Contains(err.Error(), "429"))
	a.c.CloseNow()
	// The place is free once the handler returned: dial until it is.
	waitFor(t, "a place free", func() bool {
		c, err := e.dialErr("/echo", false, nil)
		if err == nil {
			c.c.CloseNow()
		}
		return err == nil
	})

	byHeader := func(r *http.Request) string { return r.Header.Get("X-Client") }
	g := newEnv(t, &wsroom.Options{MaxConnections: 3, MaxConnectionsPerIP: -1, ClientIP: byHeader})
	for range 3 {
		g.dial("/echo", false)
	}
	_, err = g.dialErr("/echo", false, nil)
	assert.True(t, "fourth on the server: 503", err != nil && strings.Contains(err.Error(), "503"))
	assert.True(t, "refusals counted", g.srv.Stats().Refused >= 1)

	p := newEnv(t, &wsroom.Options{MaxConnectionsPerIP: 1, ClientIP: byHeader})
	for _, who := range []string{"a", "b", "c"} {
		_, err := p.dialErr("/echo", false, http.Header{"X-Client": {who}})
		assert.Success(t, err)
	}
	_, err = p.dialErr("/echo", false, http.Header{"X-Client": {"a"}})
	assert.True(t, "ClientIP decides the address", err != nil && strings.Contains(err.Error(), "429"))
}

// recMetrics records what a Server reports.
type recMetrics struct {
	mu      sync.Mutex
	left    []wsroom.LeaveReason
	refused []string
	ops     map[string]int
}

func (m *recMetrics) Left(r wsroom.LeaveReason) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.left = append(m.left, r)
}

func (m *recMetrics) Refused(code string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.refused = append(m.refused, code)
}

func (m *recMetrics) Backend(op string, d time.Duration, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ops[op]++
}

func (m *recMetrics) snapshot() ([]wsroom.LeaveReason, []string, map[string]int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	ops := map[string]int{}
	for k, v := range m.ops {
		ops[k] = v
	}
	return append([]wsroom.LeaveReason(nil), m.left...), append([]string(nil), m.refused...), ops
}

// TestMetrics: departures by reason, refusals, and the store and broker
// calls reach Options.Metrics; Stats counts messages and bytes both ways.
func TestMetrics(t *testing.T) {
	t.Parallel()
	m := &recMetrics{ops: map[string]int{}}
	e := newEnv(t, &wsroom.Options{Metrics: m, RateLimit: 1, RateBurst: 1})
	a, _ := e.join("m", "ann")
	a.say("hello") // over the rate: refused
	a.expect("error")
	a.c.Close(websocket.StatusNormalClosure, "")
	waitFor(t, "ann gone", func() bool { left, _, _ := m.snapshot(); return len(left) == 1 })
	left, refused, ops := m.snapshot()
	assert.Equal(t, "left", []wsroom.LeaveReason{wsroom.ReasonClosed}, left)
	assert.Equal(t, "refused", []string{wsroom.CodeRateLimited}, refused)
	for _, op := range []string{"Reserve", "Members", "Recent", "Release", "Subscribe", "Publish"} {
		assert.True(t, op+" timed", ops[op] > 0)
	}
	st := e.srv.Stats()
	assert.True(t, "bytes in and out", st.BytesIn > 0 && st.BytesOut > 0)
	assert.Equal(t, "left by reason", int64(1), st.Left[wsroom.ReasonClosed])
	events, bytes := e.srv.QueueDepth()
	assert.True(t, "nothing queued", events == 0 && bytes == 0)
	b, _ := e.join("m", "bob")
	sizes := map[string]int{}
	e.srv.RoomSizes(func(room string, n int) bool { sizes[room] = n; return true })
	assert.Equal(t, "room sizes", map[string]int{"m": 1}, sizes)
	b.c.CloseNow()
}
