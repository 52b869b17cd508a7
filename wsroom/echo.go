package wsroom

import (
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// Echo returns the echo endpoint: every text and binary message a client
// sends comes back unchanged, with its type, fragmented messages
// reassembled, up to MaxMessageBytes. The Server's origin policy, rate
// limit, UTF-8 check, heartbeat and Shutdown apply. A frame over the rate
// limit is dropped; sustained, the connection is closed with 1008.
func (s *Server) Echo() http.Handler {
	return http.HandlerFunc(s.serveEcho)
}

func (s *Server) serveEcho(w http.ResponseWriter, r *http.Request) {
	m := s.openEcho(w, r)
	if m == nil {
		return
	}
	defer s.end()
	defer s.unregister(m)
	m.startTimers()
	for !m.isKilled() {
		typ, bp, err := m.read()
		if err != nil {
			m.readFailed(err)
			break
		}
		m.echo(typ, *bp)
		putBuf(bp)
	}
	m.close()
}

// openEcho refuses or upgrades an echo request, like openChat.
func (s *Server) openEcho(w http.ResponseWriter, r *http.Request) *member {
	if !s.begin(w) {
		return nil
	}
	if s.refuse(w, r) {
		s.end()
		return nil
	}
	conn, nc, fw, err := s.accept(w, r, nil)
	if err != nil {
		s.end()
		return nil
	}
	m := newMember(s, conn, nc, fw, r, "", false)
	m.joined.Store(true) // no join here: no join deadline
	if !s.register(m) {
		s.end()
		return nil
	}
	return m
}

// echo writes one message back, on the reading goroutine: a client that
// does not read its echoes only slows itself down, until WriteTimeout. b
// is what read returned: room for the frame header, then the message.
func (m *member) echo(typ websocket.MessageType, b []byte) {
	data := b[maxHeader:]
	if !m.limiter.allow(time.Now()) {
		if m.limiter.sustained() {
			m.kill(ReasonPolicy, websocket.StatusPolicyViolation, "rate limit exceeded", nil)
		}
		return
	}
	if typ == websocket.MessageText && !utf8.Valid(data) {
		m.kill(ReasonPolicy, websocket.StatusInvalidFramePayloadData, "invalid UTF-8", nil)
		return
	}
	if wt := m.srv.opts.WriteTimeout; wt > 0 && m.nc != nil {
		m.nc.SetWriteDeadline(time.Now().Add(wt))
		defer m.nc.SetWriteDeadline(time.Time{})
	}
	if err := m.writeFramed(typ, b); err != nil {
		m.mu.Lock()
		m.writeErr = err
		m.mu.Unlock()
		m.kill(ReasonClosed, 0, "", err)
	}
}
