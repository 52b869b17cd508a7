package wsroom

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// discardConn is a net.Conn whose writes succeed at once and whose reads
// block until it is closed: a client that reads everything, infinitely
// fast, without the kernel in the way.
type discardConn struct {
	closed chan struct{}
	once   sync.Once
	wrote  atomic.Int64
	writes atomic.Int64
}

func newDiscardConn() *discardConn { return &discardConn{closed: make(chan struct{})} }

func (c *discardConn) Read(p []byte) (int, error) {
	<-c.closed
	return 0, io.EOF
}

func (c *discardConn) Write(p []byte) (int, error) {
	c.wrote.Add(int64(len(p)))
	c.writes.Add(1)
	return len(p), nil
}

func (c *discardConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

func (c *discardConn) LocalAddr() net.Addr                { return &net.TCPAddr{} }
func (c *discardConn) RemoteAddr() net.Addr               { return &net.TCPAddr{} }
func (c *discardConn) SetDeadline(t time.Time) error      { return nil }
func (c *discardConn) SetReadDeadline(t time.Time) error  { return nil }
func (c *discardConn) SetWriteDeadline(t time.Time) error { return nil }

// hijackableRecorder is an http.ResponseWriter that hands over a discardConn.
type hijackableRecorder struct {
	*httptest.ResponseRecorder
	conn net.Conn
}

func (h hijackableRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	return h.conn, bufio.NewReadWriter(bufio.NewReader(h.conn), bufio.NewWriterSize(h.conn, 4096)), nil
}

// fakeConn returns a server-side websocket.Conn over a discardConn, and its
// frameWriter, made by websocket.Accept through a hijackRecorder as the real
// handler makes them.
func fakeConn(tb testing.TB, s *Server, subprotocol string) (*websocket.Conn, *inspectConn, *discardConn, *frameWriter) {
	tb.Helper()
	dc := newDiscardConn()
	r := httptest.NewRequest(http.MethodGet, "/chat", nil)
	r.Header.Set("Connection", "Upgrade")
	r.Header.Set("Upgrade", "websocket")
	r.Header.Set("Sec-WebSocket-Version", "13")
	r.Header.Set("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
	if subprotocol != "" {
		r.Header.Set("Sec-WebSocket-Protocol", subprotocol)
	}
	hr := &hijackRecorder{ResponseWriter: hijackableRecorder{httptest.NewRecorder(), dc}, s: s}
	c, err := websocket.Accept(hr, r, &websocket.AcceptOptions{Subprotocols: []string{Subprotocol}})
	if err != nil {
		tb.Fatal(err)
	}
	return c, hr.conn, dc, hr.fw
}

// benchRoom is a hub with n members joined directly, over discard
// connections.
type benchRoom struct {
	srv     *Server
	h       *hub
	members []*member
	wss     []*wsConn
	conns   []*discardConn
}

func newBenchRoom(tb testing.TB, n int, plain bool) *benchRoom {
	tb.Helper()
	srv, err := New(&Options{SendQueue: -1, RateLimit: -1, PingInterval: -1, JoinTimeout: -1})
	if err != nil {
		tb.Fatal(err)
	}
	br := &benchRoom{srv: srv, h: newHub(srv, "bench")}
	sub := Subprotocol
	if plain {
		sub = ""
	}
	req := httptest.NewRequest(http.MethodGet, "/chat/bench", nil)
	for i := range n {
		c, ic, dc, fw := fakeConn(tb, srv, sub)
		wc := newWSConn(srv, c, ic, fw, plain)
		m := newMember(srv, wc, req, &admission{room: "bench"})
		m.name = fmt.Sprint("m", i)
		m.joined.Store(true)
		br.h.add(m)
		br.members = append(br.members, m)
		br.wss = append(br.wss, wc)
		br.conns = append(br.conns, dc)
	}
	tb.Cleanup(func() {
		for i, wc := range br.wss {
			wc.conn.CloseNow()
			wc.out.wg.Wait()
			br.members[i].cancel()
		}
	})
	return br
}

// drain waits until every member's writer is idle.
func (br *benchRoom) drain() {
	for _, wc := range br.wss {
		wc.out.wg.Wait()
	}
}

// BenchmarkBroadcast measures one message delivered to n members: encoded
// once, queued for each, written by each member's writer through its
// frameWriter. allocs/recipient must stay at zero.
func BenchmarkBroadcast(b *testing.B) {
	for _, n := range []int{1, 10, 100, 1000} {
		for _, plain := range []bool{false, true} {
			name := fmt.Sprintf("members=%d/json", n)
			if plain {
				name = fmt.Sprintf("members=%d/plain", n)
			}
			b.Run(name, func(b *testing.B) {
				br := newBenchRoom(b, n, plain)
				p := Publication{Room: "bench", Type: PubMessage, Message: Message{ID: 1, From: "alice", Text: "hello, everyone", Time: time.Now()}}
				br.h.deliver(&p, &route{}) // warm the pools
				br.drain()
				b.ReportAllocs()
				b.ResetTimer()
				var before, after runtimeAllocs
				before.read()
				for b.Loop() {
					br.h.deliver(&p, &route{})
					br.drain()
				}
				after.read()
				b.ReportMetric(float64(after.mallocs-before.mallocs)/float64(b.N)/float64(n), "allocs/recipient")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(n), "ns/recipient")
			})
		}
	}
}

// BenchmarkBroadcastBurst measures a burst of messages to n members, the
// case where queued events are batched into one frame per member.
func BenchmarkBroadcastBurst(b *testing.B) {
	const burst = 100
	for _, n := range []int{100, 1000} {
		b.Run(fmt.Sprintf("members=%d/burst=%d", n, burst), func(b *testing.B) {
			br := newBenchRoom(b, n, false)
			msgs := make([]Publication, burst)
			for i := range msgs {
				msgs[i] = Publication{Room: "bench", Type: PubMessage, Message: Message{ID: uint64(i + 1), From: "alice", Text: "hello, everyone", Time: time.Now()}}
			}
			b.ReportAllocs()
			var writes0 int64
			for _, c := range br.conns {
				writes0 += c.writes.Load()
			}
			for b.Loop() {
				for _, p := range msgs {
					br.h.deliver(&p, &route{})
				}
				br.drain()
			}
			var writes int64
			for _, c := range br.conns {
				writes += c.writes.Load()
			}
			deliveries := float64(b.N) * burst * float64(n)
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/deliveries, "ns/delivery")
			b.ReportMetric(float64(writes-writes0)/deliveries, "writes/delivery")
		})
	}
}

