package wsroom

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

// transport carries a member's events to its client and closes it; the
// member (membership.go) does not know the wire. wsConn is the WebSocket
// transport.
type transport interface {
	// send queues e for the client; it never blocks. A client that cannot
	// keep up is closed as too slow.
	send(e *event)
	// hold queues events without writing them until release, which writes
	// first ahead of those for which keep is true.
	hold()
	release(first *event, keep func(*event) bool)
	// kill records why the client must go and wakes the transport's
	// reading side, which then ends the member; the first reason wins and
	// kill never blocks.
	kill(reason LeaveReason, code websocket.StatusCode, why string, err error)
	// ended reports the recorded reason, the close code and the error,
	// once the reading side is done.
	ended() (LeaveReason, int, error)
	// isPlain reports whether the client speaks the plain-text protocol.
	isPlain() bool
}

// wsConn is one WebSocket connection of the chat or the echo endpoint, from
// the upgrade until it is closed: it reads messages, writes events through
// its outbox, pings the client, and closes the connection the way the
// recorded reason asks.
//
// Its reading goroutine is the HTTP handler's goroutine, which owns
// everything below: the outbox's writing goroutine (which exists only while
// something is queued) and the heartbeat's timer callbacks; close waits for
// both before ServeHTTP returns.
type wsConn struct {
	srv    *Server
	conn   *websocket.Conn
	nc     *inspectConn // the hijacked connection, for read deadlines
	fw     *frameWriter // the way out, under the library's buffered writer
	plain  bool
	ip     string // the client's address, for the per-address cap
	stripe uint32 // which stripe of the striped counters this connection adds to
	out    outbox
	ping   ownedTimer

	mu       sync.Mutex
	verdict  // why it ends, set by the first kill
	writeErr error
	peerCode int // close code received from the client
}

var _ transport = (*wsConn)(nil)

// aLongTimeAgo is a deadline in the past, to wake a blocked read.
var aLongTimeAgo = time.Unix(1, 0)

func newWSConn(s *Server, c *websocket.Conn, nc *inspectConn, fw *frameWriter, plain bool) *wsConn {
	w := &wsConn{srv: s, conn: c, nc: nc, fw: fw, plain: plain, stripe: nextStripe.Add(1)}
	if nc.ping != nil {
		nc.ping.c = w
	}
	w.out.init(w, plain, s.opts.SendQueue, s.opts.SendQueueBytes)
	return w
}

func (c *wsConn) send(e *event)                                { c.out.enqueue(e) }
func (c *wsConn) hold()                                        { c.out.startHold() }
func (c *wsConn) release(first *event, keep func(*event) bool) { c.out.release(first, keep) }
func (c *wsConn) isPlain() bool                                { return c.plain }

// watch implements the flow control's optional capability of a transport:
// f is told when the client falls behind and when it catches up.
func (c *wsConn) watch(f func(behind bool)) { c.out.setWatch(f) }

// read reads one whole message into a pooled buffer, after maxHeader bytes
// of room for a frame header: the echo endpoint sends it back from there.
func (c *wsConn) read() (websocket.MessageType, *[]byte, error) {
	typ, rd, err := c.conn.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	bp := getBuf()
	b := append((*bp)[:0], make([]byte, maxHeader)...)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBuf(bp)
			return 0, nil, err
		}
	}
	*bp = b
	c.srv.stats.in.add(c.stripe, 1)
	c.srv.stats.inBytes.add(c.stripe, int64(len(b)-maxHeader))
	return typ, bp, nil
}

