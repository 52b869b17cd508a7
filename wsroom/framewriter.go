package wsroom

import (
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"time"
)

// frameWriter is a connection's only way out.
//
// # Why
//
// coder/websocket writes a data message through three locks and a copy
// into its buffered writer, and flushes it in as many system calls as the
// buffer takes. wsroom writes its data frames itself: header and payload
// in one system call (one writev for a large payload), tried first without
// blocking, so that a connection with room in its socket buffer costs one
// write(2) and nothing else. coder/websocket keeps the handshake, the
// reading side and the control frames (ping, pong, close).
//
// # What it relies on, and what guards it
//
//   - The library writes through the *bufio.Writer it got from Hijack, whose
//     underlying writer wsroom replaced with this frameWriter (accept.go).
//     Write reassembles what the library flushes into whole frames, so a
//     control frame is never split by a data frame whatever the flush
//     boundaries (TestFrameWriterReassemblesControlFrames).
//   - wsroom never asks the library to write a data message, so the library
//     has no frame of its own in progress when wsroom writes one.
//   - permessage-deflate is off (AcceptOptions.CompressionMode is
//     CompressionDisabled, set explicitly): frames go out as they are
//     (TestCompressionNeverNegotiated).
//   - Once the library has sent a close frame, no data frame follows it
//     (RFC 6455, 5.5.1): writes fail with errCloseSent, which is not itself
//     a reason for a member to leave (TestNoDataFrameAfterCloseFrame).
//   - The first write error is sticky: after a write failed or timed out,
//     possibly mid-frame, nothing more is written on the connection, data or
//     control, so the peer never sees the rest of a torn frame as a frame
//     (TestFrameWriterStickyError).
//   - A raw read deadline wakes the library's reader, which is how a member
//     is told to leave without a goroutine or a context per read
//     (TestKillWakesReader).
//
// .ci/run also runs these tests against the newest coder/websocket the
// module proxy serves, since go.mod states only a minimum version.
type frameWriter struct {
	conn    net.Conn
	raw     rawWriter     // non-blocking write(2), when the connection has a descriptor
	timeout time.Duration // bounds a frame the connection cannot take at once; 0: none

	mu        sync.Mutex
	closeSent bool
	err       error           // the first write error, returned ever after
	tail      []byte          // the rest of a frame that tryFramed began; written before anything else
	pending   []byte          // a control frame the library flushed only in part
	hdr       [maxHeader]byte // the header of a frame sent by writev, under mu
	vec       [2][]byte       // header and payload for writev, under mu
	bufs      net.Buffers     // over vec, under mu
}

// errCloseSent is returned for a data frame once the close frame is out.
var errCloseSent = errors.New("wsroom: close frame already sent")

// maxHeader is the longest header of a server frame (no masking key):
// two bytes and a 64-bit length.
const maxHeader = 10

// copyMax is the largest payload copied behind its header for one write;
// a larger one goes out with its header in one writev.
const copyMax = 1024

const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
)

func newFrameWriter(c net.Conn, timeout time.Duration) *frameWriter {
	return &frameWriter{conn: c, raw: newRawWriter(c), timeout: max(timeout, 0)}
}

// setTimeout changes the bound on a frame the connection cannot take at
// once.
func (w *frameWriter) setTimeout(d time.Duration) {
	w.mu.Lock()
	w.timeout = max(d, 0)
	w.mu.Unlock()
}

// Write takes what the library's buffered writer flushes: control frames,
// whole or in part. Whole frames are written at once; a partial one waits
// for the rest of it.
func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return 0, w.err
	}
	if err := w.flushTail(); err != nil {
		return 0, err
	}
	n := len(p)
	if len(w.pending) > 0 {
		w.pending = append(w.pending, p...)
		p = w.pending
	}
	whole := 0
	for {
		size, ok := frameSize(p[whole:])
		if !ok {
			break
		}
		if p[whole]&0x0f == opClose {
			w.closeSent = true
		}
		whole += size
	}
	if whole > 0 {
		if err := w.write(p[:whole]); err != nil {
			return 0, err
		}
	}
	w.pending = append(w.pending[:0], p[whole:]...)
	if len(w.pending) == 0 {
		w.pending = nil
	}
	return n, nil
}

// frameSize returns the size of the server frame at the start of b, if b
// holds all of it.
func frameSize(b []byte) (int, bool) {
	if len(b) < 2 {
		return 0, false
	}
	hl, n := 2, int64(b[1]&0x7f)
	switch n {
	case 126:
		if len(b) < 4 {
			return 0, false
		}
		hl, n = 4, int64(binary.BigEndian.Uint16(b[2:]))
	case 127:
		if len(b) < 10 {
			return 0, false
		}
		hl, n = 10, int64(binary.BigEndian.Uint64(b[2:])&(1<<63-1))
	}
	if b[1]&0x80 != 0 {
		hl += 4 // a masking key: not from a server, but sized all the same
	}
	if int64(len(b)-hl) < n {
		return 0, false
	}
	return hl + int(n), true
}

