package wsroom

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// sseConn is the transport of a member of the HTTP fallback: a
// Server-Sent Events stream carries its events down, and POSTs carry its
// frames up. The events are those of the JSON protocol, one per SSE event
// ("data:" line), a message's with its ID as the SSE "id:"; a binary
// message arrives as {"type":"binary","data":"<base64>"}. The stream
// starts with an "event: stream" naming the token that POSTs must carry,
// and ends, when the server ends it, with an "event: close" giving the
// close code and reason the WebSocket close frame would have.
//
// Its handler goroutine, the stream's GET, owns the member and everything
// below it: the outbox's writing goroutine (which exists only while
// something is queued) and the heartbeat's timer callbacks, which close
// waits for before the handler returns. POST handlers, on other
// goroutines or on other servers (through the broker), never call the
// member: they hand their frames to the handler goroutine through posts,
// a small bounded queue.
type sseConn struct {
	srv    *Server
	w      http.ResponseWriter
	rc     *http.ResponseController
	token  string
	ip     string // the client's address, for the per-address cap
	stripe uint32
	out    outbox
	beat   ownedTimer     // heartbeat comments, and the POST liveness check
	posts  chan sseFrames // from POSTs, to the handler goroutine
	wake   chan struct{}  // closed by kill

	lastPost  atomic.Int64 // UnixNano of the client's last POST
	lastWrite atomic.Int64 // UnixNano of the last write to the stream

	wmu       sync.Mutex // the ResponseWriter: the writer, the heartbeat and close take turns
	timeout   time.Duration
	deadlines bool // the ResponseWriter takes write deadlines
	done      bool // the handler is returning: nothing more is written

	mu       sync.Mutex
	verdict  // why it ends, set by the first kill
	writeErr error
}

var (
	_ transport   = (*sseConn)(nil)
	_ batchWriter = (*sseConn)(nil)
)

// sseFrames is what one POST carried.
type sseFrames struct {
	data   []byte // text frames, one a line; or one binary message
	binary bool
	tooBig bool // the body was over its limit: close with 1009
}

// postQueue is how many POSTs may wait for the stream's goroutine; one
// more is refused with 429. The client sends one POST at a time.
const postQueue = 8

func newSSEConn(s *Server, w http.ResponseWriter, token, ip string) *sseConn {
	c := &sseConn{
		srv: s, w: w, rc: http.NewResponseController(w), token: token, ip: ip,
		stripe:    nextStripe.Add(1),
		posts:     make(chan sseFrames, postQueue),
		wake:      make(chan struct{}),
		timeout:   max(s.opts.WriteTimeout, 0),
		deadlines: true,
	}
	c.out.init(c, false, s.opts.SendQueue, s.opts.SendQueueBytes)
	now := time.Now().UnixNano()
	c.lastPost.Store(now)
	c.lastWrite.Store(now)
	return c
}

func (c *sseConn) send(e *event)                                { c.out.enqueue(e) }
func (c *sseConn) hold()                                        { c.out.startHold() }
func (c *sseConn) release(first *event, keep func(*event) bool) { c.out.release(first, keep) }
func (c *sseConn) isPlain() bool                                { return false }

// kill implements transport.
func (c *sseConn) kill(reason LeaveReason, code websocket.StatusCode, why string, err error) {
	if !c.decide(&c.mu, &c.out, c.srv, reason, code, why, err) {
		return
	}
	close(c.wake)
}

func (c *sseConn) isKilled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killed
}

// ended implements transport. A stream the client dropped, or that was
// dropped as dead, reports 1006, as a WebSocket without a close frame
// does.
func (c *sseConn) ended() (LeaveReason, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	code := int(c.code)
	if code == 0 {
		code = int(websocket.StatusAbnormalClosure)
	}
	return c.reason, code, c.err
}

// enqueue hands a POST's frames to the stream's goroutine and returns the
// status to answer the POST with. Any POST, even an empty one, shows that
// the client is alive.
func (c *sseConn) enqueue(f sseFrames) int {
	c.lastPost.Store(time.Now().UnixNano())
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.killed {
		return http.StatusNotFound // the stream is ending
	}
	if len(f.data) == 0 && !f.tooBig && !f.binary {
		return http.StatusAccepted // a keepalive
	}
	select {
	case c.posts <- f:
		return http.StatusAccepted
	default:
		c.srv.refused("429")
		return http.StatusTooManyRequests
	}
}

// serveMember is the member's life on the stream's goroutine: it runs the
// frames POSTs bring until the member must go or the client goes away,
// then the member leaves and the stream ends.
func (c *sseConn) serveMember(m *member, adm *admission, gone <-chan struct{}) {
	c.startHeartbeat()
	m.start(adm)
	for !c.isKilled() {
		select {
		case f := <-c.posts:
			c.handle(m, f)
		case <-c.wake:
		case <-gone:
			c.kill(ReasonClosed, 0, "", nil) // the client closed the stream
		}
	}
	m.leave()
	c.close()
}

