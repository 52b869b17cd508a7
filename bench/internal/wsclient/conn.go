// Package wsclient is a small WebSocket client (RFC 6455) for the load
// generator: a handshake on a plain net.Conn, masked writes and a reader that
// reuses one buffer, so that ten thousand connections fit in one process and
// reading a message does not allocate.
//
// It offers no extensions (no compression), does not validate the UTF-8 of
// text messages, and has no write timeouts: it is meant for loopback
// benchmarks against trusted servers, not for the internet.
//
// A Conn has one reader (the goroutine calling ReadMessage) and any number of
// writers; writes are serialized by a mutex, and the reader answers pings
// with pongs through the same mutex.
package wsclient

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"sync"
)

// Opcode is the type of a frame or message.
type Opcode byte

// The opcodes of RFC 6455, section 5.2.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return fmt.Sprintf("opcode(%d)", byte(op))
}

// Close status codes used by this package (RFC 6455, section 7.4.1).
const (
	StatusNormalClosure   = 1000
	StatusGoingAway       = 1001
	StatusProtocolError   = 1002
	StatusNoStatusRcvd    = 1005
	StatusMessageTooBig   = 1009
	StatusAbnormalClosure = 1006
)

// ErrProtocol reports a frame that breaks RFC 6455; the connection is closed
// with 1002.
var ErrProtocol = errors.New("wsclient: protocol error")

// ErrTooBig reports a message over the Dialer's ReadLimit; the connection is
// closed with 1009.
var ErrTooBig = errors.New("wsclient: message too big")

// CloseError is returned by ReadMessage once the peer has sent a close
// frame. Code is StatusNoStatusRcvd when the frame carried no code.
type CloseError struct {
	Code   int
	Reason string
}

func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("wsclient: closed by peer: %d", e.Code)
	}
	return fmt.Sprintf("wsclient: closed by peer: %d %s", e.Code, e.Reason)
}

// Conn is a client WebSocket connection. ReadMessage must be called from one
// goroutine at a time; the write methods and Close are safe to call
// concurrently with it and with each other.
type Conn struct {
	nc          net.Conn
	br          *bufio.Reader
	subprotocol string
	readLimit   int64

	// Owned by the reader.
	hdr     [14]byte
	msg     []byte    // the message being read; returned to the caller
	ctl     [125]byte // control frame payload
	readErr error     // sticky: once reading failed, it fails again

	// Guarded by wmu.
	wmu       sync.Mutex
	wbuf      []byte
	closeSent bool
	writeErr  error
}

// Subprotocol returns the subprotocol the server selected ("" for none).
func (c *Conn) Subprotocol() string { return c.subprotocol }

// NetConn returns the underlying connection, for deadlines.
func (c *Conn) NetConn() net.Conn { return c.nc }

// CloseNow closes the TCP connection without a close handshake.
func (c *Conn) CloseNow() error { return c.nc.Close() }

// Close sends a close frame with code and reason (unless one was sent
// already) and closes the TCP connection without waiting for the peer's
// close frame: enough for a load generator, which does not reuse the
// connection.
func (c *Conn) Close(code int, reason string) error {
	err := c.writeClose(code, reason)
	if cerr := c.nc.Close(); err == nil {
		err = cerr
	}
	return err
}
