package wsroom_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// sseEvent is one event of a fallback stream, as the SSE format frames it.
type sseEvent struct {
	name string // "" for a wsroom.v1 event; "stream", "close"
	id   string
	data string
	err  error // the stream ended (io.EOF) or failed
}

// hello is the stream's first event.
type hello struct {
	Token     string `json:"token"`
	Post      string `json:"post"`
	Heartbeat int64  `json:"heartbeat"`
	Timeout   int64  `json:"timeout"`
	MaxText   int64  `json:"maxText"`
	MaxBinary int64  `json:"maxBinary"`
}

// sseClient is a test client of the HTTP fallback: it reads the stream all
// the time, into a buffer the test consumes, and POSTs frames.
type sseClient struct {
	t        testing.TB
	hc       *http.Client
	url      string // the stream's URL
	resp     *http.Response
	cancel   context.CancelFunc
	hello    hello
	comments int // heartbeat comments seen, under mu

	mu      sync.Mutex
	inbox   []sseEvent
	signal  chan struct{}
	done    chan struct{}
	pending []evt
	bins    [][]byte
	lastID  string
}

// sseHTTP is an http.Client for streams: no overall timeout (streams live
// long), plenty of idle connections for the POSTs.
var sseHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}

// openStream opens a stream at base+path (base: http://host), with extra
// request headers, and returns the response when it is not 200.
func openStream(t testing.TB, base, path string, h http.Header) (*sseClient, *http.Response) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	assert.Success(t, err)
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := sseHTTP.Do(req)
	if err != nil {
		cancel()
		t.Fatalf("stream %s: %v", path, err)
	}
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		cancel()
		resp.Body = io.NopCloser(strings.NewReader(string(b)))
		return nil, resp
	}
	c := &sseClient{t: t, hc: sseHTTP, url: base + path, resp: resp, cancel: cancel, signal: make(chan struct{}, 1), done: make(chan struct{})}
	go c.readLoop()
	t.Cleanup(c.close)
	ev := c.nextRaw()
	if ev.name != "stream" {
		t.Fatalf("first event %+v, want the stream event", ev)
	}
	assert.Success(t, json.Unmarshal([]byte(ev.data), &c.hello))
	return c, resp
}

// stream opens a stream that must succeed.
func (e *env) stream(path string) *sseClient {
	e.t.Helper()
	c, resp := openStream(e.t, e.ts.URL, path, nil)
	if c == nil {
		e.t.Fatalf("stream %s: status %d", path, resp.StatusCode)
	}
	return c
}

// sseJoin opens a stream on /chat/room, joins as name and returns the
// client with its welcome.
func (e *env) sseJoin(room, name string) (*sseClient, evt) {
	e.t.Helper()
	c := e.stream("/chat/" + room)
	c.postJSON(map[string]any{"type": "join", "name": name})
	return c, c.expect("welcome")
}

func (c *sseClient) close() {
	c.cancel()
	<-c.done
	c.resp.Body.Close()
}

func (c *sseClient) readLoop() {
	defer close(c.done)
	br := bufio.NewReader(c.resp.Body)
	var ev sseEvent
	var data []string
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			c.push(sseEvent{err: err})
			return
		}
		line = strings.TrimSuffix(strings.TrimSuffix(line, "\n"), "\r")
		switch {
		case line == "":
			if data != nil {
				ev.data = strings.Join(data, "\n")
				c.push(ev)
			}
			ev, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
			c.mu.Lock()
			c.comments++
			c.mu.Unlock()
		default:
			field, value, _ := strings.Cut(line, ":")
			value = strings.TrimPrefix(value, " ")
			switch field {
			case "event":
				ev.name = value
			case "id":
				ev.id = value
			case "data":
				data = append(data, value)
			}
		}
	}
}

func (c *sseClient) push(ev sseEvent) {
	c.mu.Lock()
	c.inbox = append(c.inbox, ev)
	c.mu.Unlock()
	select {
	case c.signal <- struct{}{}:
	default:
	}
}

