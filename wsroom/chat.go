package wsroom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// serveChat is the chat endpoint for one room: the upgrade, then the
// member's reading loop until it leaves.
//
// The functions on the way to the upgrade keep small frames, and the work
// before it (the Identify hook) runs in a function that returns first: the
// upgrade is the deepest moment of a connection's life (net/http writes the
// 101 response under it), and a goroutine that overflows its first 8 KiB of
// stack there keeps 16 KiB for as long as the connection lives.
func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, room string) {
	m := s.openChat(w, r, room)
	if m == nil {
		return
	}
	defer s.end()
	defer s.unregister(m)
	m.run(r.Context())
}

// openChat refuses or upgrades a chat request. It returns the member, counted
// in and registered, or nil when the request was answered.
func (s *Server) openChat(w http.ResponseWriter, r *http.Request, room string) *member {
	if !s.begin(w) {
		return nil
	}
	identity, since, ok := s.admitChat(w, r, room)
	if !ok {
		s.end()
		return nil
	}
	conn, nc, fw, err := s.accept(w, r, chatProtocols)
	if err != nil {
		s.end()
		return nil
	}
	m := newMember(s, conn, nc, fw, r, room, conn.Subprotocol() != Subprotocol)
	m.since, m.identity = since, identity
	if !s.register(m) {
		s.end()
		return nil
	}
	return m
}

var chatProtocols = []string{Subprotocol}

// admitChat answers a request that cannot become a chat connection and
// reports ok for one that can, with the name the Identify hook gave and the
// ID to resume after.
func (s *Server) admitChat(w http.ResponseWriter, r *http.Request, room string) (identity string, since msgID, ok bool) {
	if err := checkName(room, maxRoomLength); err != nil {
		http.Error(w, "bad room name", http.StatusBadRequest)
		return "", since, false
	}
	if s.refuse(w, r) {
		return "", since, false
	}
	if v := r.URL.Query().Get("since"); v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "bad since", http.StatusBadRequest)
			return "", since, false
		}
		since = msgID{v: id, set: true}
	}
	if hook := s.opts.Hooks.Identify; hook != nil {
		reply, err := hook(r.Context(), IdentifyEvent{Request: r, Room: room})
		if err != nil {
			rj := asReject(err, "", http.StatusText(http.StatusForbidden))
			s.log.Debug("wsroom: identify refused", "room", room, "status", rj.Status, "err", err)
			http.Error(w, rj.Message, rj.Status)
			return "", since, false
		}
		identity = cleanName(reply.Name)
		if identity != "" {
			if err := checkName(identity, s.opts.MaxNameLength); err != nil {
				s.log.Warn("wsroom: Identify returned a bad name", "room", room, "err", err)
				http.Error(w, "bad member name", http.StatusForbidden)
				return "", since, false
			}
		}
	}
	return identity, since, true
}

// run is the member's reading loop; it returns once the member has left
// and every goroutine it started has ended.
func (m *member) run(ctx context.Context) {
	m.startTimers()
	if m.identity != "" {
		m.identified = true
		m.name = m.identity
		m.join(ctx, m.identity, m.since)
	}
	for !m.isKilled() {
		typ, bp, err := m.read()
		if err != nil {
			m.readFailed(err)
			break
		}
		m.handle(ctx, typ, (*bp)[maxHeader:])
		putBuf(bp)
	}
	m.finish(ctx)
}

// read reads one whole message into a pooled buffer, after maxHeader bytes
// of room for a frame header: the echo endpoint sends it back from there.
func (m *member) read() (websocket.MessageType, *[]byte, error) {
	typ, rd, err := m.conn.Reader(context.Background())
	if err != nil {
		return 0, nil, err
	}
	bp := getBuf()
	b := append((*bp)[:0], make([]byte, maxHeader)...)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			break
		}
		if err != nil {
			*bp = b
			putBuf(bp)
			return 0, nil, err
		}
	}
	*bp = b
	m.srv.stats.in.add(m.stripe, 1)
	return typ, bp, nil
}

