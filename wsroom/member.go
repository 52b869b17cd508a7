package wsroom

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"
)

// member is a client's membership of a room: joining, speaking, relaying
// binary messages, asking for history and members, and leaving. It does not
// know the wire: its transport carries its events and closes it.
//
// Its methods run on the transport's reading goroutine, one at a time; the
// hub reads name and plain, and calls the transport, under its own lock.
type member struct {
	srv    *Server
	t      transport
	req    *http.Request      // the upgrade request, for the hooks
	ctx    context.Context    // the member's life: ends when it leaves or the server shuts down
	cancel context.CancelFunc // ends ctx
	room   string
	plain  bool   // speaks the plain-text protocol
	connID string // identifies the connection in its reservation

	// Set before the member is added to its hub; read by others only
	// through the hub.
	hub        *hub
	name       string
	res        Reservation // the member's name, once reserved
	idx        int         // index in hub.members, guarded by hub.mu
	identified bool        // Identify named it: it cannot pick a name
	identity   string      // the name Identify gave
	since      msgID       // from the URL, for a join that names none
	joined     atomic.Bool
	// welcomed is the highest message ID its welcome held: a delivery of
	// a message up to it (stored before the welcome read the history,
	// delivered after) is not sent again.
	welcomed atomic.Uint64

	limiter   rateLimiter
	joinTimer ownedTimer
}

// connSeq numbers the connections of this process.
var connSeq atomic.Uint64

// newMember returns the membership of a client that was just accepted,
// admitted by adm. Call start, then handle each message, then leave.
func newMember(s *Server, t transport, r *http.Request, adm *admission) *member {
	ctx, cancel := context.WithCancel(context.WithoutCancel(r.Context()))
	stop := context.AfterFunc(s.ctx, cancel) // the server shuts down
	m := &member{
		srv:        s,
		t:          t,
		req:        r,
		ctx:        ctx,
		room:       adm.room,
		plain:      t.isPlain(),
		connID:     adm.connID,
		identified: adm.identity != "",
		identity:   adm.identity,
		since:      adm.since,
		limiter:    newRateLimiter(s.opts.RateLimit, s.opts.RateBurst),
	}
	m.cancel = func() { stop(); cancel() }
	return m
}

// start arms the join deadline, or enters the room at once for a member
// that was admitted with its name.
func (m *member) start(adm *admission) {
	if adm.reserved {
		m.enter(adm.res, adm.replaced, m.since)
		return
	}
	if jt := m.srv.opts.JoinTimeout; jt > 0 {
		m.joinTimer.start(jt, m.joinExpired)
	}
}

func (m *member) joinExpired() {
	if !m.joined.Load() {
		m.t.kill(ReasonTimeout, websocket.StatusPolicyViolation, "join timeout", nil)
	}
}

// handle processes one message from the client. A panic in a hook is
// recovered here: the member is closed with 1011, leaves as usual, and the
// panic is logged with its stack.
func (m *member) handle(typ websocket.MessageType, data []byte) {
	defer m.recoverHook("message")
	if !m.limiter.allow(time.Now()) {
		m.srv.refused(CodeRateLimited)
		if m.limiter.sustained() {
			m.t.kill(ReasonPolicy, websocket.StatusPolicyViolation, "rate limit exceeded", nil)
			return
		}
		m.sendError(CodeRateLimited)
		return
	}
	switch typ {
	case websocket.MessageText:
		if !utf8.Valid(data) {
			m.t.kill(ReasonPolicy, websocket.StatusInvalidFramePayloadData, "invalid UTF-8", nil)
			return
		}
		if m.plain {
			m.handleLine(string(data))
		} else {
			m.handleFrame(data)
		}
	case websocket.MessageBinary:
		if m.srv.opts.NoBinary {
			m.t.kill(ReasonPolicy, websocket.StatusUnsupportedData, "binary messages are not accepted", nil)
			return
		}
		if !m.joined.Load() {
			m.sendError(CodeNotJoined)
			return
		}
		m.relay(data)
	}
}

