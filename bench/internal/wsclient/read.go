package wsclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// shrinkAbove is the capacity above which the message buffer is dropped
// before the next read, so that one large message does not pin memory.
const shrinkAbove = 1 << 20

// ReadMessage reads the next text or binary message, reassembling
// fragments, answering pings with pongs and skipping pongs. The returned
// slice is valid until the next call. Once the peer sends a close frame,
// ReadMessage answers it and returns a *CloseError; after any error it
// returns the same error again.
func (c *Conn) ReadMessage() (Opcode, []byte, error) {
	if c.readErr != nil {
		return 0, nil, c.readErr
	}
	op, p, err := c.readMessage()
	if err != nil {
		c.readErr = err
		return 0, nil, err
	}
	return op, p, nil
}

func (c *Conn) readMessage() (Opcode, []byte, error) {
	if cap(c.msg) > shrinkAbove {
		c.msg = nil
	}
	c.msg = c.msg[:0]
	var msgOp Opcode // opcode of the message being reassembled; 0: none yet
	for {
		fin, op, n, err := c.readHeader()
		if err != nil {
			return 0, nil, err
		}
		if op >= OpClose {
			if err := c.control(fin, op, n); err != nil {
				return 0, nil, err
			}
			continue
		}
		switch {
		case op == OpContinuation && msgOp == 0:
			return 0, nil, c.fail(StatusProtocolError, fmt.Errorf("%w: continuation frame without a message", ErrProtocol))
		case op != OpContinuation && msgOp != 0:
			return 0, nil, c.fail(StatusProtocolError, fmt.Errorf("%w: %v frame inside a fragmented message", ErrProtocol, op))
		case op != OpContinuation && op != OpText && op != OpBinary:
			return 0, nil, c.fail(StatusProtocolError, fmt.Errorf("%w: reserved opcode %d", ErrProtocol, op))
		}
		if op != OpContinuation {
			msgOp = op
		}
		if int64(len(c.msg))+n > c.readLimit {
			return 0, nil, c.fail(StatusMessageTooBig, fmt.Errorf("%w: over %d bytes", ErrTooBig, c.readLimit))
		}
		start := len(c.msg)
		c.msg = grow(c.msg, int(n))
		if _, err := io.ReadFull(c.br, c.msg[start:]); err != nil {
			return 0, nil, readErr(err)
		}
		if fin {
			return msgOp, c.msg, nil
		}
	}
}

// readHeader reads one frame header and returns its FIN bit, opcode and
// payload length.
func (c *Conn) readHeader() (fin bool, op Opcode, n int64, err error) {
	h := c.hdr[:2]
	if _, err := io.ReadFull(c.br, h); err != nil {
		return false, 0, 0, readErr(err)
	}
	if h[0]&0x70 != 0 {
		return false, 0, 0, c.fail(StatusProtocolError, fmt.Errorf("%w: reserved bits set", ErrProtocol))
	}
	if h[1]&0x80 != 0 {
		return false, 0, 0, c.fail(StatusProtocolError, fmt.Errorf("%w: masked frame from the server", ErrProtocol))
	}
	fin, op, n = h[0]&0x80 != 0, Opcode(h[0]&0x0F), int64(h[1]&0x7F)
	switch n {
	case 126:
		ext := c.hdr[2:4]
		if _, err := io.ReadFull(c.br, ext); err != nil {
			return false, 0, 0, readErr(err)
		}
		n = int64(binary.BigEndian.Uint16(ext))
	case 127:
		ext := c.hdr[2:10]
		if _, err := io.ReadFull(c.br, ext); err != nil {
			return false, 0, 0, readErr(err)
		}
		u := binary.BigEndian.Uint64(ext)
		if u > 1<<62 {
			return false, 0, 0, c.fail(StatusProtocolError, fmt.Errorf("%w: frame length %d", ErrProtocol, u))
		}
		n = int64(u)
	}
	return fin, op, n, nil
}

// control handles a control frame: ping gets a pong, pong is skipped,
// close is answered and returned as a *CloseError.
func (c *Conn) control(fin bool, op Opcode, n int64) error {
	if !fin || n > int64(len(c.ctl)) {
		return c.fail(StatusProtocolError, fmt.Errorf("%w: fragmented or long %v frame", ErrProtocol, op))
	}
	p := c.ctl[:n]
	if _, err := io.ReadFull(c.br, p); err != nil {
		return readErr(err)
	}
	switch op {
	case OpPing:
		if err := c.writeFrame(OpPong, p); err != nil {
			return fmt.Errorf("wsclient: pong: %w", err)
		}
		return nil
	case OpPong:
		return nil
	case OpClose:
		ce := &CloseError{Code: StatusNoStatusRcvd}
		switch {
		case n == 1:
			return c.fail(StatusProtocolError, fmt.Errorf("%w: close frame of 1 byte", ErrProtocol))
		case n >= 2:
			ce.Code = int(binary.BigEndian.Uint16(p))
			ce.Reason = string(p[2:])
		}
		reply := ce.Code
		if reply == StatusNoStatusRcvd {
			reply = 0 // an empty close frame
		}
		c.writeClose(reply, "")
		return ce
	}
	return c.fail(StatusProtocolError, fmt.Errorf("%w: reserved control opcode %d", ErrProtocol, op))
}

// fail sends a close frame with code and returns err.
func (c *Conn) fail(code int, err error) error {
	c.writeClose(code, "")
	return err
}

// readErr reports a connection that ended without a close frame.
func readErr(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = io.EOF
	}
	return fmt.Errorf("wsclient: read: %w", err)
}

// grow extends b by n bytes, reallocating at most to twice what is needed.
func grow(b []byte, n int) []byte {
	if need := len(b) + n; need > cap(b) {
		nb := make([]byte, len(b), max(need, 2*cap(b), 512))
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}
