package faults_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// quiet is the logger of servers whose tests provoke errors on purpose.
var quiet = slog.New(slog.DiscardHandler)

// testContext bounds a test: every wait in it ends with d.
func testContext(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// env is an in-process wsroom Server on a loopback httptest.Server.
type env struct {
	t   testing.TB
	srv *wsroom.Server
	ts  *httptest.Server
	ws  string // ws://127.0.0.1:port
}

// newEnv starts a Server with opts on /chat/{room} and /echo, and shuts it
// down at the end of the test.
func newEnv(t testing.TB, opts wsroom.Options) *env {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv, err := wsroom.New(&opts)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", srv)
	mux.Handle("/echo", srv.Echo())
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	return &env{t: t, srv: srv, ts: ts, ws: "ws" + strings.TrimPrefix(ts.URL, "http")}
}

// addr is the server's host:port.
func (e *env) addr() string { return strings.TrimPrefix(e.ts.URL, "http://") }

// waitFor polls cond every few milliseconds until it holds or ctx ends.
func waitFor(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s", what)
		case <-tick.C:
		}
	}
}

// event is one server event of the JSON protocol.
type event struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Room    string   `json:"room"`
	ID      string   `json:"id"`
	From    string   `json:"from"`
	Text    string   `json:"text"`
	Code    string   `json:"code"`
	Joined  []string `json:"joined"`
	Left    []string `json:"left"`
	Gap     bool     `json:"gap"`
	History []event  `json:"history"`
	at      time.Time
}

func (e event) id() uint64 {
	n, _ := strconv.ParseUint(e.ID, 10, 64)
	return n
}

// member is a JSON chat client whose events arrive on a channel, read by
// a goroutine of its own (which also answers the server's pings).
type member struct {
	name    string
	welcome event // what joining brought
	c       *websocket.Conn
	events  chan event
	done    chan struct{} // closed when reading stopped
	err     error         // why, once done is closed
	gone    chan struct{} // closed by close: nobody reads events any more
	once    sync.Once
}

// close drops the connection and lets its reader go, whatever is left
// unread.
func (m *member) close() {
	m.once.Do(func() { close(m.gone) })
	m.c.CloseNow()
}

// dialMember connects to url with the wsroom.v1 subprotocol.
func dialMember(ctx context.Context, url string, opts *websocket.DialOptions) (*member, error) {
	if opts == nil {
		opts = &websocket.DialOptions{}
	}
	opts.Subprotocols = []string{wsroom.Subprotocol}
	c, _, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		return nil, err
	}
	c.SetReadLimit(-1)
	m := &member{c: c, events: make(chan event, 256), done: make(chan struct{}), gone: make(chan struct{})}
	go m.read()
	return m, nil
}

func (m *member) read() {
	defer close(m.done)
	defer close(m.events)
	for {
		_, b, err := m.c.Read(context.Background())
		if err != nil {
			m.err = err
			return
		}
		now := time.Now()
		for line := range strings.SplitSeq(string(b), "\n") {
			var ev event
			if err := json.Unmarshal([]byte(line), &ev); err != nil {
				m.err = fmt.Errorf("bad event %q: %w", line, err)
				m.close()
				return
			}
			ev.at = now
			select {
			case m.events <- ev:
			case <-m.gone:
				return
			}
		}
	}
}

// join dials room on the env's server as name and waits for the welcome.
func (e *env) join(ctx context.Context, room, name string) *member {
	e.t.Helper()
	m, err := joinURL(ctx, e.ws+"/chat/"+room, name, "")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { m.close() })
	return m
}

// joinURL dials url and joins as name (resuming after since, if set),
// returning once the welcome arrived; it is the member's first event.
func joinURL(ctx context.Context, url, name, since string) (*member, error) {
	m, err := dialMember(ctx, url, nil)
	if err != nil {
		return nil, err
	}
	m.name = name
	join := map[string]string{"type": "join", "name": name}
	if since != "" {
		join["since"] = since
	}
	if err := m.send(ctx, join); err != nil {
		m.close()
		return nil, err
	}
	ev, err := m.next(ctx, "welcome", "error")
	if err != nil || ev.Type != "welcome" {
		m.close()
		return nil, fmt.Errorf("join %s: %v %+v", name, err, ev)
	}
	m.welcome = ev
	return m, nil
}

func (m *member) send(ctx context.Context, v any) error {
	b, _ := json.Marshal(v)
	return m.c.Write(ctx, websocket.MessageText, b)
}

func (m *member) say(ctx context.Context, text string) error {
	return m.send(ctx, map[string]string{"type": "message", "text": text})
}

// errClosed is next's error when the connection ended first.
var errClosed = errors.New("connection ended")

// next returns the next event of one of the types, skipping others.
func (m *member) next(ctx context.Context, types ...string) (event, error) {
	for {
		select {
		case ev, ok := <-m.events:
			if !ok {
				return event{}, fmt.Errorf("%w: %v", errClosed, m.err)
			}
			for _, t := range types {
				if ev.Type == t {
					return ev, nil
				}
			}
		case <-ctx.Done():
			return event{}, ctx.Err()
		}
	}
}

// closeStatus waits for the connection to end and returns its close code
// (-1: no close frame).
func (m *member) closeStatus(ctx context.Context) (websocket.StatusCode, error) {
	for {
		select {
		case _, ok := <-m.events:
			if !ok {
				return websocket.CloseStatus(m.err), nil
			}
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}
