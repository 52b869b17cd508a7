package wsroom

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
)

// event is one server-to-client event, encoded once and shared, read-only,
// by every member it is queued for.
type event struct {
	json   []byte   // one JSON object, for JSON members; nil: not for them
	plain  [][]byte // text frames for plain members; nil: nothing for them
	binary []byte   // a binary frame, for every member
	id     uint64   // the ID of a message event, else 0
}

// maxBatch bounds the size of a frame that batches queued JSON events.
const maxBatch = 64 << 10

// Queues and write buffers are taken from pools when a member has something
// to send and given back when it has sent it, so an idle member holds
// neither.
var (
	queuePool = sync.Pool{New: func() any { q := make([]*event, 0, 16); return &q }}
	bufPool   = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

func getQueue() *[]*event { return queuePool.Get().(*[]*event) }

func putQueue(q *[]*event) {
	if q == nil || cap(*q) > 1<<14 {
		return
	}
	clear(*q)
	*q = (*q)[:0]
	queuePool.Put(q)
}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxBatch*2 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// aLongTimeAgo is a deadline in the past, to wake a blocked read or write.
var aLongTimeAgo = time.Unix(1, 0)

// member is one WebSocket connection of the chat endpoint, from the upgrade
// until it leaves. Its reading goroutine is the HTTP handler's goroutine,
// which owns everything below: it starts the writer and the timers and
// waits for them before ServeHTTP returns. A writer goroutine exists only
// while the member has queued events.
type member struct {
	srv   *Server
	conn  *websocket.Conn
	nc    net.Conn     // the hijacked connection, for deadlines; may be nil
	fw    *frameWriter // the way out, under the library's buffered writer
	req   *http.Request
	room  string
	plain bool // speaks the plain-text protocol

	// Set by the reading goroutine before the member is added to its hub;
	// read by others only through the hub.
	hub        *hub
	name       string
	idx        int // index in hub.members, guarded by hub.mu
	identified bool
	identity   string // the name Identify gave
	since      msgID  // from the URL, for a join that names none
	peerCode   int    // close code received from the client
	joined     atomic.Bool
	connID     string      // identifies the connection in its reservation
	res        Reservation // the member's name, once reserved

	limiter       rateLimiter // used by the reading goroutine only
	writeLoopFunc func()      // m.writeLoop, bound once
	frames        int         // frames written, by the writer; counted once it exits
	stripe        uint32      // which stripe of the striped counters this member adds to

	mu        sync.Mutex
	queue     *[]*event // events waiting for the writer
	writing   bool      // a writer goroutine is running
	hold      bool      // joining: queue events but do not write them yet
	holdAt    int       // queue length when the hold began
	closing   bool      // leaving: accept no more events
	abort     bool      // drop queued events instead of writing them
	killed    bool      // a reason to close is recorded
	timersOff bool
	reason    LeaveReason
	code      websocket.StatusCode // 0: drop without a close handshake
	why       string
	err       error
	writeErr  error
	ping      *time.Timer
	joinTimer *time.Timer

	writer sync.WaitGroup // the writer goroutine
	timers sync.WaitGroup // timer callbacks in flight
}

// newMember returns a member for a connection that was just accepted.
func newMember(s *Server, c *websocket.Conn, nc net.Conn, fw *frameWriter, r *http.Request, room string, plain bool) *member {
	m := &member{
		srv:     s,
		conn:    c,
		nc:      nc,
		fw:      fw,
		req:     r,
		room:    room,
		plain:   plain,
		limiter: newRateLimiter(s.opts.RateLimit, s.opts.RateBurst),
	}
	m.writeLoopFunc = m.writeLoop // one allocation here, none per write burst
	m.stripe = nextStripe.Add(1)
	m.connID = strconv.FormatUint(uint64(m.stripe), 36)
	return m
}

// enqueue queues e for the member and starts a writer if none runs. It never
// blocks on the network: a member whose queue is full is killed as too slow.
func (m *member) enqueue(e *event) {
	if m.plain && e.plain == nil && e.binary == nil || !m.plain && e.json == nil && e.binary == nil {
		return
	}
	m.mu.Lock()
	if m.closing || m.abort {
		m.mu.Unlock()
		return
	}
	if m.queue == nil {
		m.queue = getQueue()
	}
	if limit := m.srv.opts.SendQueue; limit > 0 && len(*m.queue) >= limit {
		m.mu.Unlock()
		m.kill(ReasonSlow, websocket.StatusTryAgainLater, "too slow", nil)
		return
	}
	*m.queue = append(*m.queue, e)
	m.startWriterLocked()
	m.mu.Unlock()
}

func (m *member) startWriterLocked() {
	if m.writing || m.hold || m.queue == nil || len(*m.queue) == 0 {
		return
	}
	m.writing = true
	m.writer.Add(1)
	go m.writeLoopFunc()
}

// writeLoop writes queued events until the queue is empty, then exits.
func (m *member) writeLoop() {
	defer m.writer.Done()
	for {
		m.mu.Lock()
		q := m.queue
		if q == nil || len(*q) == 0 || m.abort || m.hold {
			m.srv.stats.frames.add(m.stripe, int64(m.frames))
			m.frames = 0
			m.writing = false // the next writer may start: it owns frames
			m.mu.Unlock()
			return
		}
		m.queue = nil
		timeout := m.srv.opts.WriteTimeout
		if m.closing {
			timeout = closeTimeout
		}
		m.mu.Unlock()

		err := m.write(*q, timeout)
		putQueue(q)
		if err != nil {
			m.mu.Lock()
			m.writeErr = err
			m.abort = true
			m.mu.Unlock()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				m.kill(ReasonSlow, websocket.StatusTryAgainLater, "write timeout", err)
			} else {
				m.kill(ReasonClosed, 0, "", err)
			}
		}
	}
}

