package wsroomchi_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	wsroomchi "wsroom.dev/adapters/chi"
	"wsroom.dev/wsroom"
)

// TestRoutes mounts Routes in an application with chi's usual middleware
// and an auth middleware: members named by the auth middleware join at
// once, talk, and leave; rooms are apart; /chat is the default room; echo
// keeps the message type; chi's Logger logs the 101 when a connection
// ends; and the request the hooks see went through RequestID and
// ClientIPFromHeader.
func TestRoutes(t *testing.T) {
	t.Parallel()
	var (
		mu  sync.Mutex
		ids = map[string]string{} // user -> request ID seen by Identify
		ips = map[string]string{} // user -> client IP seen by Identify
	)
	rooms := newRooms(t, &wsroom.Options{Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			reply, err := identify(ctx, e)
			mu.Lock()
			ids[reply.Name] = middleware.GetReqID(e.Request.Context())
			ips[reply.Name] = middleware.GetClientIP(e.Request.Context())
			mu.Unlock()
			return reply, err
		},
	}})
	logged := make(lines, 100)
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.ClientIPFromHeader("X-Real-IP", "127.0.0.0/8"),
		middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(logged, "", 0), NoColor: true}),
		middleware.Recoverer)
	r.Get("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	r.With(auth).Mount("/ws", wsroomchi.Routes(rooms))
	base, ws := serve(t, r)
	ctx := testContext(t)

	chat(ctx, t, ws+"/ws/chat/kitchen")
	logged.waitLine(ctx, t, "/ws/chat/kitchen", " - 101 ")
	echo(ctx, t, ws+"/ws/echo", http.Header{"X-User": {"eve"}})

	// Rooms are apart; /ws/chat is the default room.
	alice, w := dialAs(ctx, t, ws+"/ws/chat/a", "alice")
	if w.Room != "a" {
		t.Fatalf("welcome to %q, want a", w.Room)
	}
	bob, _ := dialAs(ctx, t, ws+"/ws/chat/b", "bob")
	if _, w := dialAs(ctx, t, ws+"/ws/chat", "carol"); w.Room != "lobby" {
		t.Fatalf("/ws/chat: welcome to %q, want lobby", w.Room)
	}
	dave, _ := dialAs(ctx, t, ws+"/ws/chat/a", "dave")
	alice.expect(ctx, t, "join", "dave")
	dave.say(ctx, t, "for a")
	alice.expect(ctx, t, "message", "dave")
	// Had bob been in room a, dave's arrival and message would come first.
	bob.say(ctx, t, "for b")
	bob.expect(ctx, t, "message", "bob")

	// The hooks saw the request as the middleware left it.
	dialAs(ctx, t, ws+"/ws/chat/x", "frank")
	h := http.Header{"X-User": {"grace"}, "X-Real-Ip": {"127.0.0.9"}}
	g, _ := dial(ctx, t, ws+"/ws/chat/x", h)
	g.expect(ctx, t, "welcome", "grace")
	mu.Lock()
	if ids["frank"] == "" || ids["grace"] == "" || ids["frank"] == ids["grace"] {
		t.Errorf("request IDs seen by Identify: %q", ids)
	}
	if ips["grace"] != "127.0.0.9" {
		t.Errorf("ClientIPFromHeader: Identify saw client IP %q, want 127.0.0.9", ips["grace"])
	}
	mu.Unlock()

	// Without a user, the auth middleware refuses; other routes are the
	// application's.
	for _, tc := range []struct {
		path, user string
		want       int
	}{
		{"/health", "", http.StatusOK},
		{"/ws/chat/a", "", http.StatusUnauthorized},
		{"/ws/chat/a", "alice", http.StatusUpgradeRequired},
		{"/ws/nothing", "alice", http.StatusNotFound},
	} {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+tc.path, nil)
		if tc.user != "" {
			req.Header.Set("X-User", tc.user)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s as %q: %d, want %d", tc.path, tc.user, resp.StatusCode, tc.want)
		}
	}
}

