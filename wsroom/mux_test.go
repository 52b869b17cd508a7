package wsroom_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/wstest"
	"wsroom.dev/wsroom"
)

// These tests mount a Server the ways an application on the standard
// library does: Server.Handler under a prefix, ServeMux patterns with a
// method and a wildcard, middleware that wraps the ResponseWriter, and a
// hand-rolled router with Options.RoomFromRequest. They use only the
// package's public API, through the client of internal/wstest; their own
// helpers are prefixed mux.

// TestHandlerPaths serves Server.Handler at the root and under a prefix
// stripped with and without its trailing slash: chat/{room}, chat (the
// default room) and echo answer, anything else is 404.
func TestHandlerPaths(t *testing.T) {
	t.Parallel()
	rooms := wstest.New(t, &wsroom.Options{DefaultRoom: "hall"})
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
			ctx := wstest.Context(t)
			base := muxWS(ts) + tc.prefix
			for path, room := range map[string]string{"/chat/kitchen": "kitchen", "/chat": "hall"} {
				c, welcome := wstest.Join(ctx, t, base+path, fmt.Sprint("alice", i))
				if welcome.Room != room {
					t.Fatalf("%s: welcome to room %q, want %q", path, welcome.Room, room)
				}
				c.Close()
			}
			wstest.Echo(ctx, t, base+"/echo", nil)
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
	rooms := wstest.New(t, nil)
	mux := http.NewServeMux()
	mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
	ts := muxServe(t, mux)
	ctx := wstest.Context(t)
	base := muxWS(ts) + "/ws/chat/"

	alice, _ := wstest.Join(ctx, t, base+"a", "alice")
	bob, _ := wstest.Join(ctx, t, base+"b", "bob")
	carol, welcome := wstest.Join(ctx, t, base+"a", "carol")
	if got := strings.Join(welcome.Members, ","); got != "alice,carol" {
		t.Fatalf("carol's welcome lists %q, want alice,carol", got)
	}
	alice.Expect(ctx, t, "join", "carol")
	carol.Say(ctx, t, "only for a")
	if e := alice.Until(ctx, t, "message"); e.From != "carol" || e.Text != "only for a" {
		t.Fatalf("alice got %+v", e)
	}
	// Had bob been in room a, carol's arrival and message would reach him
	// before his own message, which the broadcast orders after them.
	bob.Say(ctx, t, "only for b")
	if e := bob.Next(ctx, t); e.Type != "message" || e.From != "bob" {
		t.Fatalf("bob's next event is %+v, want his own message", e)
	}
	carol.Close()
	alice.Expect(ctx, t, "leave", "carol")
}

