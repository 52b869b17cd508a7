package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/internal/wstest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestRun starts the program as `go run . -addr 127.0.0.1:0 -metrics`
// would, chats and echoes through it, reads its metrics, and stops it as
// SIGINT would: every WebSocket is closed with 1001.
func TestRun(t *testing.T) { testRun(t) }

// TestRunBackends does the same with the store in Redis and PostgreSQL and
// the broker in Redis and NATS, on the local servers.
func TestRunBackends(t *testing.T) {
	for _, b := range []struct{ store, broker string }{
		{"redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"},
		{"postgres://postgres@127.0.0.1:5432/test", "nats://127.0.0.1:4222"},
	} {
		t.Run(b.store+"+"+b.broker, func(t *testing.T) {
			for _, u := range []string{b.store, b.broker} {
				needServer(t, u)
			}
			testRun(t, "-store", b.store, "-broker", b.broker)
		})
	}
}

// needServer skips (or, with WSROOM_REQUIRE_BACKENDS=1, fails) a test
// whose backend does not answer.
func needServer(t *testing.T, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("WSROOM_REQUIRE_BACKENDS") == "1" {
		t.Fatalf("%s not reachable: %v", u.Host, err)
	}
	t.Skipf("%s not reachable at %s: start it (or unset the test) to run the example against it", u.Scheme, u.Host)
}

// testRun checks the program started with -metrics and extra as
// wstest.CheckExample does (its page, a chat in room test, echo, and 1001
// on SIGINT); while alice and bob are in the room, /metrics counts two
// members.
func testRun(t *testing.T, extra ...string) {
	wstest.CheckExample(t, wstest.Example{
		Run:   run,
		Args:  append([]string{"-rate", "100", "-metrics"}, extra...),
		Pages: map[string]string{"/": "wsroom.v1"},
		Chat:  "/chat/test",
		Echo:  "/echo",
		WithTwo: func(ctx context.Context, t testing.TB, base string) {
			if m := wstest.Get(ctx, t, base+"/metrics"); !strings.Contains(m, "\nwsroom_members 2\n") {
				t.Fatalf("/metrics without two members:\n%.2000s", m)
			}
		},
	})
}

func TestFlags(t *testing.T) {
	c, err := parseFlags([]string{"-unlimited", "-origins", "a.example,b.example", "-ping", "-1s"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	o := c.opts
	if o.RateLimit >= 0 || o.MaxMessageBytes >= 0 || o.MaxMembers >= 0 || o.SendQueue >= 0 || o.MaxNameLength >= 0 || o.JoinTimeout >= 0 || o.WriteTimeout >= 0 || o.PingInterval >= 0 {
		t.Fatalf("-unlimited left a limit on: %+v", o)
	}
	if len(o.OriginPatterns) != 2 {
		t.Fatalf("origins: %q", o.OriginPatterns)
	}
	if _, _, err := newHandler(c, nil, nil); err != nil {
		t.Fatal(err)
	}
	// -debug serves the memory report the benchmark suite reads.
	c, err = parseFlags([]string{"-debug"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h, rooms, err := newHandler(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Shutdown(context.Background())
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/debug/mem", nil))
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `"heap_inuse"`) {
		t.Fatalf("/debug/mem: %d %s", rec.Code, rec.Body)
	}
	if _, err := parseFlags([]string{"-rate", "x"}, io.Discard); err == nil {
		t.Fatal("a bad flag was accepted")
	}
	if c.opts.NoFallback {
		t.Fatal("the HTTP fallback is off by default")
	}
	// -fallback=false: WebSocket only; a stream request gets 426.
	c, err = parseFlags([]string{"-fallback=false"}, io.Discard)
	if err != nil || !c.opts.NoFallback {
		t.Fatalf("-fallback=false: %v %+v", err, c.opts.NoFallback)
	}
	h, off, err := newHandler(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer off.Shutdown(context.Background())
	rec = httptest.NewRecorder()
	req := httptest.NewRequest("GET", "/chat/x", nil)
	req.Header.Set("Accept", "text/event-stream")
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusUpgradeRequired {
		t.Fatalf("stream with -fallback=false: %d", rec.Code)
	}
}