// recoverHook turns a panic on the member's goroutine (in a hook, say) into
// a close with 1011. Deferred directly.
func (m *member) recoverHook(during string) {
	if v := recover(); v != nil {
		m.srv.log.Error("wsroom: panic in a hook; the member is closed with 1011", "during", during,
			"room", m.room, "name", m.name, "panic", v, "stack", string(debug.Stack()))
		m.t.kill(ReasonError, websocket.StatusInternalError, "internal error", fmt.Errorf("wsroom: panic: %v", v))
	}
}

// handleFrame handles a frame of the JSON protocol.
func (m *member) handleFrame(data []byte) {
	f, err := decodeClientFrame(data)
	if err != nil {
		// The error may quote what the client sent: only its start is
		// logged.
		m.srv.log.Debug("wsroom: bad frame", "room", m.room, "err", clip(err.Error(), 64))
		m.sendError(CodeBadRequest)
		return
	}
	switch f.Type {
	case "join":
		if m.joined.Load() {
			if !m.identified { // an identified member's client may still send a join
				m.sendError(CodeAlreadyJoined)
			}
			return
		}
		name, since := f.Name, f.Since
		if !since.set {
			since = m.since
		}
		m.join(name, since)
	case "message":
		if !m.joined.Load() {
			m.sendError(CodeNotJoined)
			return
		}
		m.say(f.Text)
	case "history":
		if !m.joined.Load() {
			m.sendError(CodeNotJoined)
			return
		}
		m.history(f.Before, f.Limit)
	case "members":
		if !m.joined.Load() {
			m.sendError(CodeNotJoined)
			return
		}
		m.members(f.After, f.Limit)
	default:
		m.sendError(CodeBadRequest)
	}
}

// handleLine handles a line of the plain-text protocol.
func (m *member) handleLine(line string) {
	text := m.srv.opts.Text
	name, isLogin := text.Login(line)
	if !m.joined.Load() {
		if !isLogin {
			m.sendError(CodeNotJoined)
			return
		}
		m.join(name, m.since)
		return
	}
	if isLogin {
		if !m.identified { // an identified member's page may still log in
			m.sendError(CodeAlreadyJoined)
		}
		return
	}
	if t := text.Inbound(m.name, line); t != "" {
		m.say(t)
	}
}

// join runs the admission of a join request and enters the room. Failures
// are reported to the client, which may try again.
//
// The member receives the room's events (held back until its welcome) from
// before its name is reserved: then whoever reserves a name after it is
// announced to it, and whoever reserved before it is in its welcome's
// count (and member pages), so that no concurrent join escapes it.
func (m *member) join(name string, since msgID) {
	s := m.srv
	if m.identified {
		name = m.identity
	}
	name, rj := s.checkJoin(m.ctx, m.req, m.room, name, since.set, m.identified)
	if rj != nil {
		m.sendError(rj.Code, rj.Message)
		return
	}
	h, ok := m.openHub()
	if !ok {
		return
	}
	m.t.hold()
	m.name, m.hub = name, h
	h.addPending(m)
	res, replaced, rj := s.reserveName(m.ctx, m.room, name, m.connID, m.identified)
	if rj != nil {
		h.remove(m)
		m.hub = nil
		m.t.release(nil, func(*event) bool { return false }) // what it heard meanwhile is not for it
		s.release(m.ctx, h)
		m.sendError(rj.Code, rj.Message)
		return
	}
	h.register(m)
	m.entered(res, replaced, since)
}

// openHub acquires the room's hub on this server, or tells the client why
// not.
func (m *member) openHub() (*hub, bool) {
	s := m.srv
	h, err := s.acquire(m.ctx, m.room)
	if err == nil {
		return h, true
	}
	if errors.Is(err, errTooManyRooms) {
		m.sendError(CodeServerFull)
		return nil, false
	}
	s.log.Error("wsroom: subscribe failed", "room", m.room, "err", err)
	m.sendError(CodeUnavailable)
	return nil, false
}

