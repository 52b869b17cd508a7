package main

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestRun starts the program as `go run . -addr 127.0.0.1:0 -metrics`
// would, chats through it, reads its metrics, and stops it as SIGINT would.
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

func testRun(t *testing.T, extra ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, append([]string{"-addr", "127.0.0.1:0", "-rate", "100", "-metrics"}, extra...), pw)
		pw.Close()
	}()
	logs := bufio.NewScanner(pr)
	var base string
	for logs.Scan() {
		if m := regexp.MustCompile(`url=(http://\S+)`).FindStringSubmatch(logs.Text()); m != nil {
			base = m[1]
			break
		}
	}
	if base == "" {
		t.Fatal("no listening line")
	}
	go io.Copy(io.Discard, pr)

	resp, err := http.Get(base + "/")
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(page), "wsroom.v1") {
		t.Fatalf("page: %d %.80s", resp.StatusCode, page)
	}
	ws := "ws" + strings.TrimPrefix(base, "http")
	alice := dial(ctx, t, ws+"/chat/test", "alice")
	bob := dial(ctx, t, ws+"/chat/test", "bob")
	read(ctx, t, alice) // bob's arrival
	bob.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hi"}`))
	if got := read(ctx, t, alice); !strings.Contains(got, `"text":"hi"`) {
		t.Fatalf("alice got %s", got)
	}

	resp, err = http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), "\nwsroom_members 2\n") {
		t.Fatalf("/metrics without two members:\n%.2000s", metrics)
	}

	echo, _, err := websocket.Dial(ctx, ws+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	echo.Write(ctx, websocket.MessageText, []byte("ping"))
	if _, b, err := echo.Read(ctx); err != nil || string(b) != "ping" {
		t.Fatalf("echo: %q %v", b, err)
	}

	closed := make(chan websocket.StatusCode, 3)
	for _, c := range []*websocket.Conn{alice, bob, echo} {
		go func() {
			for {
				if _, _, err := c.Read(ctx); err != nil {
					closed <- websocket.CloseStatus(err)
					return
				}
			}
		}()
	}
	stop() // SIGINT
	if err := <-done; err != nil {
		t.Fatalf("run: %v", err)
	}
	for range 3 {
		if code := <-closed; code != websocket.StatusGoingAway {
			t.Fatalf("close code %v, want 1001", code)
		}
	}
}

func dial(ctx context.Context, t *testing.T, url, name string) *websocket.Conn {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","name":"`+name+`"}`))
	if got := read(ctx, t, c); !strings.Contains(got, `"type":"welcome"`) {
		t.Fatalf("%s got %s", name, got)
	}
	return c
}

func read(ctx context.Context, t *testing.T, c *websocket.Conn) string {
	t.Helper()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
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