// handle gives the member what one POST carried: a binary message, or text
// frames, one a line.
func (c *sseConn) handle(m *member, f sseFrames) {
	switch {
	case f.tooBig:
		c.kill(ReasonPolicy, websocket.StatusMessageTooBig, "message too big", nil)
	case f.binary:
		c.srv.stats.in.add(c.stripe, 1)
		c.srv.stats.inBytes.add(c.stripe, int64(len(f.data)))
		m.handle(websocket.MessageBinary, f.data)
	default:
		data := f.data
		for len(data) > 0 && !c.isKilled() {
			line := data
			if i := bytes.IndexByte(data, '\n'); i >= 0 {
				line, data = data[:i], data[i+1:]
			} else {
				data = nil
			}
			line = bytes.TrimSuffix(line, []byte("\r"))
			if len(line) == 0 {
				continue
			}
			c.srv.stats.in.add(c.stripe, 1)
			c.srv.stats.inBytes.add(c.stripe, int64(len(line)))
			m.handle(websocket.MessageText, line)
		}
	}
}

// startHeartbeat arms the heartbeat: every PingInterval a comment goes
// down the stream (unless something else just did), which keeps proxies
// from closing it as idle, and a client that has not POSTed anything for
// PingInterval+PongTimeout is dropped as gone.
func (c *sseConn) startHeartbeat() {
	if iv := c.srv.opts.PingInterval; iv > 0 {
		c.beat.start(iv, c.heartbeat)
	}
}

func (c *sseConn) heartbeat() {
	o := c.srv.opts
	now := time.Now()
	if now.Sub(time.Unix(0, c.lastPost.Load())) > o.PingInterval+o.PongTimeout {
		c.kill(ReasonTimeout, 0, "no POST in time", nil)
		return
	}
	if now.Sub(time.Unix(0, c.lastWrite.Load())) >= o.PingInterval/2 && c.wmu.TryLock() {
		err := c.writeLocked(heartbeatComment)
		c.wmu.Unlock()
		if err != nil {
			c.writeFailed(err)
			return
		}
	}
	c.beat.reset(o.PingInterval)
}

// heartbeatComment is an SSE comment: clients ignore it, proxies see bytes.
var heartbeatComment = []byte(":\n\n")

// writeLocked writes b to the stream and flushes it, within the write
// timeout, under wmu.
func (c *sseConn) writeLocked(b []byte) error {
	if c.done {
		return errStreamDone
	}
	if c.deadlines && c.timeout > 0 {
		if err := c.rc.SetWriteDeadline(time.Now().Add(c.timeout)); errors.Is(err, http.ErrNotSupported) {
			c.deadlines = false
		}
	}
	if _, err := c.w.Write(b); err != nil {
		return err
	}
	if err := c.rc.Flush(); err != nil {
		return err
	}
	c.lastWrite.Store(time.Now().UnixNano())
	c.srv.stats.frames.add(c.stripe, 1)
	c.srv.stats.outBytes.add(c.stripe, int64(len(b)))
	return nil
}

// errStreamDone fails a write after the handler finished the response.
var errStreamDone = errors.New("wsroom: event stream ended")

// writeBatch implements batchWriter: the events go out as SSE events in
// one write and one flush, in chunks of at most maxBatch bytes.
func (c *sseConn) writeBatch(batch []*event) error {
	bp := getBuf()
	defer putBuf(bp)
	b := (*bp)[:0]
	c.wmu.Lock()
	defer c.wmu.Unlock()
	for _, e := range batch {
		b = appendSSE(b, e)
		if len(b) >= maxBatch {
			if err := c.writeLocked(b); err != nil {
				*bp = b
				return err
			}
			b = b[:0]
		}
	}
	*bp = b
	if len(b) == 0 {
		return nil
	}
	return c.writeLocked(b)
}

// appendSSE appends e as one SSE event.
func appendSSE(b []byte, e *event) []byte {
	if e.binary != nil {
		b = append(b, `data: {"type":"binary","data":"`...)
		b = append(b, base64Of(e)...)
		return append(b, "\"}\n\n"...)
	}
	id := e.id
	if id == 0 && bytes.HasPrefix(e.json, welcomePrefix) {
		id = highestID(e.json)
	}
	if id != 0 {
		b = append(b, "id: "...)
		b = strconv.AppendUint(b, id, 10)
		b = append(b, '\n')
	}
	b = append(b, "data: "...)
	b = append(b, e.json...) // one line: appendString escapes CR and LF
	return append(b, "\n\n"...)
}

var welcomePrefix = []byte(`{"type":"welcome",`)