// TestChat serves the chat endpoint on the application's own routes, the
// room in a URL parameter of another name.
func TestChat(t *testing.T) {
	t.Parallel()
	rooms := newRooms(t, &wsroom.Options{DefaultRoom: "hall"})
	r := chi.NewRouter()
	r.Route("/teams/{team}", func(r chi.Router) {
		r.Use(auth)
		r.Get("/chat", wsroomchi.Chat(rooms, "team"))
	})
	r.With(auth).Get("/hall", wsroomchi.Chat(rooms, "team"))
	_, ws := serve(t, r)
	ctx := testContext(t)

	chat(ctx, t, ws+"/teams/red/chat")
	red, w := dialAs(ctx, t, ws+"/teams/red/chat", "ann")
	if w.Room != "red" {
		t.Fatalf("welcome to %q, want red", w.Room)
	}
	blue, w := dialAs(ctx, t, ws+"/teams/blue/chat", "bob")
	if w.Room != "blue" {
		t.Fatalf("welcome to %q, want blue", w.Room)
	}
	red.say(ctx, t, "red")
	if e := red.until(ctx, t, "message"); e.From != "ann" {
		t.Fatalf("ann got %+v", e)
	}
	blue.say(ctx, t, "blue")
	blue.expect(ctx, t, "message", "bob")
	if _, w := dialAs(ctx, t, ws+"/hall", "carol"); w.Room != "hall" {
		t.Fatalf("a route without the parameter: welcome to %q, want the default room", w.Room)
	}
}

// TestChatOutsideChi shows that Chat, served without chi's routing, is
// refused loudly (500) rather than putting everyone in the default room.
func TestChatOutsideChi(t *testing.T) {
	t.Parallel()
	logged := make(lines, 100)
	rooms := newRooms(t, &wsroom.Options{Logger: slog.New(slog.NewTextHandler(logged, nil))})
	_, ws := serve(t, auth(wsroomchi.Chat(rooms, "room")))
	ctx := testContext(t)
	_, resp, err := websocket.Dial(ctx, ws+"/chat/a", &websocket.DialOptions{HTTPHeader: http.Header{"X-User": {"alice"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("outside chi: %v %v, want 500", resp, err)
	}
	logged.waitLine(ctx, t, "level=ERROR", "room")
}

// TestMiddleware runs chat and echo behind each of chi's middleware that
// an application commonly puts in front of every route: each leaves the
// upgraded connection alone.
func TestMiddleware(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		mw   func(http.Handler) http.Handler
	}{
		{"Logger", middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(discard{}, "", 0), NoColor: true})},
		{"Recoverer", middleware.Recoverer},
		{"RequestID", middleware.RequestID},
		//lint:ignore SA1019 deprecated (spoofable) but still in wide use: it must not break the upgrade
		{"RealIP", middleware.RealIP},
		{"ClientIPFromXFF", middleware.ClientIPFromXFF("127.0.0.0/8")},
		{"Heartbeat", middleware.Heartbeat("/ping")},
		{"Throttle", middleware.Throttle(100)},
		{"Timeout", middleware.Timeout(time.Minute)},
		{"Compress", middleware.Compress(5)},
		{"Compress(all)", middleware.Compress(5, "text/*", "application/*")},
		{"NoCache", middleware.NoCache},
		{"CleanPath", middleware.CleanPath},
		{"StripSlashes", middleware.StripSlashes},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rooms := newRooms(t, nil)
			r := chi.NewRouter()
			r.Use(tc.mw)
			r.With(auth).Mount("/ws", wsroomchi.Routes(rooms))
			_, ws := serve(t, r)
			ctx := testContext(t)
			chat(ctx, t, ws+"/ws/chat/r")
			// A browser offers gzip; a 101 must not claim an encoding.
			h := http.Header{"X-User": {"zoe"}, "Accept-Encoding": {"gzip, deflate"}}
			c, resp := dial(ctx, t, ws+"/ws/chat/r", h)
			if enc := resp.Header.Get("Content-Encoding"); enc != "" {
				t.Fatalf("the 101 response has Content-Encoding %q", enc)
			}
			c.expect(ctx, t, "welcome", "zoe")
			c.say(ctx, t, strings.Repeat("compressible ", 100))
			// (alice's departure, if still under way, may come first)
			if e := c.until(ctx, t, "message"); e.From != "zoe" || len(e.Text) != 1300 {
				t.Fatalf("a long message came back as %+v", e)
			}
			echo(ctx, t, ws+"/ws/echo", h)
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }

// TestTimeout mounts the endpoints behind chi's Timeout: the timeout
// bounds the handshake, not the connection, which goes on after the
// request's context is done. When such a connection ends, Timeout's 504
// reaches no client; net/http logs it unless Logger is outside Timeout.
func TestTimeout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name          string
		loggerOutside bool
	}{{"Logger outside", true}, {"Timeout outside", false}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rooms := newRooms(t, nil)
			reqs := make(chan context.Context, 10)
			logged, httpLog := make(lines, 100), make(lines, 100)
			logger := middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(logged, "", 0), NoColor: true})
			r := chi.NewRouter()
			if tc.loggerOutside {
				r.Use(logger, middleware.Timeout(2*time.Second))
			} else {
				r.Use(middleware.Timeout(2*time.Second), logger)
			}
			r.Use(func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					reqs <- r.Context()
					next.ServeHTTP(w, r)
				})
			})
			r.With(auth).Mount("/ws", wsroomchi.Routes(rooms))
			ts := httptest.NewUnstartedServer(r)
			ts.Config.ErrorLog = log.New(httpLog, "", 0)
			ts.Start()
			t.Cleanup(ts.Close)
			ws := "ws" + strings.TrimPrefix(ts.URL, "http")
			ctx := testContext(t)

			alice, _ := dialAs(ctx, t, ws+"/ws/chat/r", "alice")
			bob, _ := dialAs(ctx, t, ws+"/ws/chat/r", "bob")
			alice.expect(ctx, t, "join", "bob")
			e, _, err := websocket.Dial(ctx, ws+"/ws/echo", &websocket.DialOptions{HTTPHeader: http.Header{"X-User": {"eve"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer e.CloseNow()
			for range 3 {
				select {
				case rc := <-reqs:
					select {
					case <-rc.Done(): // the request's deadline has passed
					case <-ctx.Done():
						t.Fatal("the request's context is not done after the timeout")
					}
				case <-ctx.Done():
					t.Fatal("no request")
				}
			}
			bob.say(ctx, t, "after the timeout")
			if ev := alice.expect(ctx, t, "message", "bob"); ev.Text != "after the timeout" {
				t.Fatalf("alice got %+v", ev)
			}
			alice.say(ctx, t, "still here")
			bob.expect(ctx, t, "message", "bob")
			bob.expect(ctx, t, "message", "alice")
			if err := e.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, b, err := e.Read(ctx); err != nil || string(b) != "ping" {
				t.Fatalf("echo after the timeout: %q %v", b, err)
			}
			bob.c.Close(websocket.StatusNormalClosure, "")
			alice.expect(ctx, t, "message", "alice")
			alice.expect(ctx, t, "leave", "bob")
			// A member who joins now is welcome in the room.
			carol, w := dialAs(ctx, t, ws+"/ws/chat/r", "carol")
			if got := strings.Join(w.Members, ","); got != "alice,carol" {
				t.Fatalf("carol's welcome lists %q", got)
			}
			alice.expect(ctx, t, "join", "carol")
			carol.c.Close(websocket.StatusNormalClosure, "")

			// Bob's connection has ended: Logger logged it (after Timeout's
			// 504, when Logger is outside).
			logged.waitLine(ctx, t, "/ws/chat/r", " - 101 ")
			if tc.loggerOutside {
				select {
				case line := <-httpLog:
					t.Fatalf("net/http logged %q", line)
				default:
				}
			} else {
				httpLog.waitLine(ctx, t, "response.WriteHeader on hijacked connection")
			}
		})
	}
}

