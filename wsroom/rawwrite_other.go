//go:build !unix

package wsroom

import "net"

// rawWriter writes without waiting: what the socket takes at once.
type rawWriter interface {
	tryWrite(b []byte) (int, error)
}

// newRawWriter returns nil: every write may block, bounded by the write
// timeout.
func newRawWriter(net.Conn) rawWriter { return nil }
