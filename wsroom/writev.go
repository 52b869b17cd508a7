package wsroom

import (
	"net"
	"sync"
	"sync/atomic"
)

// frameWriter sits between coder/websocket's buffered writer and the
// connection. The library writes a frame's header and payload through a
// buffer of bufSize bytes and flushes it whole when a frame does not fit, so
// a message larger than the buffer costs two write system calls, and the
// peer two wake-ups. While hold is on (around the write of one message that
// does not fit), frameWriter keeps such a full buffer and sends it with the
// rest of the frame in one writev.
//
// The library writes every frame (data, ping, pong, close) under its own
// lock, so bytes reach frameWriter in order; mu guards the held bytes
// against end, which runs outside that lock.
type frameWriter struct {
	conn    net.Conn
	bufSize int // the size of the buffered writer above

	hold atomic.Bool // set by begin, cleared by end
	mu   sync.Mutex
	held *[]byte // full buffers waiting for the rest of their frame
	bufs net.Buffers
}

var heldPool = sync.Pool{New: func() any { b := make([]byte, 0, 8192); return &b }}

func (w *frameWriter) Write(p []byte) (int, error) {
	if !w.hold.Load() {
		// Nothing can be held: held is only set while hold is on, and what
		// end leaves to flush is whole frames, which may go in any order
		// with a control frame.
		return w.conn.Write(p)
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(p) == w.bufSize {
		// A full buffer, flushed because the frame may go on: keep it.
		if w.held == nil {
			w.held = heldPool.Get().(*[]byte)
		}
		*w.held = append(*w.held, p...)
		return len(p), nil
	}
	if w.held == nil {
		return w.conn.Write(p)
	}
	return w.flushWith(p)
}

// flushWith writes what is held, then p, in one system call. Called with
// mu held.
func (w *frameWriter) flushWith(p []byte) (int, error) {
	w.bufs = append(w.bufs[:0], *w.held, p)
	_, err := w.bufs.WriteTo(w.conn)
	w.bufs = w.bufs[:0]
	*w.held = (*w.held)[:0]
	heldPool.Put(w.held)
	w.held = nil
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// begin and end bracket the write of one message of n bytes.
func (w *frameWriter) begin(n int) {
	if n+14 <= w.bufSize { // 14: the largest frame header
		return // fits: nothing to hold, nothing to lock
	}
	w.hold.Store(true)
}

// end sends what is still held: a frame that filled the buffer exactly.
func (w *frameWriter) end(n int) error {
	if n+14 <= w.bufSize {
		return nil
	}
	w.hold.Store(false)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.held != nil {
		_, err := w.flushWith(nil)
		return err
	}
	return nil
}