// readFailed records why reading stopped, unless a reason is recorded
// already (a kill wakes the reader with a deadline).
func (m *member) readFailed(err error) {
	switch {
	case websocket.CloseStatus(err) != -1:
		m.peerCode = int(websocket.CloseStatus(err))
		m.kill(ReasonClosed, 0, "", nil) // the library answered the close frame
	case errors.Is(err, websocket.ErrMessageTooBig):
		m.kill(ReasonPolicy, websocket.StatusMessageTooBig, "message too big", err)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, net.ErrClosed),
		errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		m.kill(ReasonClosed, 0, "", err)
	default:
		m.kill(ReasonError, 0, "", err)
	}
}

// handle processes one message from the client.
func (m *member) handle(ctx context.Context, typ websocket.MessageType, data []byte) {
	if !m.limiter.allow(time.Now()) {
		if m.limiter.sustained() {
			m.kill(ReasonPolicy, websocket.StatusPolicyViolation, "rate limit exceeded", nil)
			return
		}
		m.sendError(CodeRateLimited, "too many messages; this one was dropped")
		return
	}
	switch typ {
	case websocket.MessageText:
		if !utf8.Valid(data) {
			m.kill(ReasonPolicy, websocket.StatusInvalidFramePayloadData, "invalid UTF-8", nil)
			return
		}
		if m.plain {
			m.handleLine(ctx, string(data))
		} else {
			m.handleFrame(ctx, data)
		}
	case websocket.MessageBinary:
		if m.srv.opts.NoBinary {
			m.kill(ReasonPolicy, websocket.StatusUnsupportedData, "binary messages are not accepted", nil)
			return
		}
		if !m.joined.Load() {
			m.sendError(CodeNotJoined, "join before sending")
			return
		}
		m.relay(ctx, data)
	}
}

// handleFrame handles a frame of the JSON protocol.
func (m *member) handleFrame(ctx context.Context, data []byte) {
	f, err := decodeClientFrame(data)
	if err != nil {
		m.sendError(CodeBadRequest, err.Error())
		return
	}
	switch f.Type {
	case "join":
		if m.joined.Load() {
			m.sendError(CodeAlreadyJoined, "already joined as "+strconv.Quote(m.name))
			return
		}
		name, since := f.Name, f.Since
		if m.identified {
			name = m.name
		}
		if !since.set {
			since = m.since
		}
		m.join(ctx, name, since)
	case "message":
		if !m.joined.Load() {
			m.sendError(CodeNotJoined, "join before sending")
			return
		}
		m.say(ctx, f.Text)
	case "history":
		if !m.joined.Load() {
			m.sendError(CodeNotJoined, "join before asking for history")
			return
		}
		m.history(ctx, f.Before, f.Limit)
	}
}

// handleLine handles a line of the plain-text protocol.
func (m *member) handleLine(ctx context.Context, line string) {
	text := m.srv.opts.Text
	name, isLogin := text.Login(line)
	if !m.joined.Load() {
		if !isLogin {
			m.sendError(CodeNotJoined, "send login:NAME first")
			return
		}
		if m.identified {
			name = m.name
		}
		m.join(ctx, name, m.since)
		return
	}
	if isLogin {
		if !m.identified { // an identified member's page may still log in
			m.sendError(CodeAlreadyJoined, "already joined as "+strconv.Quote(m.name))
		}
		return
	}
	if t := text.Inbound(m.name, line); t != "" {
		m.say(ctx, t)
	}
}

