package wsroom_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestCompressionNeverNegotiated: a client offering permessage-deflate
// gets no extension, and the connection works (wsroom writes its frames
// itself, uncompressed).
func TestCompressionNeverNegotiated(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, mode := range []websocket.CompressionMode{websocket.CompressionContextTakeover, websocket.CompressionNoContextTakeover} {
		ctx := testContext(t)
		c, resp, err := websocket.Dial(ctx, e.url+"/echo", &websocket.DialOptions{CompressionMode: mode})
		assert.Success(t, err)
		assert.Equal(t, "extensions answered", "", resp.Header.Get("Sec-WebSocket-Extensions"))
		msg := strings.Repeat("compressible ", 200)
		assert.Success(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		_, b, err := c.Read(ctx)
		assert.Success(t, err)
		assert.Equal(t, "echo", msg, string(b))
		c.Close(websocket.StatusNormalClosure, "")
	}
	// A raw client sees no extension either.
	req, _ := http.NewRequest(http.MethodGet, e.ts.URL+"/chat/x", nil)
	for k, v := range map[string]string{"Connection": "Upgrade", "Upgrade": "websocket", "Sec-WebSocket-Version": "13",
		"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"} {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	assert.Success(t, err)
	defer resp.Body.Close()
	assert.Equal(t, "status", http.StatusSwitchingProtocols, resp.StatusCode)
	assert.Equal(t, "no extension", "", resp.Header.Get("Sec-WebSocket-Extensions"))
}

// statusRecorder is a typical logging middleware's ResponseWriter: it
// records the status, and (unless unwrap) hides the writer it wraps.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

type unwrappingRecorder struct{ statusRecorder }

func (r *unwrappingRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logBuffer is a slog handler's output, safe for concurrent use.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestWrapperWithoutHijack: behind a ResponseWriter wrapper that can
// neither hijack nor unwrap, chat and echo answer 501 before anything is
// written, never a 101 followed by silence, and log why at Error with the
// wrapper's type. With Unwrap, the same wrapper works.
func TestWrapperWithoutHijack(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	srv, err := wsroom.New(&wsroom.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	assert.Success(t, err)
	var mu sync.Mutex
	var statuses []int
	wrap := func(unwrap bool, h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var rec *statusRecorder
			if unwrap {
				u := &unwrappingRecorder{statusRecorder{ResponseWriter: w}}
				rec = &u.statusRecorder
				h.ServeHTTP(u, r)
			} else {
				rec = &statusRecorder{ResponseWriter: w}
				h.ServeHTTP(rec, r)
			}
			mu.Lock()
			statuses = append(statuses, rec.status)
			mu.Unlock()
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/plain/chat/{room}", wrap(false, srv))
	mux.Handle("/plain/echo", wrap(false, srv.Echo()))
	mux.Handle("/unwrap/chat/{room}", wrap(true, srv))
	mux.Handle("/unwrap/echo", wrap(true, srv.Echo()))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	defer srv.Shutdown(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ctx := testContext(t)
	for _, path := range []string{"/plain/chat/r", "/plain/echo"} {
		_, resp, err := websocket.Dial(ctx, url+path, nil)
		assert.True(t, path+": refused", err != nil)
		assert.Equal(t, path+": status", http.StatusNotImplemented, resp.StatusCode)
	}
	out := logs.String()
	assert.Contains(t, out, "level=ERROR")
	assert.Contains(t, out, "*wsroom_test.statusRecorder")
	assert.Contains(t, out, "Unwrap() http.ResponseWriter")
	for _, path := range []string{"/unwrap/echo", "/unwrap/chat/r"} {
		c, _, err := websocket.Dial(ctx, url+path, nil)
		assert.Success(t, err)
		assert.Success(t, c.Write(ctx, websocket.MessageText, []byte("login:ann")))
		_, _, err = c.Read(ctx)
		assert.Success(t, err)
		c.Close(websocket.StatusNormalClosure, "")
	}
	waitFor(t, "handlers returned", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(statuses) == 4
	})
	mu.Lock()
	defer mu.Unlock()
	for _, s := range statuses {
		assert.True(t, "the app's logger records 501 or 101, never 500", s == http.StatusNotImplemented || s == http.StatusSwitchingProtocols)
	}
}

// panicky is a router's ResponseWriter whose WriteHeader panics.
type panicky struct{ http.ResponseWriter }

func (p panicky) WriteHeader(int) { panic("router bug") }

func (p panicky) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return http.NewResponseController(p.ResponseWriter).Hijack()
}

// TestUpgradePanicReachesTheRequest: a panic in the router's WriteHeader
// during the upgrade (which runs on its own goroutine) is passed to the
// request's goroutine, where the router's recoverer sees it, instead of
// crashing the process.
func TestUpgradePanicReachesTheRequest(t *testing.T) {
	t.Parallel()
	srv, err := wsroom.New(&wsroom.Options{Logger: quiet})
	assert.Success(t, err)
	recovered := make(chan any, 2)
	recoverer := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					recovered <- v
				}
			}()
			h.ServeHTTP(panicky{w}, r)
		})
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", recoverer(srv))
	mux.Handle("/echo", recoverer(srv.Echo()))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	for _, path := range []string{"/chat/r", "/echo"} {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		websocket.Dial(ctx, url+path, nil)
		cancel()
		select {
		case v := <-recovered:
			assert.Equal(t, "the panic", any("router bug"), v)
		case <-time.After(testTimeout):
			t.Fatalf("%s: the panic did not reach the request's goroutine", path)
		}
	}
	// Nothing is left counted in: Shutdown returns at once.
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	assert.Success(t, srv.Shutdown(ctx))
}

