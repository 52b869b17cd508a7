package wsclient

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
)

// ErrClosed is returned by writes after a close frame was sent.
var ErrClosed = errors.New("wsclient: connection closed")

// WriteText sends p as one text message.
func (c *Conn) WriteText(p []byte) error { return c.WriteMessage(OpText, p) }

// WriteBinary sends p as one binary message.
func (c *Conn) WriteBinary(p []byte) error { return c.WriteMessage(OpBinary, p) }

// WriteMessage sends p as one unfragmented message of type op (OpText or
// OpBinary), masked with a fresh random key. p is not modified. It blocks
// until the kernel has taken the frame.
func (c *Conn) WriteMessage(op Opcode, p []byte) error {
	if op != OpText && op != OpBinary {
		return fmt.Errorf("wsclient: write: %v is not a message type", op)
	}
	if err := c.writeFrame(op, p); err != nil {
		return fmt.Errorf("wsclient: write: %w", err)
	}
	return nil
}

// writeClose sends a close frame once; code 0 sends an empty one.
func (c *Conn) writeClose(code int, reason string) error {
	var p []byte
	if code != 0 {
		if len(reason) > 123 {
			reason = reason[:123]
		}
		p = binary.BigEndian.AppendUint16(make([]byte, 0, 2+len(reason)), uint16(code))
		p = append(p, reason...)
	}
	return c.writeFrame(OpClose, p)
}

// writeBufMax is the capacity above which the write buffer is dropped after
// a write.
const writeBufMax = 256 << 10

// writeFrame writes one final frame. After a close frame only ErrClosed.
func (c *Conn) writeFrame(op Opcode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.closeSent {
		return ErrClosed
	}
	if c.writeErr != nil {
		return c.writeErr
	}
	if op == OpClose {
		c.closeSent = true
	}
	b := c.wbuf[:0]
	b = append(b, 0x80|byte(op))
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xFFFF:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := rand.Uint32()
	b = binary.LittleEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, p...)
	maskBytes(key, b[start:])
	_, err := c.nc.Write(b)
	if cap(b) > writeBufMax {
		b = nil
	}
	c.wbuf = b
	if err != nil {
		c.writeErr = err
	}
	return err
}

// maskBytes XORs b with the masking key, whose first byte on the wire is
// its lowest (the key was appended little-endian).
func maskBytes(key uint32, b []byte) {
	k := uint64(key)<<32 | uint64(key)
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, binary.LittleEndian.Uint64(b)^k)
		b = b[8:]
	}
	for i := range b {
		b[i] ^= byte(key >> (8 * (i & 3)))
	}
}
