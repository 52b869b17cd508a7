package wsroom

import (
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Echo returns the echo endpoint: every text and binary message a client
// sends comes back unchanged, with its type, fragmented messages
// reassembled, up to MaxMessageBytes for text and MaxBinaryBytes for
// binary. The Server's origin policy, rate limit, UTF-8 check, heartbeat and
// Shutdown apply. A frame over the rate limit is dropped; sustained, the
// connection is closed with 1008.
func (s *Server) Echo() http.Handler {
	return http.HandlerFunc(s.serveEcho)
}

func (s *Server) serveEcho(w http.ResponseWriter, r *http.Request) {
	c := s.openEcho(w, r)
	if c == nil {
		return
	}
	defer s.end(c.ip)
	defer s.unregister(c)
	c.serveEcho()
}

// openEcho refuses or upgrades an echo request, like openChat.
func (s *Server) openEcho(w http.ResponseWriter, r *http.Request) *wsConn {
	ip, ok := s.begin(w, r)
	if !ok {
		return nil
	}
	done := false
	defer func() {
		if !done { // refused, or the upgrade panicked
			s.end(ip)
		}
	}()
	if s.refuse(w, r) {
		return nil
	}
	conn, nc, fw, err := s.accept(w, r, nil)
	if err != nil {
		return nil
	}
	c := newWSConn(s, conn, nc, fw, false)
	c.ip = ip
	if !s.register(c) {
		return nil
	}
	done = true
	return c
}

// serveEcho is the echo connection's reading loop. Each message is written
// back on the reading goroutine: a client that does not read its echoes
// only slows itself down, until WriteTimeout.
func (c *wsConn) serveEcho() {
	c.startHeartbeat()
	limiter := newRateLimiter(c.srv.opts.RateLimit, c.srv.opts.RateBurst)
	for !c.isKilled() {
		typ, bp, err := c.read()
		if err != nil {
			c.readFailed(err)
			break
		}
		c.echo(&limiter, typ, *bp)
		putBuf(bp)
	}
	c.close()
}

// echo writes one message back. b is what read returned: room for the
// frame header, then the message.
func (c *wsConn) echo(limiter *rateLimiter, typ websocket.MessageType, b []byte) {
	data := b[maxHeader:]
	if !limiter.allow(time.Now()) {
		c.srv.refused(CodeRateLimited)
		if limiter.sustained() {
			c.kill(ReasonPolicy, websocket.StatusPolicyViolation, "rate limit exceeded", nil)
		}
		return
	}
	if typ == websocket.MessageText && !utf8.Valid(data) {
		c.kill(ReasonPolicy, websocket.StatusInvalidFramePayloadData, "invalid UTF-8", nil)
		return
	}
	op := byte(opText)
	if typ == websocket.MessageBinary {
		op = opBinary
	}
	if err := c.fw.writeFramed(op, b); err != nil {
		c.writeFailed(err)
	}
	c.srv.stats.frames.add(c.stripe, 1)
	c.srv.stats.outBytes.add(c.stripe, int64(headerLen(len(data))+len(data)))
}