// enter makes a member whose name res holds already (an identified member,
// reserved before the upgrade) part of the room.
func (m *member) enter(res Reservation, replaced Owner, since msgID) {
	h, ok := m.openHub()
	if !ok {
		m.srv.releaseName(m.ctx, res)
		return
	}
	m.t.hold()
	m.name, m.hub = res.Name, h
	h.add(m)
	m.entered(res, replaced, since)
}

// entered completes a join once the member, added to its hub with its
// events held, holds its name: the holder it replaced (if any) is closed,
// its arrival announced (unless the name never left the room), and its
// welcome sent first. replaced is the holder its reservation took over.
func (m *member) entered(res Reservation, replaced Owner, since msgID) {
	s := m.srv
	h := m.hub
	m.res = res
	if !replaced.IsZero() {
		s.evict(m.ctx, res, replaced)
	}
	if w, ok := m.t.(watcher); ok {
		w.watch(h.setBehind)
	}
	m.joined.Store(true)
	m.joinTimer.cancel()
	s.stats.members.Add(1)
	if replaced.IsZero() {
		h.announce(m.ctx, PubJoin, res.Name)
	}
	w, last, floor, read := m.welcome(since)
	if read {
		h.welcomed(floor)
	}
	m.welcomed.Store(last)
	m.t.release(w, func(e *event) bool { return e.id == 0 || e.id > last })
}

// welcome builds the member's welcome: the first page of members and the
// recent history, or what it missed since the ID it resumes from. last is
// the highest message ID the welcome holds. read reports whether it read
// the history from the store; then the member has every message up to
// floor, an ID the store issued (0 if the room has no history).
func (m *member) welcome(since msgID) (e *event, last, floor uint64, read bool) {
	s := m.srv
	w := welcome{Room: m.room, Name: m.name}
	last = since.v
	ctx, cancel := s.backendCtx(m.ctx)
	defer cancel()
	var err error
	if since.set {
		var complete bool
		w.History, complete, err = s.opts.Store.After(ctx, m.room, since.v, s.opts.ResumeLimit)
		w.Gap = !complete
		if complete {
			floor = since.v // complete: since is not above the newest ID
		}
		if err == nil && w.Gap && len(w.History) == 0 && s.opts.WelcomeHistory > 0 {
			w.History, err = s.opts.Store.Recent(ctx, m.room, s.opts.WelcomeHistory)
		}
		read = err == nil
	} else if s.opts.WelcomeHistory > 0 {
		w.History, err = s.opts.Store.Recent(ctx, m.room, s.opts.WelcomeHistory)
		read = err == nil
	}
	if err != nil {
		s.log.Warn("wsroom: history unavailable for welcome", "room", m.room, "err", err)
		w.History, w.Gap = nil, since.set
	}
	if n := len(w.History); n > 0 {
		last = max(last, w.History[n-1].ID)
		floor = w.History[n-1].ID
	}
	var cut bool
	if w.History, cut = fitBytes(w.History, s.opts.HistoryBytes); cut && since.set {
		w.Gap = true
	}
	if w.Members, w.Count, err = s.opts.Store.Members(ctx, m.room, "", s.opts.MembersPage); err != nil {
		s.log.Warn("wsroom: members unavailable for welcome", "room", m.room, "err", err)
		w.Members, w.Count = []string{m.name}, 1
	}
	e = &event{}
	if m.plain {
		for _, l := range s.opts.Text.welcome(WelcomeInfo{Room: m.room, Name: m.name, Members: w.Members, Count: w.Count, History: w.History}) {
			e.plain = append(e.plain, []byte(l))
		}
		if e.plain == nil {
			e.plain = [][]byte{}
		}
	} else {
		e.json = encodeWelcome(w)
	}
	return e, last, floor, read
}

