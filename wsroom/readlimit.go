package wsroom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// errTooBig fails the reading of a message whose frames announce more than
// its limit. It wraps websocket.ErrMessageTooBig, as the library's own
// limit does.
var errTooBig = fmt.Errorf("wsroom: message larger than its limit: %w", websocket.ErrMessageTooBig)

// errCloseReason fails the reading of a close frame whose reason is not
// valid UTF-8, which the library would echo back as it is (RFC 6455,
// 5.5.1 and 8.1: the connection fails with 1007).
var errCloseReason = errors.New("wsroom: close reason is not valid UTF-8")

// inspectConn is the hijacked connection as coder/websocket reads it. It
// follows the client's frame headers as the bytes go by, so that a message
// that announces more than its limit (text and binary have their own) is
// refused as soon as its header arrives, not after its payload, which a
// hostile client may never send.
//
// A refused frame is taken out of the stream, header and payload, and the
// read that would have returned it fails with errTooBig, once: the member
// then closes with 1009 at once, and the library's close handshake reads on
// past the refused frame to the client's close frame, so that the client
// sees the close frame instead of a reset. The handshake is bounded in
// time, whether the client sends the payload it announced or not.
//
// It also holds back each close frame until it has all of it, to check that
// its reason is valid UTF-8 (the library does not), failing the read with
// errCloseReason otherwise.
//
// The inspector only reads headers and close frames; the library still
// parses and checks every frame.
type inspectConn struct {
	net.Conn
	pre             []byte // what the HTTP server had read past the handshake
	textMax, binMax int64  // < 0: no limit

	hdr      [14]byte   // a frame header being read
	hn       int        // bytes of it read
	payload  uint64     // payload bytes left in the current frame
	dropping bool       // the current frame was refused: its payload is dropped
	msgOp    byte       // opcode of the data message in progress; 0 none
	msgLen   uint64     // its length so far
	err      error      // returned by the next Read, once
	ping     *pingGuard // the connection's ping limit, if any
	holding  bool       // a close frame is being held back
	held     []byte     // its bytes so far
	ready    []byte     // inspected bytes to return before reading more
}

func newInspectConn(c net.Conn, pre []byte, textMax, binMax int64) *inspectConn {
	return &inspectConn{Conn: c, pre: pre, textMax: textMax, binMax: binMax}
}

// Read reads from the connection and inspects what it returns.
func (c *inspectConn) Read(p []byte) (int, error) {
	if len(c.ready) > 0 {
		n := copy(p, c.ready)
		c.ready = c.ready[n:]
		if len(c.ready) == 0 {
			c.ready = nil
		}
		return n, nil
	}
	if err := c.err; err != nil {
		c.err = nil
		return 0, err
	}
	for {
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
		kept, refused := c.inspect(p[:n])
		if refused != nil {
			if kept == 0 {
				return 0, refused
			}
			c.err = refused
			return kept, nil
		}
		switch {
		case kept > 0:
			return kept, err
		case len(c.ready) > 0: // a close frame released whole
			if err != nil {
				c.err = err
			}
			n = copy(p, c.ready)
			c.ready = c.ready[n:]
			if len(c.ready) == 0 {
				c.ready = nil
			}
			return n, nil
		case err != nil || n == 0:
			return 0, err
		}
		// Everything read was dropped or held back: read on.
	}
}

// inspect follows the frames in b, compacting in place what is passed on,
// and returns its length; refused is the error of a refused frame. A close
// frame released whole goes to c.ready, and what of b follows it to c.pre,
// to be inspected by the next Read.
func (c *inspectConn) inspect(b []byte) (kept int, refused error) {
	w, i := 0, 0
	hdrAt := 0 // where the header being read began in b's kept bytes
	for i < len(b) {
		if c.holding {
			c.held = append(c.held, b[i])
			i++
			complete, ok := heldFrame(c.held)
			if !complete {
				continue
			}
			c.holding = false
			if !ok {
				c.held = nil
				refused = errCloseReason // the frame is dropped
				continue
			}
			c.ready, c.held = c.held, nil
			if i < len(b) {
				c.pre = append(bytes.Clone(b[i:]), c.pre...)
			}
			return w, refused
		}
		if c.payload > 0 {
			skip := int(min(c.payload, uint64(len(b)-i)))
			if !c.dropping {
				w += copy(b[w:], b[i:i+skip])
			}
			c.payload -= uint64(skip)
			i += skip
			if c.payload == 0 {
				c.dropping = false
			}
			continue
		}
		if c.hn == 0 {
			if b[i]&0x0f == opClose { // hold the close frame back, whole
				c.holding = true
				c.held = append(c.held[:0], b[i])
				i++
				continue
			}
			hdrAt = w
		}
		c.hdr[c.hn] = b[i]
		c.hn++
		b[w] = b[i]
		w++
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
			// Take the header out (what of it is in b) and drop the payload.
			w = hdrAt
			c.dropping = c.payload > 0
			refused = errTooBig
		}
	}
	return w, refused
}

// heldFrame reports whether b holds a whole close frame and, if so,
// whether it may pass: its reason, if any, is valid UTF-8. A frame the
// library must fail (unmasked, too long) is complete at once and passes,
// and the library reads the rest of it itself.
func heldFrame(b []byte) (complete, ok bool) {
	if len(b) < 2 {
		return false, false
	}
	n := int(b[1] & 0x7f)
	if b[1]&0x80 == 0 || n > maxControl {
		return true, true
	}
	const hl = 6 // two bytes and a masking key
	if len(b) < hl+n {
		return false, false
	}
	if n <= 2 {
		return true, true
	}
	key := b[2:hl]
	reason := make([]byte, n-2)
	for j := range reason {
		reason[j] = b[hl+2+j] ^ key[(2+j)%4]
	}
	return true, utf8.Valid(reason)
}

// maxControl is the longest payload of a control frame.
const maxControl = 125

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
		if n>>63 != 0 {
			return true // a protocol error (RFC 6455, 5.2), the library's to fail
		}
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
		c.msgOp, c.msgLen = 0, 0
		return false
	}
	if fin {
		c.msgOp, c.msgLen = 0, 0
	}
	return true
}