// TestRoomOfTheRoute: the room comes from {room}, from RoomFromRequest, or
// is DefaultRoom on a ServeMux route without {room}; a router that tells
// neither gets a loud refusal, never a silent default room.
func TestRoomOfTheRoute(t *testing.T) {
	t.Parallel()
	var logs logBuffer
	srv, err := wsroom.New(&wsroom.Options{Logger: slog.New(slog.NewTextHandler(&logs, nil)), DefaultRoom: "hall"})
	assert.Success(t, err)
	byQuery, err := wsroom.New(&wsroom.Options{Logger: quiet, RoomFromRequest: func(r *http.Request) string { return r.URL.Query().Get("room") }})
	assert.Success(t, err)
	defer byQuery.Shutdown(context.Background())
	defer srv.Shutdown(context.Background())
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", srv)
	mux.Handle("/chat", srv)
	mux.Handle("/q", byQuery)
	mux.Handle("/sub/", srv)
	mux.Handle("/exact/{$}", srv)
	// A router that sets neither path values nor the pattern, as gin does.
	mux.Handle("/foreign/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r2 := r.Clone(r.Context())
		r2.Pattern = ""
		srv.ServeHTTP(w, r2)
	}))
	ts := httptest.NewServer(mux)
	defer ts.Close()
	url := "ws" + strings.TrimPrefix(ts.URL, "http")
	ctx := testContext(t)
	joins := 0
	welcomeRoom := func(path string) string {
		c, _, err := websocket.Dial(ctx, url+path, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		assert.Success(t, err)
		defer c.CloseNow()
		joins++
		assert.Success(t, c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","name":"ann%d"}`, joins)))
		_, b, err := c.Read(ctx)
		assert.Success(t, err)
		_, after, _ := strings.Cut(string(b), `"room":"`)
		room, _, _ := strings.Cut(after, `"`)
		return room
	}
	assert.Equal(t, "path value", "blue", welcomeRoom("/chat/blue"))
	assert.Equal(t, "route without {room}", "hall", welcomeRoom("/chat"))
	assert.Equal(t, "RoomFromRequest", "green", welcomeRoom("/q?room=green"))
	assert.Equal(t, "an exact route", "hall", welcomeRoom("/exact/"))
	_, resp, err := websocket.Dial(ctx, url+"/sub/kitchen", nil)
	assert.True(t, "a subtree route refused", err != nil)
	assert.Equal(t, "status", http.StatusInternalServerError, resp.StatusCode)
	_, resp, err = websocket.Dial(ctx, url+"/foreign/chat/a", nil)
	assert.True(t, "unknown room refused", err != nil)
	assert.Equal(t, "status", http.StatusInternalServerError, resp.StatusCode)
	assert.Contains(t, logs.String(), "cannot tell the room")
	if errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("refusal hung")
	}
}
