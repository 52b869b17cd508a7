package wsroom_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// These tests mount a Server the ways an application on the standard
// library does: Server.Handler under a prefix, ServeMux patterns with a
// method and a wildcard, middleware that wraps the ResponseWriter, and a
// hand-rolled router with Options.RoomFromRequest. They use only the
// package's public API; their helpers are prefixed mux.

// TestHandlerPaths serves Server.Handler at the root and under a prefix
// stripped with and without its trailing slash: chat/{room}, chat (the
// default room) and echo answer, anything else is 404.
func TestHandlerPaths(t *testing.T) {
	t.Parallel()
	rooms := muxRooms(t, &wsroom.Options{DefaultRoom: "hall"})
	for i, tc := range []struct {
		name, prefix string
		mount        func(h http.Handler) http.Handler
	}{
		{"root", "", func(h http.Handler) http.Handler { return h }},
		{"StripPrefix(/ws)", "/ws", func(h http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "home") })
			mux.Handle("/ws/", http.StripPrefix("/ws", h))
			return mux
		}},
		{"StripPrefix(/ws/)", "/ws", func(h http.Handler) http.Handler {
			mux := http.NewServeMux()
			mux.Handle("/ws/", http.StripPrefix("/ws/", h))
			return mux
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ts := muxServe(t, tc.mount(rooms.Handler()))
			ctx := muxContext(t)
			base := muxWS(ts) + tc.prefix
			for path, room := range map[string]string{"/chat/kitchen": "kitchen", "/chat": "hall"} {
				c, welcome := muxJoin(ctx, t, base+path, fmt.Sprint("alice", i))
				if welcome.Room != room {
					t.Fatalf("%s: welcome to room %q, want %q", path, welcome.Room, room)
				}
				c.c.Close(websocket.StatusNormalClosure, "")
			}
			muxEcho(ctx, t, base+"/echo")
			for path, want := range map[string]int{
				"/chat/kitchen":   http.StatusUpgradeRequired, // a plain GET reaches the Server
				"/chat/a/b":       http.StatusNotFound,
				"/chat/":          http.StatusNotFound,
				"/other":          http.StatusNotFound,
				"/echo/something": http.StatusNotFound,
			} {
				if got := muxGet(t, ts.URL+tc.prefix+path); got != want {
					t.Errorf("GET %s: %d, want %d", tc.prefix+path, got, want)
				}
			}
			resp, err := http.Post(ts.URL+tc.prefix+"/chat/kitchen", "text/plain", nil)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != http.MethodGet {
				t.Fatalf("POST: %d Allow %q, want 405 Allow GET", resp.StatusCode, resp.Header.Get("Allow"))
			}
		})
	}
}