// highestID returns the highest message ID in an encoded welcome, so that
// its SSE event carries it: a client that reconnects with Last-Event-ID
// resumes after the history it was given. Inside a JSON string a quote is
// escaped, so `"id":"` is only ever a key.
func highestID(b []byte) uint64 {
	var top uint64
	key := []byte(`"id":"`)
	for {
		i := bytes.Index(b, key)
		if i < 0 {
			return top
		}
		b = b[i+len(key):]
		j := bytes.IndexByte(b, '"')
		if j < 0 {
			return top
		}
		if v, err := strconv.ParseUint(string(b[:j]), 10, 64); err == nil {
			top = max(top, v)
		}
	}
}

// base64Of returns the base64 of a binary event, encoded once for all the
// fallback members it is queued for: the last few encodings are kept,
// with their events (so an event's address is not reused while it is a
// key).
func base64Of(e *event) []byte {
	b64.mu.Lock()
	defer b64.mu.Unlock()
	for i, k := range b64.keys {
		if k == e {
			return b64.vals[i]
		}
	}
	v := base64.StdEncoding.AppendEncode(nil, e.binary)
	b64.keys[b64.next], b64.vals[b64.next] = e, v
	b64.next = (b64.next + 1) % len(b64.keys)
	return v
}

var b64 struct {
	mu   sync.Mutex
	keys [8]*event
	vals [8][]byte
	next int
}

// overflowed implements batchWriter: the client let its queue overflow.
func (c *sseConn) overflowed() {
	c.kill(ReasonSlow, websocket.StatusTryAgainLater, "too slow", nil)
}

// writeFailed implements batchWriter.
func (c *sseConn) writeFailed(err error) {
	c.mu.Lock()
	if c.writeErr == nil {
		c.writeErr = err
	}
	c.mu.Unlock()
	if reason, code, why, ok := writeFailure(err, errStreamDone); ok {
		c.kill(reason, code, why, err)
	}
}

// close ends the stream the way the recorded reason asks, after the
// writer has sent what it may still send, and waits for every goroutine
// the stream started. Unless the client is gone, the last event says why
// the stream ends.
func (c *sseConn) close() {
	c.beat.halt()
	c.mu.Lock()
	code, why := c.code, c.why
	c.mu.Unlock()
	if code == 0 {
		c.out.shut(true)
		c.out.wait()
	} else {
		c.wmu.Lock()
		c.timeout = closeTimeout
		c.wmu.Unlock()
		c.out.shut(false) // what is queued (an error event explaining the close, say)
		c.out.wait()
		c.mu.Lock()
		failed := c.writeErr != nil
		c.mu.Unlock()
		if !failed {
			c.wmu.Lock()
			c.writeLocked(closeEvent(code, why))
			c.wmu.Unlock()
		}
	}
	c.beat.wait()
	c.wmu.Lock()
	c.done = true
	if c.deadlines {
		c.rc.SetWriteDeadline(time.Time{})
	}
	c.wmu.Unlock()
}

// closeEvent is the stream's last event: the close code and reason.
func closeEvent(code websocket.StatusCode, why string) []byte {
	b := []byte("event: close\ndata: {\"code\":")
	b = strconv.AppendInt(b, int64(code), 10)
	b = append(b, `,"reason":`...)
	b = appendString(b, why)
	return append(b, "}\n\n"...)
}

// streamHello is the stream's first event: the token that POSTs must
// carry, where to POST, how often the client must POST at least
// (heartbeat, ms; an empty POST will do) before the stream is dropped
// (timeout, ms), and the size limits of a POST's body.
func streamHello(token, post string, o *Options) []byte {
	b := []byte("retry: 2000\nevent: stream\ndata: {\"token\":")
	b = appendString(b, token)
	b = append(b, `,"post":`...)
	b = appendString(b, post)
	hb, to := int64(0), int64(0)
	if o.PingInterval > 0 {
		hb, to = o.PingInterval.Milliseconds(), (o.PingInterval + o.PongTimeout).Milliseconds()
	}
	b = append(b, `,"heartbeat":`...)
	b = strconv.AppendInt(b, hb, 10)
	b = append(b, `,"timeout":`...)
	b = strconv.AppendInt(b, to, 10)
	b = append(b, `,"maxText":`...)
	b = strconv.AppendInt(b, o.MaxMessageBytes, 10)
	b = append(b, `,"maxBinary":`...)
	b = strconv.AppendInt(b, o.MaxBinaryBytes, 10)
	return append(b, "}\n\n"...)
}

// watchShutdown kills the stream with 1001 when the server shuts down; stop
// undoes it.
func (c *sseConn) watchShutdown() (stop func() bool) {
	return context.AfterFunc(c.srv.ctx, func() {
		c.kill(ReasonShutdown, websocket.StatusGoingAway, "server shutting down", nil)
	})
}
