package wsroom_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
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
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// testTimeout bounds every wait in a test.
const testTimeout = 10 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// env is a Server mounted on a ServeMux behind an httptest.Server.
type env struct {
	t   testing.TB
	srv *wsroom.Server
	ts  *httptest.Server
	url string // ws://host
}

// quiet is a logger for tests that expect errors.
var quiet = slog.New(slog.DiscardHandler)

// newEnv starts a Server with opts (nil for defaults) on /chat, /chat/{room}
// and /echo, and shuts it down when the test ends.
func newEnv(t testing.TB, opts *wsroom.Options) *env {
	t.Helper()
	return newEnvListener(t, opts, nil)
}

func newEnvListener(t testing.TB, opts *wsroom.Options, wrap func(net.Listener) net.Listener) *env {
	t.Helper()
	if opts == nil {
		opts = &wsroom.Options{}
	}
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	srv, err := wsroom.New(opts)
	assert.Success(t, err)
	mux := http.NewServeMux()
	mux.Handle("/chat", srv)
	mux.Handle("/chat/{room}", srv)
	mux.Handle("/echo", srv.Echo())
	ts := httptest.NewUnstartedServer(mux)
	if wrap != nil {
		ts.Listener = wrap(ts.Listener)
	}
	ts.Start()
	e := &env{t: t, srv: srv, ts: ts, url: "ws" + strings.TrimPrefix(ts.URL, "http")}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	return e
}

// evt is any server-to-client event of the JSON protocol.
type evt struct {
	Type     string   `json:"type"`
	Room     string   `json:"room"`
	Name     string   `json:"name"`
	Members  []string `json:"members"`
	Count    int      `json:"count"`
	History  []msg    `json:"history"`
	Gap      bool     `json:"gap"`
	ID       string   `json:"id"`
	From     string   `json:"from"`
	Text     string   `json:"text"`
	TS       int64    `json:"ts"`
	Joined   []string `json:"joined"`
	Left     []string `json:"left"`
	Messages []msg    `json:"messages"`
	More     bool     `json:"more"`
	Code     string   `json:"code"`
	Message  string   `json:"message"`
}

type msg struct {
	ID   string `json:"id"`
	From string `json:"from"`
	Text string `json:"text"`
	TS   int64  `json:"ts"`
}

// client is a test WebSocket client. Like a browser, it reads all the
// time (so it answers pings), into a buffer the test consumes.
type client struct {
	t       testing.TB
	c       *websocket.Conn
	json    bool
	mu      sync.Mutex
	inbox   []frame       // frames received, not yet consumed
	signal  chan struct{} // a frame was added
	done    chan struct{}
	pending []evt    // JSON events of the last frame not yet consumed
	bins    [][]byte // binary frames received while looking for events
	frames  int      // text frames received
}

type frame struct {
	typ websocket.MessageType
	b   []byte
	err error
}

func (e *env) dial(path string, json bool) *client {
	e.t.Helper()
	c, err := e.dialErr(path, json, nil)
	assert.Success(e.t, err)
	return c
}

func (e *env) dialErr(path string, json bool, h http.Header) (*client, error) {
	opts := &websocket.DialOptions{HTTPHeader: h}
	if json {
		opts.Subprotocols = []string{wsroom.Subprotocol}
	}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, e.url+path, opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("%w (status %d)", err, resp.StatusCode)
		}
		return nil, err
	}
	c.SetReadLimit(-1)
	cl := &client{t: e.t, c: c, json: json, signal: make(chan struct{}, 1), done: make(chan struct{})}
	go cl.readLoop()
	e.t.Cleanup(func() {
		c.CloseNow()
		<-cl.done
	})
	return cl, nil
}

func (c *client) readLoop() {
	defer close(c.done)
	for {
		typ, b, err := c.c.Read(context.Background())
		c.mu.Lock()
		c.inbox = append(c.inbox, frame{typ, b, err})
		c.mu.Unlock()
		select {
		case c.signal <- struct{}{}:
		default:
		}
		if err != nil {
			return
		}
	}
}

// join dials a JSON client into room (path /chat/room) as name and returns
// it with its welcome.
func (e *env) join(room, name string) (*client, evt) {
	e.t.Helper()
	c := e.dial("/chat/"+room, true)
	c.send(map[string]any{"type": "join", "name": name})
	w := c.expect("welcome")
	return c, w
}

func (c *client) send(v any) {
	c.t.Helper()
	b, err := json.Marshal(v)
	assert.Success(c.t, err)
	c.sendText(string(b))
}

func (c *client) sendText(s string) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	assert.Success(c.t, c.c.Write(ctx, websocket.MessageText, []byte(s)))
}

func (c *client) say(text string) {
	c.t.Helper()
	c.send(map[string]any{"type": "message", "text": text})
}

// readFrame returns the next frame received.
func (c *client) readFrame(ctx context.Context) (websocket.MessageType, []byte, error) {
	for {
		c.mu.Lock()
		if len(c.inbox) > 0 {
			f := c.inbox[0]
			if f.err == nil { // the end stays, to be reported again
				c.inbox[0] = frame{} // let the consumed frame go
				c.inbox = c.inbox[1:]
			}
			c.mu.Unlock()
			return f.typ, f.b, f.err
		}
		c.mu.Unlock()
		select {
		case <-c.signal:
		case <-ctx.Done():
			return 0, nil, ctx.Err()
		}
	}
}