// TestHandlerRoomsAreSeparate talks in two rooms served by Server.Handler:
// what is said in one never reaches the other.
func TestHandlerRoomsAreSeparate(t *testing.T) {
	t.Parallel()
	rooms := muxRooms(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
	ts := muxServe(t, mux)
	ctx := muxContext(t)
	base := muxWS(ts) + "/ws/chat/"

	alice, _ := muxJoin(ctx, t, base+"a", "alice")
	bob, _ := muxJoin(ctx, t, base+"b", "bob")
	carol, welcome := muxJoin(ctx, t, base+"a", "carol")
	if got := strings.Join(welcome.Members, ","); got != "alice,carol" {
		t.Fatalf("carol's welcome lists %q, want alice,carol", got)
	}
	alice.expect(ctx, t, "join", "carol")
	carol.say(ctx, t, "only for a")
	if e := alice.until(ctx, t, "message"); e.From != "carol" || e.Text != "only for a" {
		t.Fatalf("alice got %+v", e)
	}
	// Had bob been in room a, carol's arrival and message would reach him
	// before his own message, which the broadcast orders after them.
	bob.say(ctx, t, "only for b")
	if e := bob.next(ctx, t); e.Type != "message" || e.From != "bob" {
		t.Fatalf("bob's next event is %+v, want his own message", e)
	}
	carol.c.Close(websocket.StatusNormalClosure, "")
	alice.expect(ctx, t, "leave", "carol")
}

// TestMuxPatterns mounts the Server on ServeMux patterns with a method and
// a wildcard, in a sub-mux under a prefix stripped with http.StripPrefix,
// as an application written for Go 1.22's ServeMux does.
func TestMuxPatterns(t *testing.T) {
	t.Parallel()
	rooms := muxRooms(t, nil)
	api := http.NewServeMux()
	api.Handle("GET /teams/{room}/chat", rooms)
	api.Handle("GET /lobby", rooms) // no wildcard: the default room
	api.Handle("GET /echo", rooms.Echo())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", api))
	ts := muxServe(t, mux)
	ctx := muxContext(t)
	base := muxWS(ts) + "/api/v1"

	alice, w := muxJoin(ctx, t, base+"/teams/red/chat", "alice")
	if w.Room != "red" {
		t.Fatalf("welcome to %q, want red", w.Room)
	}
	bob, _ := muxJoin(ctx, t, base+"/teams/red/chat", "bob")
	alice.expect(ctx, t, "join", "bob")
	bob.say(ctx, t, "hello")
	if e := alice.until(ctx, t, "message"); e.From != "bob" || e.Text != "hello" {
		t.Fatalf("alice got %+v", e)
	}
	if _, w := muxJoin(ctx, t, base+"/lobby", "carol"); w.Room != "lobby" {
		t.Fatalf("welcome to %q, want lobby", w.Room)
	}
	muxEcho(ctx, t, base+"/echo")
	if got := muxGet(t, ts.URL+"/health"); got != http.StatusOK {
		t.Fatalf("/health: %d", got)
	}
	// The method in the pattern is ServeMux's to enforce.
	resp, err := http.Post(ts.URL+"/api/v1/teams/red/chat", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("POST: %d, want 405", resp.StatusCode)
	}
}

// statusLogger is an ordinary logging middleware: it wraps the
// ResponseWriter to record the status, and reports it when the handler
// returns. With unwrap set, its writer has the Unwrap method that
// http.ResponseController (and the Server) follow to the connection.
func statusLogger(unwrap bool, logged chan<- int) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			rec := &statusWriter{ResponseWriter: w}
			var ww http.ResponseWriter = rec
			if unwrap {
				ww = &unwrappingStatusWriter{rec}
			}
			next.ServeHTTP(ww, r)
			logged <- rec.status
		})
	}
}

// statusWriter records the status; it hides every optional interface of
// the writer it wraps, Hijacker included.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

type unwrappingStatusWriter struct{ *statusWriter }

func (w *unwrappingStatusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// TestMuxBehindWrappingMiddleware runs chat and echo behind a logging
// middleware whose ResponseWriter wrapper has Unwrap: the upgrade goes
// through and the middleware logs 101 when the connection ends. Behind a
// wrapper without Unwrap, or http.TimeoutHandler, which cannot hijack, the
// client gets a clean 501 response, never a 101 followed by silence, and
// the Server logs why.
func TestMuxBehindWrappingMiddleware(t *testing.T) {
	t.Parallel()
	t.Run("Unwrap", func(t *testing.T) {
		t.Parallel()
		rooms := muxRooms(t, nil)
		logged := make(chan int, 10)
		mux := http.NewServeMux()
		mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
		ts := muxServe(t, statusLogger(true, logged)(mux))
		ctx := muxContext(t)
		alice, _ := muxJoin(ctx, t, muxWS(ts)+"/ws/chat/r", "alice")
		bob, _ := muxJoin(ctx, t, muxWS(ts)+"/ws/chat/r", "bob")
		alice.expect(ctx, t, "join", "bob")
		bob.say(ctx, t, "through the wrapper")
		if e := alice.until(ctx, t, "message"); e.Text != "through the wrapper" {
			t.Fatalf("alice got %+v", e)
		}
		bob.c.Close(websocket.StatusNormalClosure, "")
		alice.expect(ctx, t, "leave", "bob")
		muxEcho(ctx, t, muxWS(ts)+"/ws/echo")
		for range 2 { // bob's connection and the echo's have ended
			if status := muxLogged(ctx, t, logged); status != http.StatusSwitchingProtocols {
				t.Fatalf("the middleware logged %d, want 101", status)
			}
		}
	})
	t.Run("no Unwrap", func(t *testing.T) {
		t.Parallel()
		logs := &muxLogs{}
		rooms := muxRooms(t, &wsroom.Options{Logger: logs.logger()})
		logged := make(chan int, 10)
		mux := http.NewServeMux()
		mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
		ts := muxServe(t, statusLogger(false, logged)(mux))
		ctx := muxContext(t)
		for _, path := range []string{"/ws/chat/r", "/ws/echo"} {
			c, resp, err := websocket.Dial(ctx, muxWS(ts)+path, nil)
			if err == nil {
				c.CloseNow()
				t.Fatalf("%s: upgraded behind a writer that cannot hijack", path)
			}
			if resp == nil || resp.StatusCode != http.StatusNotImplemented {
				t.Fatalf("%s: %v, response %v; want a 501 response", path, err, resp)
			}
			if status := muxLogged(ctx, t, logged); status != http.StatusNotImplemented {
				t.Fatalf("%s: the middleware logged %d, want 501", path, status)
			}
		}
		if !logs.has(slog.LevelError, "Unwrap") {
			t.Fatalf("no error logged that names the fix (Unwrap); log:\n%s", logs)
		}
	})
	// http.TimeoutHandler buffers the response, so it cannot hijack either:
	// the Server's 501 goes out through it.
	t.Run("TimeoutHandler", func(t *testing.T) {
		t.Parallel()
		rooms := muxRooms(t, &wsroom.Options{Logger: (&muxLogs{}).logger()})
		ts := muxServe(t, http.TimeoutHandler(rooms.Handler(), time.Minute, "timeout"))
		c, resp, err := websocket.Dial(muxContext(t), muxWS(ts)+"/chat/r", nil)
		if err == nil {
			c.CloseNow()
			t.Fatal("upgraded behind http.TimeoutHandler")
		}
		if resp == nil || resp.StatusCode != http.StatusNotImplemented {
			t.Fatalf("%v, response %v; want a 501 response", err, resp)
		}
	})
}

// roomKey is where the hand-rolled router below puts the room.
type roomKey struct{}

// handRolledRouter is a router that sets no path values and no pattern:
// it serves /rooms/NAME/socket and /socket (the default room), and
// passes the room in the request's context.
func handRolledRouter(chat http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/socket" {
			chat.ServeHTTP(w, r)
			return
		}
		rest, ok := strings.CutPrefix(r.URL.Path, "/rooms/")
		name, ok2 := strings.CutSuffix(rest, "/socket")
		if !ok || !ok2 || name == "" || strings.Contains(name, "/") {
			http.NotFound(w, r)
			return
		}
		chat.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), roomKey{}, name)))
	})
}