// TestMuxPatterns mounts the Server on ServeMux patterns with a method and
// a wildcard, in a sub-mux under a prefix stripped with http.StripPrefix,
// as an application written for Go 1.22's ServeMux does.
func TestMuxPatterns(t *testing.T) {
	t.Parallel()
	rooms := wstest.New(t, nil)
	api := http.NewServeMux()
	api.Handle("GET /teams/{room}/chat", rooms)
	api.Handle("GET /lobby", rooms) // no wildcard: the default room
	api.Handle("GET /echo", rooms.Echo())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	mux.Handle("/api/v1/", http.StripPrefix("/api/v1", api))
	ts := muxServe(t, mux)
	ctx := wstest.Context(t)
	base := muxWS(ts) + "/api/v1"

	alice, w := wstest.Join(ctx, t, base+"/teams/red/chat", "alice")
	if w.Room != "red" {
		t.Fatalf("welcome to %q, want red", w.Room)
	}
	bob, _ := wstest.Join(ctx, t, base+"/teams/red/chat", "bob")
	alice.Expect(ctx, t, "join", "bob")
	bob.Say(ctx, t, "hello")
	if e := alice.Until(ctx, t, "message"); e.From != "bob" || e.Text != "hello" {
		t.Fatalf("alice got %+v", e)
	}
	if _, w := wstest.Join(ctx, t, base+"/lobby", "carol"); w.Room != "lobby" {
		t.Fatalf("welcome to %q, want lobby", w.Room)
	}
	wstest.Echo(ctx, t, base+"/echo", nil)
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
		rooms := wstest.New(t, nil)
		logged := make(chan int, 10)
		mux := http.NewServeMux()
		mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
		ts := muxServe(t, statusLogger(true, logged)(mux))
		ctx := wstest.Context(t)
		alice, _ := wstest.Join(ctx, t, muxWS(ts)+"/ws/chat/r", "alice")
		bob, _ := wstest.Join(ctx, t, muxWS(ts)+"/ws/chat/r", "bob")
		alice.Expect(ctx, t, "join", "bob")
		bob.Say(ctx, t, "through the wrapper")
		if e := alice.Until(ctx, t, "message"); e.Text != "through the wrapper" {
			t.Fatalf("alice got %+v", e)
		}
		bob.Close()
		alice.Expect(ctx, t, "leave", "bob")
		wstest.Echo(ctx, t, muxWS(ts)+"/ws/echo", nil)
		for range 2 { // bob's connection and the echo's have ended
			if status := muxLogged(ctx, t, logged); status != http.StatusSwitchingProtocols {
				t.Fatalf("the middleware logged %d, want 101", status)
			}
		}
	})
	t.Run("no Unwrap", func(t *testing.T) {
		t.Parallel()
		logs := &muxLogs{}
		rooms := wstest.New(t, &wsroom.Options{Logger: logs.logger()})
		logged := make(chan int, 10)
		mux := http.NewServeMux()
		mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
		ts := muxServe(t, statusLogger(false, logged)(mux))
		ctx := wstest.Context(t)
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
		rooms := wstest.New(t, &wsroom.Options{Logger: (&muxLogs{}).logger()})
		ts := muxServe(t, http.TimeoutHandler(rooms.Handler(), time.Minute, "timeout"))
		c, resp, err := websocket.Dial(wstest.Context(t), muxWS(ts)+"/chat/r", nil)
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
	rooms := wstest.New(t, &wsroom.Options{RoomFromRequest: func(r *http.Request) string {
		name, _ := r.Context().Value(roomKey{}).(string)
		return name
	}})
	ts := muxServe(t, handRolledRouter(rooms))
	ctx := wstest.Context(t)
	ws := muxWS(ts)

	alice, w := wstest.Join(ctx, t, ws+"/rooms/blue/socket", "alice")
	if w.Room != "blue" {
		t.Fatalf("welcome to %q, want blue", w.Room)
	}
	bob, w := wstest.Join(ctx, t, ws+"/rooms/green/socket", "bob")
	if w.Room != "green" {
		t.Fatalf("welcome to %q, want green", w.Room)
	}
	if _, w := wstest.Join(ctx, t, ws+"/socket", "carol"); w.Room != "lobby" {
		t.Fatalf("an empty RoomFromRequest: welcome to %q, want the default room", w.Room)
	}
	dave, _ := wstest.Join(ctx, t, ws+"/rooms/blue/socket", "dave")
	alice.Expect(ctx, t, "join", "dave")
	dave.Say(ctx, t, "blue only")
	if e := alice.Until(ctx, t, "message"); e.Text != "blue only" {
		t.Fatalf("alice got %+v", e)
	}
	bob.Say(ctx, t, "green only")
	if e := bob.Next(ctx, t); e.Type != "message" || e.From != "bob" {
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
	rooms := wstest.New(t, &wsroom.Options{Logger: logs.logger()})
	ts := muxServe(t, handRolledRouter(rooms))
	ctx := wstest.Context(t)
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
	if _, w := wstest.Join(ctx, t, muxWS(fixed)+"/rooms/ignored/socket", "alice"); w.Room != "fixed" {
		t.Fatalf("Server.Room: welcome to %q, want fixed", w.Room)
	}
}

// ---- helpers ----

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

func muxGet(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
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
