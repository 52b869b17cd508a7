package wsroomchi_test

import (
	"context"
	"fmt"
	"io"
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
	"wsroom.dev/internal/wstest"
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
	logged := make(wstest.Lines, 100)
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.ClientIPFromHeader("X-Real-IP", "127.0.0.0/8"),
		middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(logged, "", 0), NoColor: true}),
		middleware.Recoverer)
	r.Get("/health", func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, "ok") })
	r.With(auth).Mount("/ws", wsroomchi.Routes(rooms))
	base, ws := wstest.Serve(t, r)
	ctx := wstest.Context(t)

	wstest.Chat(ctx, t, ws+"/ws/chat/kitchen")
	logged.Wait(ctx, t, "/ws/chat/kitchen", " - 101 ")
	wstest.Echo(ctx, t, ws+"/ws/echo", wstest.User("eve"))

	// Rooms are apart; /ws/chat is the default room.
	wstest.Apart(ctx, t, ws+"/ws/chat", "lobby")

	// The hooks saw the request as the middleware left it.
	wstest.DialAs(ctx, t, ws+"/ws/chat/x", "frank")
	h := http.Header{"X-User": {"grace"}, "X-Real-Ip": {"127.0.0.9"}}
	g, _ := wstest.Dial(ctx, t, ws+"/ws/chat/x", h)
	g.Expect(ctx, t, "welcome", "grace")
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
	wstest.Routes(ctx, t, base)
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
	_, ws := wstest.Serve(t, r)
	ctx := wstest.Context(t)

	wstest.Chat(ctx, t, ws+"/teams/red/chat")
	red, w := wstest.DialAs(ctx, t, ws+"/teams/red/chat", "ann")
	if w.Room != "red" {
		t.Fatalf("welcome to %q, want red", w.Room)
	}
	blue, w := wstest.DialAs(ctx, t, ws+"/teams/blue/chat", "bob")
	if w.Room != "blue" {
		t.Fatalf("welcome to %q, want blue", w.Room)
	}
	red.Say(ctx, t, "red")
	if e := red.Until(ctx, t, "message"); e.From != "ann" {
		t.Fatalf("ann got %+v", e)
	}
	blue.Say(ctx, t, "blue")
	blue.Expect(ctx, t, "message", "bob")
	if _, w := wstest.DialAs(ctx, t, ws+"/hall", "carol"); w.Room != "hall" {
		t.Fatalf("a route without the parameter: welcome to %q, want the default room", w.Room)
	}
}

// TestChatOutsideChi shows that Chat, served without chi's routing, is
// refused loudly (500) rather than putting everyone in the default room.
func TestChatOutsideChi(t *testing.T) {
	t.Parallel()
	logged := make(wstest.Lines, 100)
	rooms := newRooms(t, &wsroom.Options{Logger: slog.New(slog.NewTextHandler(logged, nil))})
	_, ws := wstest.Serve(t, auth(wsroomchi.Chat(rooms, "room")))
	ctx := wstest.Context(t)
	_, resp, err := websocket.Dial(ctx, ws+"/chat/a", &websocket.DialOptions{HTTPHeader: wstest.User("alice")})
	if err == nil || resp == nil || resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("outside chi: %v %v, want 500", resp, err)
	}
	logged.Wait(ctx, t, "level=ERROR", "room")
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
		{"Logger", middleware.RequestLogger(&middleware.DefaultLogFormatter{Logger: log.New(io.Discard, "", 0), NoColor: true})},
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
			_, ws := wstest.Serve(t, r)
			ctx := wstest.Context(t)
			wstest.Chat(ctx, t, ws+"/ws/chat/r")
			// A browser offers gzip; a 101 must not claim an encoding.
			h := http.Header{"X-User": {"zoe"}, "Accept-Encoding": {"gzip, deflate"}}
			c, resp := wstest.Dial(ctx, t, ws+"/ws/chat/r", h)
			if enc := resp.Header.Get("Content-Encoding"); enc != "" {
				t.Fatalf("the 101 response has Content-Encoding %q", enc)
			}
			c.Expect(ctx, t, "welcome", "zoe")
			c.Say(ctx, t, strings.Repeat("compressible ", 100))
			// (alice's departure, if still under way, may come first)
			if e := c.Until(ctx, t, "message"); e.From != "zoe" || len(e.Text) != 1300 {
				t.Fatalf("a long message came back as %+v", e)
			}
			wstest.Echo(ctx, t, ws+"/ws/echo", h)
		})
	}
}

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
			logged, httpLog := make(wstest.Lines, 100), make(wstest.Lines, 100)
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
			ctx := wstest.Context(t)

			alice, _ := wstest.DialAs(ctx, t, ws+"/ws/chat/r", "alice")
			bob, _ := wstest.DialAs(ctx, t, ws+"/ws/chat/r", "bob")
			alice.Expect(ctx, t, "join", "bob")
			e, _, err := websocket.Dial(ctx, ws+"/ws/echo", &websocket.DialOptions{HTTPHeader: wstest.User("eve")})
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
			bob.Say(ctx, t, "after the timeout")
			if ev := alice.Expect(ctx, t, "message", "bob"); ev.Text != "after the timeout" {
				t.Fatalf("alice got %+v", ev)
			}
			alice.Say(ctx, t, "still here")
			bob.Expect(ctx, t, "message", "bob")
			bob.Expect(ctx, t, "message", "alice")
			if err := e.Write(ctx, websocket.MessageText, []byte("ping")); err != nil {
				t.Fatal(err)
			}
			if _, b, err := e.Read(ctx); err != nil || string(b) != "ping" {
				t.Fatalf("echo after the timeout: %q %v", b, err)
			}
			bob.Close()
			alice.Expect(ctx, t, "message", "alice")
			alice.Expect(ctx, t, "leave", "bob")
			// A member who joins now is welcome in the room.
			carol, w := wstest.DialAs(ctx, t, ws+"/ws/chat/r", "carol")
			if got := strings.Join(w.Members, ","); got != "alice,carol" {
				t.Fatalf("carol's welcome lists %q", got)
			}
			alice.Expect(ctx, t, "join", "carol")
			carol.Close()

			// Bob's connection has ended: Logger logged it (after Timeout's
			// 504, when Logger is outside).
			logged.Wait(ctx, t, "/ws/chat/r", " - 101 ")
			if tc.loggerOutside {
				select {
				case line := <-httpLog:
					t.Fatalf("net/http logged %q", line)
				default:
				}
			} else {
				httpLog.Wait(ctx, t, "response.WriteHeader on hijacked connection")
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
	base, ws := wstest.Serve(t, r)
	ctx := wstest.Context(t)
	if got := wstest.Status(ctx, t, base+"/health", nil); got != http.StatusOK {
		t.Fatalf("/health: %d", got)
	}
	wstest.DialAs(ctx, t, ws+"/ws/chat/r", "alice")
	if got := wstest.Status(ctx, t, base+"/health", nil); got != http.StatusTooManyRequests {
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