// fitBytes keeps the most recent messages of ms that fit in limit bytes
// (limit < 0: all), and reports whether it dropped any.
func fitBytes(ms []Message, limit int64) ([]Message, bool) {
	if limit < 0 {
		return ms, false
	}
	var n int64
	for i := len(ms) - 1; i >= 0; i-- {
		n += int64(len(ms[i].From) + len(ms[i].Text) + msgOverhead)
		if n > limit {
			return ms[i+1:], true
		}
	}
	return ms, false
}

// onMessage runs the OnMessage hook, if any, on what the member sent: ok
// is false when the message goes no further (refused, with an error event,
// or dropped).
func (m *member) onMessage(ev MessageEvent) (reply MessageReply, ok bool) {
	hook := m.srv.opts.Hooks.OnMessage
	if hook == nil {
		return MessageReply{}, true
	}
	ev.Request, ev.Room, ev.From = m.req, m.room, m.name
	reply, err := hook(m.ctx, ev)
	if err != nil {
		rj := asReject(err, CodeMessageRefused)
		m.sendError(rj.Code, rj.Message)
		return reply, false
	}
	return reply, !reply.Drop
}

// say sends a text message from the member to the room.
func (m *member) say(text string) {
	s := m.srv
	reply, ok := m.onMessage(MessageEvent{Text: text})
	if !ok {
		return
	}
	if reply.Text != "" {
		text = reply.Text
	}
	msg := Message{From: m.name, Text: text, Time: time.Now()}
	if _, err := s.publishMessage(m.ctx, m.room, msg, &route{}); err != nil {
		m.notSent("wsroom: message not sent", err)
	}
	m.hub.throttle(m.ctx, s.throttleLimit())
}

// notSent reports a message the backend did not take. When the member is
// ending (it left, was removed, or the server is shutting down) the failure is
// the member's end, not the backend's, and is logged at Debug only.
func (m *member) notSent(msg string, err error) {
	if m.ctx.Err() != nil {
		m.srv.log.Debug(msg, "room", m.room, "from", m.name, "err", err)
		return
	}
	m.srv.log.Error(msg, "room", m.room, "from", m.name, "err", err)
	m.sendError(CodeUnavailable)
}

// relay sends a binary message from the member to the other members.
func (m *member) relay(data []byte) {
	s := m.srv
	reply, ok := m.onMessage(MessageEvent{Binary: true, Data: data})
	if !ok {
		return
	}
	if reply.Data != nil {
		data = reply.Data
	}
	p := &Publication{Room: m.room, Type: PubBinary, Name: m.name, Data: bytes.Clone(data)}
	if err := s.publish(m.ctx, p, &route{except: []string{m.name}}); err != nil {
		m.notSent("wsroom: binary message not sent", err)
	}
	m.hub.throttle(m.ctx, s.throttleLimit())
}

// watcher is the optional capability of a transport that takes part in
// the flow control: it tells when its client falls behind and catches up.
type watcher interface {
	watch(f func(behind bool))
}

// throttleLimit bounds how long a publisher waits for a congested room:
// after WriteTimeout, the members that are behind are being dropped
// anyway.
func (s *Server) throttleLimit() time.Duration {
	if s.opts.WriteTimeout > 0 {
		return s.opts.WriteTimeout
	}
	return 10 * time.Second
}

// historyCostUnit is how many bytes of a history page cost one more frame
// of the rate limit.
const historyCostUnit = 16 << 10