// TestMuxRoomFromRequest serves rooms under a router that sets no path
// values, with Options.RoomFromRequest naming the room from what the
// router found.
func TestMuxRoomFromRequest(t *testing.T) {
	t.Parallel()
	rooms := muxRooms(t, &wsroom.Options{RoomFromRequest: func(r *http.Request) string {
		name, _ := r.Context().Value(roomKey{}).(string)
		return name
	}})
	ts := muxServe(t, handRolledRouter(rooms))
	ctx := muxContext(t)
	ws := muxWS(ts)

	alice, w := muxJoin(ctx, t, ws+"/rooms/blue/socket", "alice")
	if w.Room != "blue" {
		t.Fatalf("welcome to %q, want blue", w.Room)
	}
	bob, w := muxJoin(ctx, t, ws+"/rooms/green/socket", "bob")
	if w.Room != "green" {
		t.Fatalf("welcome to %q, want green", w.Room)
	}
	if _, w := muxJoin(ctx, t, ws+"/socket", "carol"); w.Room != "lobby" {
		t.Fatalf("an empty RoomFromRequest: welcome to %q, want the default room", w.Room)
	}
	dave, _ := muxJoin(ctx, t, ws+"/rooms/blue/socket", "dave")
	alice.expect(ctx, t, "join", "dave")
	dave.say(ctx, t, "blue only")
	if e := alice.until(ctx, t, "message"); e.Text != "blue only" {
		t.Fatalf("alice got %+v", e)
	}
	bob.say(ctx, t, "green only")
	if e := bob.next(ctx, t); e.Type != "message" || e.From != "bob" {
		t.Fatalf("bob's next event is %+v, want his own message", e)
	}
}