// nextRaw returns the next SSE event (or the end of the stream).
func (c *sseClient) nextRaw() sseEvent {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		c.mu.Lock()
		if len(c.inbox) > 0 {
			ev := c.inbox[0]
			if ev.err == nil {
				c.inbox = c.inbox[1:]
				if ev.id != "" {
					c.lastID = ev.id
				}
			}
			c.mu.Unlock()
			return ev
		}
		c.mu.Unlock()
		select {
		case <-c.signal:
		case <-ctx.Done():
			c.t.Fatalf("no event within %v", testTimeout)
		}
	}
}

// next returns the next wsroom.v1 event; a binary event is kept aside.
func (c *sseClient) next() (evt, error) {
	for len(c.pending) == 0 {
		ev := c.nextRaw()
		switch {
		case ev.err != nil:
			return evt{}, ev.err
		case ev.name == "close":
			c.mu.Lock() // left for closed to read
			c.inbox = append([]sseEvent{ev}, c.inbox...)
			c.mu.Unlock()
			return evt{}, fmt.Errorf("stream closed: %s", ev.data)
		case ev.name != "":
			continue
		}
		var b struct {
			Type string `json:"type"`
			Data []byte `json:"data"`
		}
		if json.Unmarshal([]byte(ev.data), &b) == nil && b.Type == "binary" {
			c.bins = append(c.bins, b.Data)
			continue
		}
		var e evt
		if err := json.Unmarshal([]byte(ev.data), &e); err != nil {
			return evt{}, fmt.Errorf("bad event %q: %w", ev.data, err)
		}
		c.pending = append(c.pending, e)
	}
	e := c.pending[0]
	c.pending = c.pending[1:]
	return e, nil
}

func (c *sseClient) expect(typ string) evt {
	c.t.Helper()
	e, err := c.next()
	assert.Success(c.t, err)
	if e.Type != typ {
		c.t.Fatalf("want a %s event, got %+v", typ, e)
	}
	return e
}

func (c *sseClient) until(typ string) evt {
	c.t.Helper()
	for {
		e, err := c.next()
		assert.Success(c.t, err)
		if e.Type == typ {
			return e
		}
	}
}

// closed reads until the stream ends and returns the code and reason of
// its close event; code -1 when it ended without one.
func (c *sseClient) closed() (int, string) {
	c.t.Helper()
	for {
		ev := c.nextRaw()
		if ev.err != nil {
			return -1, ""
		}
		if ev.name == "close" {
			var v struct {
				Code   int    `json:"code"`
				Reason string `json:"reason"`
			}
			assert.Success(c.t, json.Unmarshal([]byte(ev.data), &v))
			if end := c.nextRaw(); end.err == nil {
				c.t.Fatalf("an event after the close event: %+v", end)
			}
			return v.Code, v.Reason
		}
	}
}

// postTo POSTs body to the stream's POST URL on base (another server, say)
// with the stream's token, and returns the status.
func (c *sseClient) postTo(base, ctype string, body []byte, h http.Header) int {
	c.t.Helper()
	u := c.url
	if base != "" {
		u = base + strings.TrimPrefix(u, u[:strings.Index(u[len("http://"):], "/")+len("http://")])
	}
	if i := strings.IndexByte(u, '?'); i >= 0 {
		u = u[:i]
	}
	u += c.hello.Post
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(string(body)))
	assert.Success(c.t, err)
	req.Header.Set(wsroom.TokenHeader, c.hello.Token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := c.hc.Do(req)
	assert.Success(c.t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// postJSON POSTs one frame and requires 202.
func (c *sseClient) postJSON(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	assert.Success(c.t, err)
	if st := c.postTo("", "text/plain", b, nil); st != http.StatusAccepted {
		c.t.Fatalf("POST %s: status %d", b, st)
	}
}

func (c *sseClient) say(text string) {
	c.t.Helper()
	c.postJSON(map[string]any{"type": "message", "text": text})
}

// comment returns the heartbeat comments seen so far.
func (c *sseClient) commentsSeen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.comments
}

// rawPost POSTs to url with the given token and returns the status.
func rawPost(t testing.TB, url, token, ctype, body string, h http.Header) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	assert.Success(t, err)
	if token != "" {
		req.Header.Set(wsroom.TokenHeader, token)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := sseHTTP.Do(req)
	assert.Success(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}