// join makes the member part of the room and sends it its welcome. Failures
// are reported to the client, which may try again.
func (m *member) join(ctx context.Context, name string, since msgID) {
	s := m.srv
	name = cleanName(name)
	if err := checkName(name, s.opts.MaxNameLength); err != nil {
		m.sendError(CodeBadName, err.Error())
		return
	}
	if hook := s.opts.Hooks.OnJoin; hook != nil {
		reply, err := hook(ctx, JoinEvent{Request: m.req, Room: m.room, Name: name, Resume: since.set})
		if err != nil {
			rj := asReject(err, CodeJoinRefused, "join refused")
			m.sendError(rj.Code, rj.Message)
			return
		}
		if reply.Name != "" {
			name = cleanName(reply.Name)
			if err := checkName(name, s.opts.MaxNameLength); err != nil {
				m.sendError(CodeBadName, err.Error())
				return
			}
		}
	}
	h, err := s.acquire(ctx, m.room)
	if err != nil {
		s.log.Error("wsroom: subscribe failed", "room", m.room, "err", err)
		m.sendError(CodeUnavailable, "the room is unavailable; try again later")
		return
	}
	m.res = Reservation{Room: m.room, Name: name, Owner: Owner{Server: s.id, Conn: m.connID}}
	if _, err := s.opts.Store.Reserve(ctx, m.res, ReserveOptions{Max: max(s.opts.MaxMembers, 0), Lease: time.Hour}); err != nil {
		s.release(ctx, h)
		code := errorCode(err)
		if code == CodeUnavailable {
			s.log.Error("wsroom: reserve failed", "room", m.room, "name", name, "err", err)
			m.sendError(code, "the room is unavailable; try again later")
			return
		}
		m.sendError(code, fmt.Sprintf("cannot join as %q: %v", name, errors.Unwrap(err)))
		return
	}

	// From here on the member receives the room's events, held back until
	// its welcome is ready so that the welcome comes first and no message
	// is both in the welcome's history and after it.
	m.mu.Lock()
	m.hold = true
	m.holdAt = 0
	if m.queue != nil {
		m.holdAt = len(*m.queue)
	}
	m.mu.Unlock()
	m.name, m.hub = name, h
	h.add(m)
	m.joined.Store(true)
	m.stopJoinTimer()
	s.stats.members.Add(1)
	h.announce(ctx, PubJoin, name)

	w := welcome{Room: m.room, Name: name}
	last := since.v
	if since.set {
		var complete bool
		w.History, complete, err = s.opts.Store.After(ctx, m.room, since.v, s.opts.ResumeLimit)
		w.Gap = !complete
		if err == nil && w.Gap && len(w.History) == 0 && s.opts.WelcomeHistory > 0 {
			w.History, err = s.opts.Store.Recent(ctx, m.room, s.opts.WelcomeHistory)
		}
	} else if s.opts.WelcomeHistory > 0 {
		w.History, err = s.opts.Store.Recent(ctx, m.room, s.opts.WelcomeHistory)
	}
	if err != nil {
		s.log.Warn("wsroom: history unavailable for welcome", "room", m.room, "err", err)
		w.History, w.Gap = nil, since.set
	}
	if n := len(w.History); n > 0 {
		last = max(last, w.History[n-1].ID)
	}
	if w.Members, _, err = s.opts.Store.Members(ctx, m.room, "", 0); err != nil {
		s.log.Warn("wsroom: members unavailable for welcome", "room", m.room, "err", err)
		w.Members = []string{name}
	}
	e := &event{}
	if m.plain {
		for _, l := range s.opts.Text.Welcome(m.room, name, w.Members, w.History) {
			e.plain = append(e.plain, []byte(l))
		}
		if e.plain == nil {
			e.plain = [][]byte{}
		}
	} else {
		e.json = encodeWelcome(w)
	}
	m.release(e, last)
}

// release ends the hold of a join: the welcome goes first, then what
// arrived meanwhile, less the messages the welcome's history holds.
func (m *member) release(welcome *event, last uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	q := getQueue()
	if m.queue != nil {
		old := *m.queue
		*q = append(*q, old[:m.holdAt]...)
		*q = append(*q, welcome)
		for _, e := range old[m.holdAt:] {
			if e.id == 0 || e.id > last {
				*q = append(*q, e)
			}
		}
		putQueue(m.queue)
	} else {
		*q = append(*q, welcome)
	}
	m.queue = q
	m.hold = false
	if !m.closing {
		m.startWriterLocked()
	}
}

