package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var (
	chatPeers = []string{"melody", "gorilla", "gws", "coder"}
	allPeers  = append(chatPeers[:len(chatPeers):len(chatPeers)], "bare")
)

// serve starts impl on an httptest server, closed with the test.
func serve(t *testing.T, impl string) *httptest.Server {
	t.Helper()
	h, stop, err := newHandler(impl)
	assert.Success(t, err)
	ts := httptest.NewServer(h)
	t.Cleanup(func() {
		ts.Close()
		stop()
	})
	return ts
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// member is a chat client that splits every text frame on newlines.
type member struct {
	t       *testing.T
	c       *websocket.Conn
	pending []map[string]any
}

func join(ctx context.Context, t *testing.T, ts *httptest.Server, room, name string) *member {
	t.Helper()
	u := "ws" + strings.TrimPrefix(ts.URL, "http") + "/chat/" + url.PathEscape(room) + "?name=" + url.QueryEscape(name)
	c, _, err := websocket.Dial(ctx, u, nil)
	assert.Success(t, err)
	t.Cleanup(func() { c.CloseNow() })
	return &member{t: t, c: c}
}

// expect fails the test unless the next event m receives is want.
func (m *member) expect(ctx context.Context, want map[string]any) {
	m.t.Helper()
	for len(m.pending) == 0 {
		typ, b, err := m.c.Read(ctx)
		assert.Success(m.t, err)
		assert.Equal(m.t, "frame type", websocket.MessageText, typ)
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			var ev map[string]any
			if err := json.Unmarshal(line, &ev); err != nil {
				m.t.Fatalf("event %q: %v", line, err)
			}
			m.pending = append(m.pending, ev)
		}
	}
	got := m.pending[0]
	m.pending = m.pending[1:]
	assert.Equal(m.t, "event", want, got)
}

func (m *member) send(ctx context.Context, text string) {
	m.t.Helper()
	assert.Success(m.t, m.c.Write(ctx, websocket.MessageText, []byte(text)))
}

func (m *member) close() {
	m.t.Helper()
	assert.Success(m.t, m.c.Close(websocket.StatusNormalClosure, ""))
}

func joined(name string) map[string]any { return map[string]any{"type": "join", "name": name} }
func left(name string) map[string]any   { return map[string]any{"type": "leave", "name": name} }
func said(from, text string) map[string]any {
	return map[string]any{"type": "message", "from": from, "text": text}
}

func TestChat(t *testing.T) {
	t.Parallel()
	for _, impl := range chatPeers {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			ts := serve(t, impl)

			carol := join(ctx, t, ts, "elsewhere", "carol")
			carol.expect(ctx, joined("carol"))

			alice := join(ctx, t, ts, "lobby", "alice")
			alice.expect(ctx, joined("alice"))
			bob := join(ctx, t, ts, "lobby", "bob")
			bob.expect(ctx, joined("bob"))
			alice.expect(ctx, joined("bob"))

			alice.send(ctx, `{"type":"message","text":"b:1:1700000000000000000"}`)
			alice.expect(ctx, said("alice", "b:1:1700000000000000000"))
			bob.expect(ctx, said("alice", "b:1:1700000000000000000"))

			bob.send(ctx, "not JSON\nat all")
			alice.expect(ctx, said("bob", "not JSON\nat all"))
			bob.expect(ctx, said("bob", "not JSON\nat all"))

			alice.close()
			bob.expect(ctx, left("alice"))

			// Nothing of the lobby reached the other room.
			carol.send(ctx, `{"type":"message","text":"hi"}`)
			carol.expect(ctx, said("carol", "hi"))

			bob.close()
			carol.close()
		})
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	text := []byte(strings.Repeat("0123456789abcdef", 4))
	binary := make([]byte, 4<<10)
	for i := range binary {
		binary[i] = byte(i * 7)
	}
	for _, impl := range allPeers {
		paths := []string{"/echo"}
		if impl == "bare" {
			paths = append(paths, "/chat/lobby?name=alice")
		}
		for _, path := range paths {
			t.Run(impl+path, func(t *testing.T) {
				t.Parallel()
				ctx := testContext(t)
				ts := serve(t, impl)
				c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http")+path, nil)
				assert.Success(t, err)
				defer c.CloseNow()
				for _, msg := range []struct {
					typ websocket.MessageType
					b   []byte
				}{{websocket.MessageText, text}, {websocket.MessageBinary, binary}} {
					assert.Success(t, c.Write(ctx, msg.typ, msg.b))
					typ, b, err := c.Read(ctx)
					assert.Success(t, err)
					assert.Equal(t, "type", msg.typ, typ)
					assert.True(t, "same bytes", bytes.Equal(msg.b, b))
				}
				assert.Success(t, c.Close(websocket.StatusNormalClosure, ""))
			})
		}
	}
}

func TestMem(t *testing.T) {
	t.Parallel()
	for _, impl := range allPeers {
		t.Run(impl, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t)
			ts := serve(t, impl)
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/debug/mem", nil)
			assert.Success(t, err)
			resp, err := ts.Client().Do(req)
			assert.Success(t, err)
			defer resp.Body.Close()
			assert.Equal(t, "status", http.StatusOK, resp.StatusCode)
			var report map[string]float64
			assert.Success(t, json.NewDecoder(resp.Body).Decode(&report))
			for _, field := range []string{"heap_inuse", "stack_inuse", "heap_objects", "sys", "rss", "goroutines"} {
				_, ok := report[field]
				assert.True(t, field, ok)
			}
			assert.Equal(t, "fields", 6, len(report))
			assert.True(t, "goroutines > 0", report["goroutines"] > 0)
		})
	}
}

func TestUnknownImpl(t *testing.T) {
	t.Parallel()
	_, _, err := newHandler("nope")
	assert.Contains(t, err.Error(), `unknown -impl "nope"`)
}

// TestRun starts the command as main does, serves a request and stops it
// as a signal would.
func TestRun(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, []string{"-impl", "gws", "-addr", "127.0.0.1:0"}, pw)
		pw.Close()
	}()
	lines := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(pr).ReadString('\n')
		lines <- line
		io.Copy(io.Discard, pr)
	}()
	var line string
	select {
	case line = <-lines:
	case <-ctx.Done():
		t.Fatal("no listening line")
	}
	_, addr, ok := strings.Cut(strings.TrimSpace(line), " listening on ")
	assert.True(t, "listening line "+line, ok)

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, addr+"/debug/mem", nil)
	assert.Success(t, err)
	resp, err := http.DefaultClient.Do(req)
	assert.Success(t, err)
	resp.Body.Close()
	assert.Equal(t, "status", http.StatusOK, resp.StatusCode)
	http.DefaultClient.CloseIdleConnections()

	stop()
	select {
	case err := <-done:
		assert.Success(t, err)
	case <-ctx.Done():
		t.Fatal("run did not return")
	}

	err = run(ctx, []string{"-impl", "nope"}, io.Discard)
	assert.Contains(t, err.Error(), "unknown -impl")
}
