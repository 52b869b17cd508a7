package wsroomprom_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	wsroomprom "wsroom.dev/adapters/prometheus"
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testTimeout bounds every wait of a test.
const testTimeout = 20 * time.Second

// env is a wsroom Server exporting to a Prometheus registry.
type env struct {
	t   *testing.T
	ctx context.Context
	srv *wsroom.Server
	exp *wsroomprom.Exporter
	reg *prometheus.Registry
	ws  string // ws://host
	url string // http://host
}

func newEnv(t *testing.T, opts *wsroom.Options, eo *wsroomprom.Options) *env {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	exp := wsroomprom.New(eo)
	o := *opts
	o.Metrics = exp
	o.Logger = slog.New(slog.DiscardHandler)
	srv, err := wsroom.New(&o)
	if err != nil {
		t.Fatal(err)
	}
	exp.Watch(srv)
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(exp)
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", srv)
	mux.Handle("/echo", srv.Echo())
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	return &env{t: t, ctx: ctx, srv: srv, exp: exp, reg: reg, ws: "ws" + strings.TrimPrefix(ts.URL, "http"), url: ts.URL}
}

// client is a JSON chat client.
type client struct {
	t *testing.T
	c *websocket.Conn
}

// join dials the room and joins it as name, reading up to the welcome.
func (e *env) join(room, name string) *client {
	e.t.Helper()
	c, _, err := websocket.Dial(e.ctx, e.ws+"/chat/"+room, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	cl := &client{t: e.t, c: c}
	cl.send(e.ctx, map[string]any{"type": "join", "name": name})
	cl.expect(e.ctx, "welcome")
	return cl
}

func (c *client) send(ctx context.Context, v any) {
	c.t.Helper()
	b, _ := json.Marshal(v)
	if err := c.c.Write(ctx, websocket.MessageText, b); err != nil {
		c.t.Fatal(err)
	}
}

// expect reads until an event of type typ, and returns it.
func (c *client) expect(ctx context.Context, typ string) map[string]any {
	c.t.Helper()
	return c.expectOne(ctx, typ)
}

// expectOne reads events until one of one of the types arrives.
func (c *client) expectOne(ctx context.Context, types ...string) map[string]any {
	c.t.Helper()
	typ := strings.Join(types, " or ")
	for {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			c.t.Fatalf("waiting for %s: %v", typ, err)
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			var ev map[string]any
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				c.t.Fatalf("bad event %q: %v", line, err)
			}
			if t, _ := ev["type"].(string); slices.Contains(types, t) {
				return ev
			}
		}
	}
}

// metrics gathers the registry: each series by name and labels
// ("wsroom_refusals_total{code=429}"), with the value of a counter or gauge,
// or the count of a histogram.
func (e *env) metrics() map[string]float64 {
	e.t.Helper()
	return gather(e.t, e.reg)
}

func gather(t *testing.T, g prometheus.Gatherer) map[string]float64 {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			out[seriesName(mf.GetName(), m)] = value(m)
		}
	}
	return out
}

func seriesName(name string, m *dto.Metric) string {
	var labels []string
	for _, l := range m.GetLabel() {
		labels = append(labels, l.GetName()+"="+l.GetValue())
	}
	if len(labels) == 0 {
		return name
	}
	return name + "{" + strings.Join(labels, ",") + "}"
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return -1
}

// waitFor polls cond until it holds or the test's time is up.
func (e *env) waitFor(what string, cond func() bool) {
	e.t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-e.ctx.Done():
			e.t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}