// TestThrottle shows what the package documentation warns of: chi's
// Throttle counts an open WebSocket as a request in flight for its whole
// life, so the WebSocket routes need a Throttle of their own.
func TestThrottle(t *testing.T) {
	t.Parallel()
	rooms := newRooms(t, nil)
	r := chi.NewRouter()
	r.Use(middleware.Throttle(1))
	r.Get("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	r.With(auth).Mount("/ws", wsroomchi.Routes(rooms))
	base, ws := serve(t, r)
	ctx := testContext(t)
	get := func() int {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := get(); got != http.StatusOK {
		t.Fatalf("/health: %d", got)
	}
	dialAs(ctx, t, ws+"/ws/chat/r", "alice")
	if got := get(); got != http.StatusTooManyRequests {
		t.Fatalf("/health while a WebSocket is open under Throttle(1): %d, want 429", got)
	}
}

// TestMisuse: a missing Server or parameter name is a programmer's error,
// found when the routes are built.
func TestMisuse(t *testing.T) {
	t.Parallel()
	rooms := newRooms(t, nil)
	for name, f := range map[string]func(){
		"Routes(nil)":   func() { wsroomchi.Routes(nil) },
		"Chat(nil, id)": func() { wsroomchi.Chat(nil, "id") },
		"Chat(rooms, )": func() { wsroomchi.Chat(rooms, "") },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s did not panic", name)
				}
			}()
			f()
		}()
	}
}