// readFailed records why reading stopped, unless a reason is recorded
// already (a kill wakes the reader with a read deadline).
func (c *wsConn) readFailed(err error) {
	switch {
	case websocket.CloseStatus(err) != -1:
		c.mu.Lock()
		c.peerCode = int(websocket.CloseStatus(err))
		c.mu.Unlock()
		c.kill(ReasonClosed, 0, "", nil) // the library answered the close frame
	case errors.Is(err, websocket.ErrMessageTooBig):
		c.kill(ReasonPolicy, websocket.StatusMessageTooBig, "message too big", err)
	case errors.Is(err, errCloseReason):
		c.kill(ReasonPolicy, websocket.StatusInvalidFramePayloadData, "invalid UTF-8 in the close reason", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		c.kill(ReasonClosed, 0, "", err)
	default:
		c.kill(ReasonError, 0, "", err)
	}
}

// overflowed implements batchWriter: the client let its queue overflow.
func (c *wsConn) overflowed() {
	c.kill(ReasonSlow, websocket.StatusTryAgainLater, "too slow", nil)
}

// writeFailed implements batchWriter.
func (c *wsConn) writeFailed(err error) {
	c.mu.Lock()
	if c.writeErr == nil {
		c.writeErr = err
	}
	c.mu.Unlock()
	// errCloseSent: the library closed the connection (answering the
	// client's close, or failing a bad frame): the reader learns why.
	if reason, code, why, ok := writeFailure(err, errCloseSent); ok {
		c.kill(reason, code, why, err)
	}
}

// verdict is why a transport ends: set once, by its first kill, under
// the transport's lock.
type verdict struct {
	killed bool
	reason LeaveReason
	code   websocket.StatusCode // 0: no close frame (or close event)
	why    string
	err    error
}

// decide records the verdict under mu unless one was recorded already,
// and reports whether it did. After a slow client's end, or one without a
// close, nothing more in out is worth writing.
func (v *verdict) decide(mu *sync.Mutex, out *outbox, s *Server, reason LeaveReason, code websocket.StatusCode, why string, err error) bool {
	mu.Lock()
	if v.killed {
		mu.Unlock()
		return false
	}
	*v = verdict{killed: true, reason: reason, code: code, why: why, err: err}
	mu.Unlock()
	if reason == ReasonSlow || code == 0 {
		out.drop()
	}
	if reason == ReasonSlow {
		s.stats.slow.Add(1)
	}
	return true
}

// writeFailure says how a transport ends after a write failed with err: a
// write that timed out is a slow client (1013); any other failure is a
// closed connection. ok is false when err is end, the transport's own
// sign that it is already ending.
func writeFailure(err, end error) (reason LeaveReason, code websocket.StatusCode, why string, ok bool) {
	switch {
	case errors.Is(err, end):
		return 0, 0, "", false
	case errors.Is(err, os.ErrDeadlineExceeded):
		return ReasonSlow, websocket.StatusTryAgainLater, "write timeout", true
	default:
		return ReasonClosed, 0, "", true
	}
}

// writeBatch implements batchWriter: JSON events are joined with "\n"
// into as few frames as maxBatch allows; plain lines and binary data go one
// per frame.
func (c *wsConn) writeBatch(batch []*event) error {
	frames, bytes := 0, 0
	defer func() {
		c.srv.stats.frames.add(c.stripe, int64(frames))
		c.srv.stats.outBytes.add(c.stripe, int64(bytes))
	}()
	frame := func(op byte, p []byte) error {
		frames++
		bytes += headerLen(len(p)) + len(p)
		return c.fw.writeFrame(op, p)
	}
	if c.plain {
		for _, e := range batch {
			if e.binary != nil {
				if err := frame(opBinary, e.binary); err != nil {
					return err
				}
				continue
			}
			for _, line := range e.plain {
				if err := frame(opText, line); err != nil {
					return err
				}
			}
		}
		return nil
	}
	if len(batch) == 1 && batch[0].binary == nil {
		return frame(opText, batch[0].json)
	}
	bp := getBuf()
	defer putBuf(bp)
	*bp = append((*bp)[:0], make([]byte, maxHeader)...) // room for the header
	flush := func() error {
		if len(*bp) == maxHeader {
			return nil
		}
		frames++
		bytes += headerLen(len(*bp)-maxHeader) + len(*bp) - maxHeader
		err := c.fw.writeFramed(opText, *bp)
		*bp = (*bp)[:maxHeader]
		return err
	}
	for _, e := range batch {
		if e.binary != nil {
			if err := flush(); err != nil {
				return err
			}
			if err := frame(opBinary, e.binary); err != nil {
				return err
			}
			continue
		}
		if len(*bp) > maxHeader && len(*bp)-maxHeader+1+len(e.json) > maxBatch {
			if err := flush(); err != nil {
				return err
			}
		}
		if len(*bp) > maxHeader {
			*bp = append(*bp, '\n')
		}
		*bp = append(*bp, e.json...)
	}
	return flush()
}

// sendDirect is the optional capability of a transport that can write an
// event on the caller's goroutine (outbox.sendDirect).
func (c *wsConn) sendDirect(e *event) { c.out.sendDirect(e) }

// tryEvent implements batchWriter: an event of one frame is written if the
// socket takes it at once.
func (c *wsConn) tryEvent(e *event) (sent, tail bool, err error) {
	var op byte
	var p []byte
	switch {
	case e.binary != nil:
		op, p = opBinary, e.binary
	case c.plain && len(e.plain) == 1:
		op, p = opText, e.plain[0]
	case !c.plain:
		op, p = opText, e.json
	default:
		return false, false, nil
	}
	if len(p) > copyMax {
		return false, false, nil // a large frame goes out by writev, from the writer
	}
	bp := getBuf()
	b := append((*bp)[:0], make([]byte, maxHeader)...)
	b = append(b, p...)
	sent, tail, err = c.fw.tryFramed(op, b)
	*bp = b
	putBuf(bp)
	if sent {
		c.srv.stats.frames.add(c.stripe, 1)
		c.srv.stats.outBytes.add(c.stripe, int64(headerLen(len(p))+len(p)))
	}
	return sent, tail, err
}

// flushTail implements batchWriter.
func (c *wsConn) flushTail() error { return c.fw.flush() }

// kill implements transport.
func (c *wsConn) kill(reason LeaveReason, code websocket.StatusCode, why string, err error) {
	if !c.decide(&c.mu, &c.out, c.srv, reason, code, why, err) {
		return
	}
	c.nc.SetReadDeadline(aLongTimeAgo) // wakes the reader
	if code == 0 {
		c.conn.CloseNow() // the peer is gone or mute: no close handshake
	}
}

// isKilled reports whether kill was called.
func (c *wsConn) isKilled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.killed
}

