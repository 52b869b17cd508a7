//go:build unix

package wsroom

import (
	"net"
	"syscall"
)

// rawWriter writes without waiting: what the socket takes at once.
type rawWriter interface {
	tryWrite(b []byte) (int, error)
}

// fdWriter is a rawWriter over the connection's descriptor. Its fields are
// used under the frameWriter's lock.
type fdWriter struct {
	rc   syscall.RawConn
	fn   func(fd uintptr) bool // fdWriter.write, bound once
	b    []byte
	n    int
	werr error
}

// newRawWriter returns a rawWriter for c, or nil when c has no descriptor
// (a TLS connection, say): then every write may block, bounded by the
// write timeout.
func newRawWriter(c net.Conn) rawWriter {
	sc, ok := c.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	w := &fdWriter{rc: rc}
	w.fn = w.write
	return w
}

func (w *fdWriter) write(fd uintptr) bool {
	w.n, w.werr = syscall.Write(int(fd), w.b)
	return true // one attempt: never wait for the socket
}

// tryWrite writes what of b the socket takes at once; a full socket is not
// an error.
func (w *fdWriter) tryWrite(b []byte) (int, error) {
	w.b = b
	err := w.rc.Write(w.fn)
	n, werr := w.n, w.werr
	w.b, w.werr = nil, nil
	switch {
	case err != nil:
		return 0, err
	case werr == syscall.EAGAIN || werr == syscall.EINTR:
		return 0, nil
	case werr != nil:
		return 0, &net.OpError{Op: "write", Net: "tcp", Err: werr}
	}
	return n, nil
}