// BenchmarkEnqueue measures queueing one shared event for one member whose
// writer is busy (so no goroutine starts).
func BenchmarkEnqueue(b *testing.B) {
	br := newBenchRoom(b, 1, false)
	o := &br.wss[0].out
	e := &event{json: encodeMessage(Message{ID: 1, From: "a", Text: "b", Time: time.Now()})}
	o.mu.Lock()
	o.writing = true // pretend a writer runs
	o.mu.Unlock()
	b.ReportAllocs()
	for b.Loop() {
		o.enqueue(e)
		if len(*o.queue) == 4096 {
			o.mu.Lock()
			putQueue(o.queue)
			o.queue, o.qbytes = nil, 0
			o.mu.Unlock()
		}
	}
	o.mu.Lock()
	o.writing = false
	o.mu.Unlock()
}

func BenchmarkEncodeMessage(b *testing.B) {
	m := Message{ID: 1732150000000001, From: "黄晓安", Text: `hello, "world" — a typical chat line of some length`, Time: time.Now()}
	b.ReportAllocs()
	for b.Loop() {
		encodeMessage(m)
	}
}

func BenchmarkDecodeClientFrame(b *testing.B) {
	frame := []byte(`{"type":"message","text":"hello, world — a typical chat line"}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeClientFrame(frame); err != nil {
			b.Fatal(err)
		}
	}
}

type runtimeAllocs struct{ mallocs uint64 }

func (r *runtimeAllocs) read() {
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	r.mallocs = ms.Mallocs
}
