package wsroom

import (
	"encoding/binary"
	"net"
	"sync"
)

// frameWriter is a connection's only way out. coder/websocket keeps the
// handshake, the reading side and the control frames: its buffered writer
// sits on top of frameWriter, and since wsroom never asks the library to
// write a data message, what the library writes is pings, pongs and close
// frames, one whole frame per flush. wsroom writes its data frames itself
// with writeFrame: header and payload in one system call, without the
// library's three locks and its copy through the buffer per message.
//
// mu keeps the two kinds of frame whole and in order, and once the
// library has sent a close frame, no data frame follows it (RFC 6455,
// 5.5.1). A frame is written under mu, so a write that blocks (a peer
// that reads nothing) holds back the library's control frames too, as the
// library's own lock would; deadlines on the connection bound it.
type frameWriter struct {
	conn net.Conn

	mu        sync.Mutex
	closeSent bool
	hdr       [maxHeader]byte // the header of a frame sent by writev, under mu
	vec       [2][]byte       // header and payload for writev, under mu
	bufs      net.Buffers     // over vec, under mu
}

// maxHeader is the longest header of a server frame (no masking key):
// two bytes and a 64-bit length.
const maxHeader = 10

// copyMax is the largest payload copied behind its header for one write;
// a larger one goes out with its header in one writev.
const copyMax = 1024

const (
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
)

// Write takes a flush of the library's buffered writer: one control frame.
func (w *frameWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) > 0 && p[0]&0x0f == opClose {
		w.closeSent = true
	}
	return w.conn.Write(p)
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
	if w.closeSent {
		return net.ErrClosed
	}
	putHeader(w.hdr[:hl], op, len(p))
	w.vec = [2][]byte{w.hdr[:hl], p}
	w.bufs = w.vec[:]
	_, err := w.bufs.WriteTo(w.conn) // consumes w.bufs, not w.vec
	w.vec = [2][]byte{}
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
	if w.closeSent {
		return net.ErrClosed
	}
	_, err := w.conn.Write(b)
	return err
}