// next returns the next JSON event, reading a frame if none is pending.
func (c *client) next() (evt, error) {
	for len(c.pending) == 0 {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		typ, b, err := c.readFrame(ctx)
		cancel()
		if err != nil {
			return evt{}, err
		}
		if typ == websocket.MessageBinary {
			c.bins = append(c.bins, b)
			continue
		}
		c.frames++
		for _, line := range strings.Split(string(b), "\n") {
			var e evt
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				return evt{}, fmt.Errorf("bad event %q: %w", line, err)
			}
			c.pending = append(c.pending, e)
		}
	}
	e := c.pending[0]
	c.pending[0] = evt{} // let the consumed event go
	c.pending = c.pending[1:]
	return e, nil
}

// expect returns the next event, which must be of type typ.
func (c *client) expect(typ string) evt {
	c.t.Helper()
	e, err := c.next()
	assert.Success(c.t, err)
	if e.Type != typ {
		c.t.Fatalf("want a %s event, got %+v", typ, e)
	}
	return e
}

// until skips events until one of type typ arrives.
func (c *client) until(typ string) evt {
	c.t.Helper()
	for {
		e, err := c.next()
		assert.Success(c.t, err)
		if e.Type == typ {
			return e
		}
	}
}

// line returns the next plain-text frame.
func (c *client) line() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	typ, b, err := c.readFrame(ctx)
	assert.Success(c.t, err)
	assert.Equal(c.t, "frame type", websocket.MessageText, typ)
	return string(b)
}

// closed reads until the connection ends and returns the close code the
// server sent (-1 for none).
func (c *client) closed() websocket.StatusCode {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	for {
		_, _, err := c.readFrame(ctx)
		if err != nil {
			if ctx.Err() != nil {
				c.t.Fatalf("connection not closed within %v", testTimeout)
			}
			return websocket.CloseStatus(err)
		}
	}
}

// leaves records OnLeave calls.
type leaves struct {
	mu sync.Mutex
	ev []wsroom.LeaveEvent
	ch chan wsroom.LeaveEvent
}

func newLeaves() *leaves { return &leaves{ch: make(chan wsroom.LeaveEvent, 100)} }

func (l *leaves) hook(_ context.Context, e wsroom.LeaveEvent) {
	l.mu.Lock()
	l.ev = append(l.ev, e)
	l.mu.Unlock()
	l.ch <- e
}

// wait returns the next OnLeave event.
func (l *leaves) wait(t testing.TB) wsroom.LeaveEvent {
	t.Helper()
	select {
	case e := <-l.ch:
		return e
	case <-time.After(testTimeout):
		t.Fatal("no OnLeave within the timeout")
		return wsroom.LeaveEvent{}
	}
}

func (l *leaves) all() []wsroom.LeaveEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]wsroom.LeaveEvent(nil), l.ev...)
}

// rawConn is a hand-driven RFC 6455 client for what a well-behaved
// client library will not do: stop reading, ignore pings, send old
// handshakes.
type rawConn struct {
	t  testing.TB
	nc net.Conn
	br *bufio.Reader
}

// rawDial performs the handshake on a raw TCP connection. recvBuf, when
// positive, shrinks the socket's receive buffer first.
func (e *env) rawDial(path, subprotocol string, recvBuf int) *rawConn {
	e.t.Helper()
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	d := net.Dialer{Timeout: testTimeout}
	nc, err := d.Dial("tcp", addr)
	assert.Success(e.t, err)
	if recvBuf > 0 {
		assert.Success(e.t, nc.(*net.TCPConn).SetReadBuffer(recvBuf))
	}
	e.t.Cleanup(func() { nc.Close() })
	key := make([]byte, 16)
	rand.Read(key)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + base64.StdEncoding.EncodeToString(key) + "\r\n"
	if subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + subprotocol + "\r\n"
	}
	_, err = io.WriteString(nc, req+"\r\n")
	assert.Success(e.t, err)
	nc.SetReadDeadline(time.Now().Add(testTimeout))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	assert.Success(e.t, err)
	assert.Equal(e.t, "status", http.StatusSwitchingProtocols, resp.StatusCode)
	return &rawConn{t: e.t, nc: nc, br: br}
}

// writeFrame sends one masked frame.
func (r *rawConn) writeFrame(fin bool, opcode byte, payload []byte) {
	r.t.Helper()
	assert.Success(r.t, r.tryWriteFrame(fin, opcode, payload))
}

// tryWriteFrame sends one masked frame and reports a failure.
func (r *rawConn) tryWriteFrame(fin bool, opcode byte, payload []byte) error {
	var b []byte
	first := opcode
	if fin {
		first |= 0x80
	}
	b = append(b, first)
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n < 1<<16:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	mask := []byte{1, 2, 3, 4}
	b = append(b, mask...)
	for i, c := range payload {
		b = append(b, c^mask[i%4])
	}
	r.nc.SetWriteDeadline(time.Now().Add(testTimeout))
	_, err := r.nc.Write(b)
	return err
}

// readFrame reads one unmasked frame from the server.
func (r *rawConn) readFrame() (opcode byte, payload []byte, err error) {
	r.nc.SetReadDeadline(time.Now().Add(testTimeout))
	var h [2]byte
	if _, err := io.ReadFull(r.br, h[:]); err != nil {
		return 0, nil, err
	}
	n := uint64(h[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(r.br, l[:]); err != nil {
			return 0, nil, err
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	payload = make([]byte, n)
	_, err = io.ReadFull(r.br, payload)
	return h[0] & 0x0f, payload, err
}

// closeCode reads frames until a close frame and returns its code; -1 when
// the connection ends without one.
func (r *rawConn) closeCode() int {
	for {
		op, p, err := r.readFrame()
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, net.ErrClosed) || strings.Contains(err.Error(), "reset") {
				return -1
			}
			r.t.Fatalf("reading for a close frame: %v", err)
		}
		if op == 8 {
			if len(p) < 2 {
				return 1005
			}
			return int(binary.BigEndian.Uint16(p))
		}
	}
}