// say sends a text message from the member to the room.
func (m *member) say(ctx context.Context, text string) {
	s := m.srv
	if hook := s.opts.Hooks.OnMessage; hook != nil {
		reply, err := hook(ctx, MessageEvent{Room: m.room, From: m.name, Text: text})
		if err != nil {
			rj := asReject(err, CodeMessageRefused, "message refused")
			m.sendError(rj.Code, rj.Message)
			return
		}
		if reply.Drop {
			return
		}
		if reply.Text != "" {
			text = reply.Text
		}
	}
	msg := Message{From: m.name, Text: text, Time: time.Now()}
	if _, err := s.publishMessage(ctx, m.room, msg, &route{}); err != nil {
		s.log.Error("wsroom: message not sent", "room", m.room, "from", m.name, "err", err)
		m.sendError(CodeUnavailable, "message not sent; try again later")
	}
}

// relay sends a binary message from the member to the other members.
func (m *member) relay(ctx context.Context, data []byte) {
	s := m.srv
	if hook := s.opts.Hooks.OnMessage; hook != nil {
		reply, err := hook(ctx, MessageEvent{Room: m.room, From: m.name, Binary: true, Data: data})
		if err != nil {
			rj := asReject(err, CodeMessageRefused, "message refused")
			m.sendError(rj.Code, rj.Message)
			return
		}
		if reply.Drop {
			return
		}
		if reply.Data != nil {
			data = reply.Data
		}
	}
	p := &Publication{Room: m.room, Type: PubBinary, Name: m.name, Data: bytes.Clone(data)}
	if err := s.publish(ctx, p, &route{except: []string{m.name}}); err != nil {
		s.log.Error("wsroom: binary message not sent", "room", m.room, "from", m.name, "err", err)
		m.sendError(CodeUnavailable, "message not sent; try again later")
	}
}

// history answers a history request with a page of messages before an ID,
// or the most recent ones.
func (m *member) history(ctx context.Context, before msgID, limit int) {
	s := m.srv
	if limit <= 0 || limit > s.opts.HistoryPage {
		limit = s.opts.HistoryPage
	}
	var msgs []Message
	var err error
	if before.set {
		msgs, err = s.opts.Store.Before(ctx, m.room, before.v, limit+1)
	} else {
		msgs, err = s.opts.Store.Recent(ctx, m.room, limit+1)
	}
	if err != nil {
		s.log.Error("wsroom: history failed", "room", m.room, "err", err)
		m.sendError(CodeUnavailable, "history unavailable; try again later")
		return
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[1:]
	}
	m.send(&event{json: encodeHistory(msgs, more)})
}

// finish runs once the reading loop ended: the member leaves the room (the
// store, the other members and the OnLeave hook learn of it), then the
// connection is closed.
func (m *member) finish(ctx context.Context) {
	s := m.srv
	m.mu.Lock()
	reason, code, err := m.reason, m.code, m.err
	m.mu.Unlock()
	if m.joined.Load() {
		h := m.hub
		h.remove(m)
		s.stats.members.Add(-1)
		if err := s.opts.Store.Release(ctx, m.res); err != nil {
			s.log.Error("wsroom: release failed", "room", m.room, "name", m.name, "err", err)
		}
		h.announce(ctx, PubLeave, m.name)
		c := int(code)
		switch {
		case reason == ReasonClosed && m.peerCode != 0:
			c = m.peerCode
		case code == 0:
			c = int(websocket.StatusAbnormalClosure)
		}
		level := slog.LevelDebug
		if reason != ReasonClosed && reason != ReasonShutdown {
			level = slog.LevelInfo // the server's decision: worth a line
		}
		s.log.Log(ctx, level, "wsroom: member left", "room", m.room, "name", m.name, "reason", reason.String(), "code", c, "err", err)
		if hook := s.opts.Hooks.OnLeave; hook != nil {
			hook(ctx, LeaveEvent{Room: m.room, Name: m.name, Reason: reason, Code: c, Err: err})
		}
		s.release(ctx, h)
	}
	m.close()
}
