package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestRun starts the program as `go run . -addr 127.0.0.1:0` would, uses
// its ordinary routes, chats and echoes through it, and stops it as SIGINT
// would: every WebSocket is closed with 1001.
func TestRun(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	runCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"-addr", "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	base := listening(t, pr)

	for path, want := range map[string]string{"/": "/ws/chat/{room}", "/health": "ok", "/api/time": `"time":"`} {
		if got := get(ctx, t, base+path); !strings.Contains(got, want) {
			t.Fatalf("GET %s: %q, want %q in it", path, got, want)
		}
	}
	ws := "ws" + strings.TrimPrefix(base, "http") + "/ws"
	alice := dial(ctx, t, ws+"/chat/test", http.Header{"Cookie": {"user=alice"}})
	if w := alice.next(ctx, t); w.Type != "welcome" || w.Name != "alice" || w.Room != "test" {
		t.Fatalf("alice (logged in) got %+v, want a welcome to test", w)
	}
	bob := dial(ctx, t, ws+"/chat/test", nil)
	bob.send(ctx, t, `{"type":"join","name":"bob"}`)
	if w := bob.next(ctx, t); w.Type != "welcome" || strings.Join(w.Members, ",") != "alice,bob" {
		t.Fatalf("bob got %+v", w)
	}
	if e := alice.next(ctx, t); e.Type != "join" || e.Name != "bob" {
		t.Fatalf("alice got %+v, want bob's arrival", e)
	}
	bob.send(ctx, t, `{"type":"message","text":"hi"}`)
	if e := alice.next(ctx, t); e.Type != "message" || e.From != "bob" || e.Text != "hi" {
		t.Fatalf("alice got %+v", e)
	}
	echo, _, err := websocket.Dial(ctx, ws+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer echo.CloseNow()
	for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
		echo.Write(ctx, typ, []byte("ping"))
		if got, b, err := echo.Read(ctx); err != nil || got != typ || string(b) != "ping" {
			t.Fatalf("echo: %v %q %v", got, b, err)
		}
	}

	closed := make(chan websocket.StatusCode, 3)
	for _, c := range []*websocket.Conn{alice.c, bob.c, echo} {
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

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-addr"}, {"extra"}, {"-addr", "256.0.0.1:x"}} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}

// listening reads the program's log until the line with its URL, and
// drains the rest in the background until the program ends.
func listening(t *testing.T, logs io.Reader) string {
	t.Helper()
	sc := bufio.NewScanner(logs)
	for sc.Scan() {
		if m := regexp.MustCompile(`url=(http://\S+)`).FindStringSubmatch(sc.Text()); m != nil {
			go io.Copy(io.Discard, logs)
			return m[1]
		}
	}
	t.Fatal("no listening line")
	return ""
}

func get(ctx context.Context, t *testing.T, url string) string {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

type event struct {
	Type, Room, Name, From, Text string
	Members                      []string
}

// client is a client of the JSON protocol; a frame may hold several
// events, one per line.
type client struct {
	c       *websocket.Conn
	pending []event
}

func dial(ctx context.Context, t *testing.T, url string, h http.Header) *client {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}, HTTPHeader: h})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &client{c: c}
}

func (c *client) send(ctx context.Context, t *testing.T, s string) {
	t.Helper()
	if err := c.c.Write(ctx, websocket.MessageText, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func (c *client) next(ctx context.Context, t *testing.T) event {
	t.Helper()
	for len(c.pending) == 0 {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			var e event
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("event %q: %v", line, err)
			}
			c.pending = append(c.pending, e)
		}
	}
	e := c.pending[0]
	c.pending = c.pending[1:]
	return e
}