// write sends a batch of events. JSON events are joined with "\n" into as
// few frames as maxBatch allows; plain lines and binary data go one per
// frame.
func (m *member) write(batch []*event, timeout time.Duration) error {
	if timeout > 0 && m.nc != nil {
		m.nc.SetWriteDeadline(time.Now().Add(timeout))
		defer m.nc.SetWriteDeadline(time.Time{})
	}
	frames := 0
	defer func() { m.frames += frames }()
	if m.plain {
		for _, e := range batch {
			if e.binary != nil {
				if err := m.writeMessage(websocket.MessageBinary, e.binary); err != nil {
					return err
				}
				frames++
				continue
			}
			for _, line := range e.plain {
				if err := m.writeMessage(websocket.MessageText, line); err != nil {
					return err
				}
				frames++
			}
		}
		return nil
	}
	if len(batch) == 1 && batch[0].binary == nil {
		frames++
		return m.writeMessage(websocket.MessageText, batch[0].json)
	}
	bp := getBuf()
	defer putBuf(bp)
	*bp = append((*bp)[:0], make([]byte, maxHeader)...) // room for the header
	flush := func() error {
		if len(*bp) == maxHeader {
			return nil
		}
		frames++
		err := m.writeFramed(websocket.MessageText, *bp)
		*bp = (*bp)[:maxHeader]
		return err
	}
	for _, e := range batch {
		if e.binary != nil {
			if err := flush(); err != nil {
				return err
			}
			frames++
			if err := m.writeMessage(websocket.MessageBinary, e.binary); err != nil {
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

// writeMessage writes one message in one frame, in one system call.
func (m *member) writeMessage(typ websocket.MessageType, p []byte) error {
	return m.fw.writeFrame(opcode(typ), p)
}

// writeFramed writes b[maxHeader:] as one message; b[:maxHeader] is room
// for the frame header.
func (m *member) writeFramed(typ websocket.MessageType, b []byte) error {
	return m.fw.writeFramed(opcode(typ), b)
}

func opcode(typ websocket.MessageType) byte {
	if typ == websocket.MessageBinary {
		return opBinary
	}
	return opText
}

// kill records why the member must go and wakes its reading goroutine,
// which then leaves the room and closes the connection. The first reason
// wins; kill never blocks.
func (m *member) kill(reason LeaveReason, code websocket.StatusCode, why string, err error) {
	m.mu.Lock()
	if m.killed {
		m.mu.Unlock()
		return
	}
	m.killed = true
	m.reason, m.code, m.why, m.err = reason, code, why, err
	if reason == ReasonSlow || code == 0 {
		m.abort = true // nothing more is worth writing
	}
	m.mu.Unlock()
	if reason == ReasonSlow {
		m.srv.stats.slow.Add(1)
	}
	if m.nc == nil {
		m.conn.CloseNow()
		return
	}
	m.nc.SetReadDeadline(aLongTimeAgo)
	if code == 0 {
		m.conn.CloseNow() // the peer is gone or mute: no close handshake
	}
}

// isKilled reports whether kill was called.
func (m *member) isKilled() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.killed
}

// startTimers arms the heartbeat and the join deadline.
func (m *member) startTimers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if iv := m.srv.opts.PingInterval; iv > 0 {
		m.ping = time.AfterFunc(iv, m.heartbeat)
	}
	if jt := m.srv.opts.JoinTimeout; jt > 0 && !m.joined.Load() {
		m.joinTimer = time.AfterFunc(jt, m.joinExpired)
	}
}

// enterTimer registers a running timer callback, unless the timers are off.
func (m *member) enterTimer() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.timersOff {
		return false
	}
	m.timers.Add(1)
	return true
}

// heartbeat pings the client and drops it if the pong does not come back
// within PongTimeout.
func (m *member) heartbeat() {
	if !m.enterTimer() {
		return
	}
	defer m.timers.Done()
	ctx, cancel := context.WithTimeout(context.Background(), m.srv.opts.PongTimeout)
	err := m.conn.Ping(ctx)
	cancel()
	if err != nil {
		m.kill(ReasonTimeout, 0, "no pong", err)
		return
	}
	m.mu.Lock()
	if !m.timersOff {
		m.ping.Reset(m.srv.opts.PingInterval)
	}
	m.mu.Unlock()
}

func (m *member) joinExpired() {
	if !m.enterTimer() {
		return
	}
	defer m.timers.Done()
	if !m.joined.Load() {
		m.kill(ReasonTimeout, websocket.StatusPolicyViolation, "join timeout", nil)
	}
}

// stopJoinTimer is called once the member joined.
func (m *member) stopJoinTimer() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.joinTimer != nil {
		m.joinTimer.Stop()
		m.joinTimer = nil
	}
}