// flushTail writes the rest of a frame that tryFramed began, under mu.
func (w *frameWriter) flushTail() error {
	if len(w.tail) == 0 {
		return nil
	}
	tail := w.tail
	w.tail = nil
	return w.write(tail)
}

// tryFramed writes b[maxHeader:] as one frame if the connection can take
// it at once, without blocking, as writeFramed does. sent reports that the
// frame is on its way: all of it was written, or its start was and the
// rest is kept, to be written before anything else (tail reports that;
// call flush soon). When the socket took nothing, or the writer has
// something of its own to finish, nothing is written and sent is false.
func (w *frameWriter) tryFramed(op byte, b []byte) (sent, tail bool, err error) {
	if w.raw == nil {
		return false, false, nil
	}
	n := len(b) - maxHeader
	hl := headerLen(n)
	b = b[maxHeader-hl:]
	putHeader(b[:hl], op, n)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return false, false, err
	}
	if len(w.tail) > 0 || len(w.pending) > 0 {
		return false, false, nil
	}
	k, err := w.raw.tryWrite(b)
	switch {
	case err != nil:
		w.err = err
		return false, false, err
	case k == 0:
		return false, false, nil
	case k < len(b):
		w.tail = append([]byte(nil), b[k:]...)
		return true, true, nil
	}
	return true, false, nil
}

// flush writes what tryFramed left of a frame, blocking within the
// timeout.
func (w *frameWriter) flush() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return w.flushTail()
}

// write sends b, under mu: one non-blocking attempt, then, for what the
// socket did not take, a blocking write bounded by the timeout. A failure
// is kept.
func (w *frameWriter) write(b []byte) error {
	if w.raw != nil {
		n, err := w.raw.tryWrite(b)
		if err != nil {
			w.err = err
			return err
		}
		if n == len(b) {
			return nil
		}
		b = b[n:]
	}
	if w.timeout > 0 {
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		defer w.conn.SetWriteDeadline(time.Time{})
	}
	if _, err := w.conn.Write(b); err != nil {
		w.err = err
		return err
	}
	return nil
}

// headerLen is the length of the header of a frame with n bytes of payload.
func headerLen(n int) int {
	switch {
	case n < 126:
		return 2
	case n <= 0xffff:
		return 4
	default:
		return maxHeader
	}
}

// putHeader writes the header of a final, unmasked frame into b, which is
// headerLen(n) bytes long.
func putHeader(b []byte, op byte, n int) {
	b[0] = 0x80 | op
	switch len(b) {
	case 2:
		b[1] = byte(n)
	case 4:
		b[1] = 126
		binary.BigEndian.PutUint16(b[2:], uint16(n))
	default:
		b[1] = 127
		binary.BigEndian.PutUint64(b[2:], uint64(n))
	}
}

// usable reports why no data frame may be written, under mu.
func (w *frameWriter) usable() error {
	if w.err != nil {
		return w.err
	}
	if w.closeSent {
		return errCloseSent
	}
	return nil
}

// writeFrame writes p as one frame. p is not kept.
func (w *frameWriter) writeFrame(op byte, p []byte) error {
	if len(p) <= copyMax {
		bp := getBuf()
		b := append((*bp)[:0], make([]byte, maxHeader)...)
		b = append(b, p...)
		err := w.writeFramed(op, b)
		*bp = b
		putBuf(bp)
		return err
	}
	hl := headerLen(len(p))
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.flushTail(); err != nil {
		return err
	}
	putHeader(w.hdr[:hl], op, len(p))
	w.vec = [2][]byte{w.hdr[:hl], p}
	w.bufs = w.vec[:]
	if w.timeout > 0 {
		w.conn.SetWriteDeadline(time.Now().Add(w.timeout))
		defer w.conn.SetWriteDeadline(time.Time{})
	}
	_, err := w.bufs.WriteTo(w.conn) // consumes w.bufs, not w.vec
	w.vec = [2][]byte{}
	if err != nil {
		w.err = err
	}
	return err
}

// writeFramed writes b[maxHeader:] as one frame; b[:maxHeader] is room for
// its header, which writeFramed fills in.
func (w *frameWriter) writeFramed(op byte, b []byte) error {
	n := len(b) - maxHeader
	hl := headerLen(n)
	b = b[maxHeader-hl:]
	putHeader(b[:hl], op, n)
	w.mu.Lock()
	defer w.mu.Unlock()
	if err := w.usable(); err != nil {
		return err
	}
	if err := w.flushTail(); err != nil {
		return err
	}
	return w.write(b)
}