// TestMuxRoomUnknownIsRefused mounts the Server under a router that gives
// no way to tell the room (no {room} path value, no r.Pattern, no
// RoomFromRequest): the request is refused with 500 and an error is
// logged, instead of every client landing in one room. Server.Room under
// the same router serves its fixed room.
func TestMuxRoomUnknownIsRefused(t *testing.T) {
	t.Parallel()
	logs := &muxLogs{}
	rooms := muxRooms(t, &wsroom.Options{Logger: logs.logger()})
	ts := muxServe(t, handRolledRouter(rooms))
	ctx := muxContext(t)
	for _, path := range []string{"/rooms/a/socket", "/socket"} {
		c, resp, err := websocket.Dial(ctx, muxWS(ts)+path, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		if err == nil {
			c.CloseNow()
			t.Fatalf("%s: upgraded although the room cannot be told", path)
		}
		if resp == nil || resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("%s: %v, response %v; want 500", path, err, resp)
		}
	}
	if !logs.has(slog.LevelError, "room") {
		t.Fatalf("no error logged about the room; log:\n%s", logs)
	}

	fixed := muxServe(t, handRolledRouter(rooms.Room("fixed")))
	if _, w := muxJoin(ctx, t, muxWS(fixed)+"/rooms/ignored/socket", "alice"); w.Room != "fixed" {
		t.Fatalf("Server.Room: welcome to %q, want fixed", w.Room)
	}
}

// ---- helpers ----

func muxRooms(t *testing.T, opts *wsroom.Options) *wsroom.Server {
	t.Helper()
	rooms, err := wsroom.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rooms.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rooms
}

// muxServe serves h on loopback until the test ends. Cleanups run last
// first: the clients close, then this server, then the rooms shut down.
func muxServe(t *testing.T, h http.Handler) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts
}

// muxLogged waits for the status a statusLogger logs.
func muxLogged(ctx context.Context, t *testing.T, logged <-chan int) int {
	t.Helper()
	select {
	case status := <-logged:
		return status
	case <-ctx.Done():
		t.Fatal("the middleware logged nothing")
		return 0
	}
}

func muxWS(ts *httptest.Server) string { return "ws" + strings.TrimPrefix(ts.URL, "http") }

func muxContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func muxGet(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// muxEvent is what the tests read of a server event.
type muxEvent struct {
	Type    string   `json:"type"`
	Room    string   `json:"room"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
	From    string   `json:"from"`
	Text    string   `json:"text"`
}

// muxClient is a client of the JSON protocol; a frame may hold several
// events, one per line.
type muxClient struct {
	c       *websocket.Conn
	pending []muxEvent
}

func muxJoin(ctx context.Context, t *testing.T, url, name string) (*muxClient, muxEvent) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	mc := &muxClient{c: c}
	if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","name":%q}`, name)); err != nil {
		t.Fatal(err)
	}
	w := mc.next(ctx, t)
	if w.Type != "welcome" || w.Name != name {
		t.Fatalf("%s: got %+v, want a welcome", name, w)
	}
	return mc, w
}

func (mc *muxClient) say(ctx context.Context, t *testing.T, text string) {
	t.Helper()
	if err := mc.c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"message","text":%q}`, text)); err != nil {
		t.Fatal(err)
	}
}

func (mc *muxClient) next(ctx context.Context, t *testing.T) muxEvent {
	t.Helper()
	for len(mc.pending) == 0 {
		_, b, err := mc.c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			var e muxEvent
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("event %q: %v", line, err)
			}
			mc.pending = append(mc.pending, e)
		}
	}
	e := mc.pending[0]
	mc.pending = mc.pending[1:]
	return e
}

// until skips events until one of type typ.
func (mc *muxClient) until(ctx context.Context, t *testing.T, typ string) muxEvent {
	t.Helper()
	for {
		if e := mc.next(ctx, t); e.Type == typ {
			return e
		}
	}
}

// expect reads the next event and fails unless it is typ about name.
func (mc *muxClient) expect(ctx context.Context, t *testing.T, typ, name string) {
	t.Helper()
	if e := mc.next(ctx, t); e.Type != typ || e.Name != name {
		t.Fatalf("got %+v, want %s of %s", e, typ, name)
	}
}

// muxEcho checks that the echo endpoint at url returns text and binary
// messages with their type.
func muxEcho(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer c.CloseNow()
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{{websocket.MessageText, []byte("ping")}, {websocket.MessageBinary, []byte{0, 1, 2, 0xff}}} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, b, err := c.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(b, m.data) {
			t.Fatalf("echo of %v %q: %v %q %v", m.typ, m.data, typ, b, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// muxLogs collects a Server's log records.
type muxLogs struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *muxLogs) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *muxLogs) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// has reports whether a record of the level mentions sub.
func (l *muxLogs) has(level slog.Level, sub string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for line := range strings.SplitSeq(l.buf.String(), "\n") {
		if strings.Contains(line, "level="+level.String()) && strings.Contains(line, sub) {
			return true
		}
	}
	return false
}

func (l *muxLogs) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