// stopTimers turns the timers off; callbacks already running are waited for
// by close.
func (m *member) stopTimers() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.timersOff = true
	if m.ping != nil {
		m.ping.Stop()
	}
	if m.joinTimer != nil {
		m.joinTimer.Stop()
	}
}

// close ends the connection the way the recorded reason asks, after the
// writer has sent what it may still send, and waits for every goroutine the
// member started.
func (m *member) close() {
	m.stopTimers()
	m.mu.Lock()
	m.closing = true
	m.hold = false
	code, why := m.code, m.why
	m.mu.Unlock()

	if code == 0 {
		m.conn.CloseNow()
		m.writer.Wait()
	} else {
		// Let the writer send what is queued (an error event explaining the
		// close, say), within closeTimeout.
		if m.nc != nil {
			m.nc.SetWriteDeadline(time.Now().Add(closeTimeout))
		}
		m.writer.Wait()
		m.mu.Lock()
		writeErr := m.writeErr
		m.mu.Unlock()
		if writeErr != nil {
			m.conn.CloseNow()
		} else {
			if m.nc != nil {
				// Bound the close handshake, and undo the deadline that woke
				// the reader so that the peer's close frame can be read.
				m.nc.SetWriteDeadline(time.Now().Add(closeTimeout))
				m.nc.SetReadDeadline(time.Now().Add(closeTimeout))
			}
			m.conn.Close(code, why)
		}
	}
	m.timers.Wait()
	m.mu.Lock()
	q := m.queue
	m.queue = nil
	m.mu.Unlock()
	putQueue(q)
}

// closeTimeout bounds each half of a close handshake.
const closeTimeout = 5 * time.Second

// send queues an event for this member alone.
func (m *member) send(e *event) { m.enqueue(e) }

// sendError queues an error event for this member alone.
func (m *member) sendError(code, message string) {
	e := &event{}
	if m.plain {
		if line := m.srv.opts.Text.Error(code, message); line != "" {
			e.plain = [][]byte{[]byte(line)}
		}
	} else {
		e.json = encodeError(code, message)
	}
	m.send(e)
}