// ended implements transport.
func (c *wsConn) ended() (LeaveReason, int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	code := int(c.code)
	switch {
	case c.reason == ReasonClosed && c.peerCode != 0:
		code = c.peerCode
	case c.code == 0:
		code = int(websocket.StatusAbnormalClosure)
	}
	return c.reason, code, c.err
}

// startHeartbeat arms the heartbeat.
func (c *wsConn) startHeartbeat() {
	if iv := c.srv.opts.PingInterval; iv > 0 {
		c.ping.start(iv, c.heartbeat)
	}
}

// heartbeat pings the client and drops it if the pong does not come back
// within PongTimeout.
func (c *wsConn) heartbeat() {
	ctx, cancel := context.WithTimeout(context.Background(), c.srv.opts.PongTimeout)
	err := c.conn.Ping(ctx)
	cancel()
	if err != nil {
		c.kill(ReasonTimeout, 0, "no pong", err)
		return
	}
	c.ping.reset(c.srv.opts.PingInterval)
}

// close ends the connection the way the recorded reason asks, after the
// writer has sent what it may still send, and waits for every goroutine the
// connection started.
func (c *wsConn) close() {
	c.ping.halt()
	c.mu.Lock()
	code, why := c.code, c.why
	c.mu.Unlock()
	if code == 0 {
		c.out.shut(true)
		c.conn.CloseNow()
		c.out.wait()
	} else {
		// Let the writer send what is queued (an error event explaining the
		// close, say), each frame within closeTimeout.
		c.fw.setTimeout(closeTimeout)
		c.out.shut(false)
		c.out.wait()
		c.mu.Lock()
		writeErr := c.writeErr
		c.mu.Unlock()
		if writeErr != nil && !errors.Is(writeErr, errCloseSent) {
			c.conn.CloseNow()
		} else {
			// Undo the deadline that woke the reader so that the peer's
			// close frame can be read, and bound the handshake: briefly
			// after a message refused at its header, whose payload (which
			// may never come) stands between us and the peer's close frame.
			wait := closeTimeout
			if code == websocket.StatusMessageTooBig {
				wait = tooBigCloseTimeout
			}
			c.nc.SetReadDeadline(time.Now().Add(wait))
			c.conn.Close(code, why)
		}
	}
	c.ping.wait()
}

// closeTimeout bounds each half of a close handshake.
const closeTimeout = 5 * time.Second

// tooBigCloseTimeout bounds the wait for the peer's close frame after a
// message refused for its size.
const tooBigCloseTimeout = time.Second