// history answers a history request with a page of messages before an ID,
// or the most recent ones, bounded by HistoryPage and HistoryBytes. A page
// costs the rate limit one frame per historyCostUnit of bytes.
func (m *member) history(before msgID, limit int) {
	s := m.srv
	if limit <= 0 || limit > s.opts.HistoryPage {
		limit = s.opts.HistoryPage
	}
	ctx, cancel := s.backendCtx(m.ctx)
	defer cancel()
	var msgs []Message
	var err error
	if before.set {
		msgs, err = s.opts.Store.Before(ctx, m.room, before.v, limit+1)
	} else {
		msgs, err = s.opts.Store.Recent(ctx, m.room, limit+1)
	}
	if err != nil {
		s.log.Error("wsroom: history failed", "room", m.room, "err", err)
		m.sendError(CodeUnavailable)
		return
	}
	more := len(msgs) > limit
	if more {
		msgs = msgs[1:]
	}
	msgs, cut := fitBytes(msgs, s.opts.HistoryBytes)
	e := &event{json: encodeHistory(msgs, more || cut)}
	m.limiter.charge(float64(len(e.json)) / historyCostUnit)
	m.t.send(e)
}

// members answers a members request with a page of the member list.
func (m *member) members(after string, limit int) {
	s := m.srv
	if limit <= 0 || limit > s.opts.MembersPage {
		limit = s.opts.MembersPage
	}
	ctx, cancel := s.backendCtx(m.ctx)
	defer cancel()
	names, count, err := s.opts.Store.Members(ctx, m.room, after, limit+1)
	if err != nil {
		s.log.Error("wsroom: members failed", "room", m.room, "err", err)
		m.sendError(CodeUnavailable)
		return
	}
	more := len(names) > limit
	if more {
		names = names[:limit]
	}
	e := &event{json: encodeMembers(names, count, more)}
	m.limiter.charge(float64(len(e.json)) / historyCostUnit)
	m.t.send(e)
}

// leave runs once the transport stopped reading: the member leaves the
// room (the store, the other members and the OnLeave hook learn of it).
// Its departure is announced only if it still held its name: not when a
// newer connection replaced it or its server lost the name's lease.
func (m *member) leave() {
	s := m.srv
	m.joinTimer.stop()
	defer m.cancel()
	if !m.joined.Load() {
		return
	}
	// What follows must happen even when the server is shutting down.
	ctx := context.WithoutCancel(m.ctx)
	reason, code, err := m.t.ended()
	h := m.hub
	if w, ok := m.t.(watcher); ok {
		w.watch(nil)
	}
	h.remove(m)
	s.stats.members.Add(-1)
	s.left(reason)
	if s.releaseName(ctx, m.res) {
		h.announce(ctx, PubLeave, m.name)
	}
	level := slog.LevelDebug
	if reason != ReasonClosed && reason != ReasonShutdown {
		level = slog.LevelInfo // the server's decision: worth a line
	}
	s.log.Log(ctx, level, "wsroom: member left", "room", m.room, "name", m.name, "reason", reason.String(), "code", code, "err", err)
	if hook := s.opts.Hooks.OnLeave; hook != nil {
		func() {
			defer func() {
				if v := recover(); v != nil {
					s.log.Error("wsroom: panic in OnLeave", "room", m.room, "name", m.name, "panic", v, "stack", string(debug.Stack()))
				}
			}()
			hook(ctx, LeaveEvent{Room: m.room, Name: m.name, Reason: reason, Code: code, Err: err})
		}()
	}
	s.release(ctx, h)
}

// sendError queues an error event for this member alone. The message is
// the code's fixed text unless one is given (a hook's RejectError).
func (m *member) sendError(code string, message ...string) {
	msg := errorText(code)
	if len(message) > 0 && message[0] != "" {
		msg = message[0]
	}
	e := &event{}
	if m.plain {
		if line := m.srv.opts.Text.error(code, msg); line != "" {
			e.plain = [][]byte{[]byte(line)}
		}
	} else {
		e.json = encodeError(code, msg)
	}
	m.t.send(e)
}

// clip cuts s to at most n bytes, on a character boundary, marking the
// cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return truncateUTF8(s, n) + "…"
}
