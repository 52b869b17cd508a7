package wsroom

import (
	"encoding/binary"
	"fmt"
	"net"

	"github.com/coder/websocket"
)

// errTooBig fails the reading of a message whose frames announce more than
// its limit. It wraps websocket.ErrMessageTooBig, as the library's own
// limit does.
var errTooBig = fmt.Errorf("wsroom: message larger than its limit: %w", websocket.ErrMessageTooBig)

// inspectConn is the hijacked connection as coder/websocket reads it. It
// follows the client's frame headers as the bytes go by, so that a message
// that announces more than its limit (text and binary have their own) is
// refused as soon as its header arrives, not after its payload, which a
// hostile client may never send. What the library's read limit would see
// only byte by byte, the inspector sees at once.
//
// The inspector only reads headers; the library still parses and checks
// every frame.
type inspectConn struct {
	net.Conn
	pre             []byte // what the HTTP server had read past the handshake
	textMax, binMax int64  // < 0: no limit

	hdr     [14]byte // a frame header being read
	hn      int      // bytes of it read
	payload uint64   // payload bytes left in the current frame
	msgOp   byte     // opcode of the data message in progress; 0 none
	msgLen  uint64   // its length so far
	err     error    // sticky: every read after a refused header fails
}

func newInspectConn(c net.Conn, pre []byte, textMax, binMax int64) *inspectConn {
	return &inspectConn{Conn: c, pre: pre, textMax: textMax, binMax: binMax}
}

// Read reads from the connection and inspects what it returns. When a
// header is refused, Read returns the bytes before it, and the error from
// then on.
func (c *inspectConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	var n int
	var err error
	if len(c.pre) > 0 {
		n = copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
	} else {
		n, err = c.Conn.Read(p)
	}
	if n > 0 {
		if ok := c.inspect(p[:n]); ok < n {
			c.err = errTooBig
			if ok == 0 {
				return 0, c.err
			}
			return ok, nil
		}
	}
	return n, err
}

// inspect follows the frames in b and returns how many bytes of it come
// before a refused header (len(b) if none).
func (c *inspectConn) inspect(b []byte) int {
	i := 0
	for i < len(b) {
		if c.payload > 0 {
			skip := min(c.payload, uint64(len(b)-i))
			c.payload -= skip
			i += int(skip)
			continue
		}
		start := i - c.hn // where this header began, if in b
		c.hdr[c.hn] = b[i]
		c.hn++
		i++
		need := 2
		if c.hn >= 2 {
			switch c.hdr[1] & 0x7f {
			case 126:
				need = 4
			case 127:
				need = 10
			}
			if c.hdr[1]&0x80 != 0 {
				need += 4
			}
		}
		if c.hn < need {
			continue
		}
		c.hn = 0
		if !c.frame() {
			return max(start, 0)
		}
	}
	return len(b)
}

// frame takes a whole header from c.hdr and reports whether it is within
// the limits.
func (c *inspectConn) frame() bool {
	fin, op := c.hdr[0]&0x80 != 0, c.hdr[0]&0x0f
	n := uint64(c.hdr[1] & 0x7f)
	switch n {
	case 126:
		n = uint64(binary.BigEndian.Uint16(c.hdr[2:]))
	case 127:
		n = binary.BigEndian.Uint64(c.hdr[2:])
	}
	c.payload = n
	switch op {
	case opText, opBinary:
		c.msgOp, c.msgLen = op, 0
	case opCont:
		if c.msgOp == 0 {
			return true // the library fails an orphan continuation
		}
	default:
		return true // control frames: the library bounds them
	}
	c.msgLen += n
	limit := c.textMax
	if c.msgOp == opBinary {
		limit = c.binMax
	}
	if limit >= 0 && (c.msgLen > uint64(limit) || n > uint64(limit)) {
		return false
	}
	if fin {
		c.msgOp, c.msgLen = 0, 0
	}
	return true
}
