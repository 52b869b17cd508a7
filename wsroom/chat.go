package wsroom

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/coder/websocket"
)

// admission is what the chat endpoint decided about a request before the
// upgrade.
type admission struct {
	room     string
	connID   string
	identity string // the name Identify gave; "" lets the client choose
	since    msgID  // from the URL
	// For an identified member, its name is reserved before the upgrade,
	// so that a refusal is an HTTP status.
	reserved bool
	res      Reservation
	replaced Owner
}

// serveChat is the chat endpoint for one room: admission, the upgrade,
// then the member's life until it leaves.
//
// The functions on the way to the upgrade keep small frames, and the work
// before it (the hooks) runs in a function that returns first: the upgrade
// is the deepest moment of a connection's life (net/http writes the 101
// response under it), and a goroutine that overflows its first 8 KiB of
// stack there keeps 16 KiB for as long as the connection lives.
func (s *Server) serveChat(w http.ResponseWriter, r *http.Request, room string) {
	c, adm := s.openChat(w, r, room)
	if c == nil {
		return
	}
	defer s.end(c.ip)
	defer s.unregister(c)
	m := newMember(s, c, r, adm)
	c.serveMember(m, adm)
}

// openChat refuses or upgrades a chat request. It returns the connection,
// counted in and registered, or nil when the request was answered.
func (s *Server) openChat(w http.ResponseWriter, r *http.Request, room string) (*wsConn, *admission) {
	ip, ok := s.begin(w, r)
	if !ok {
		return nil, nil
	}
	done := false
	defer func() {
		if !done { // refused, or a hook panicked
			s.end(ip)
		}
	}()
	adm, ok := s.admitChat(w, r, room)
	if !ok {
		return nil, nil
	}
	conn, nc, fw, err := s.accept(w, r, chatProtocols)
	if err != nil {
		if adm.reserved {
			s.releaseName(context.WithoutCancel(r.Context()), adm.res)
		}
		return nil, nil
	}
	c := newWSConn(s, conn, nc, fw, conn.Subprotocol() != Subprotocol)
	c.ip = ip
	if !s.register(c) {
		if adm.reserved {
			s.releaseName(context.WithoutCancel(r.Context()), adm.res)
		}
		return nil, nil
	}
	done = true
	return c, adm
}

var chatProtocols = []string{Subprotocol}

// admitChat answers a request that cannot become a chat connection and
// reports ok for one that can: the WebSocket's own checks (refuse), then
// those the fallback shares (admit).
func (s *Server) admitChat(w http.ResponseWriter, r *http.Request, room string) (*admission, bool) {
	if err := checkName(room, maxRoomLength); err != nil {
		http.Error(w, "bad room name", http.StatusBadRequest)
		return nil, false
	}
	if s.refuse(w, r) {
		return nil, false
	}
	return s.admit(w, r, room, r.URL.Query().Get("since"))
}

// admit is the admission both transports share, once the request is known
// to be for a room and from an allowed origin: the resume point (since, a
// message ID), the Identify hook, and the reservation of an identified
// member's name. It answers a refusal with its HTTP status.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, room, since string) (*admission, bool) {
	adm := &admission{room: room, connID: strconv.FormatUint(connSeq.Add(1), 36)}
	if v := since; v != "" {
		id, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			http.Error(w, "bad since", http.StatusBadRequest)
			return nil, false
		}
		adm.since = msgID{v: id, set: true}
	}
	hook := s.opts.Hooks.Identify
	if hook == nil {
		return adm, true
	}
	reply, err := hook(r.Context(), IdentifyEvent{Request: r, Room: room})
	if err != nil {
		rj := asReject(err, "")
		if rj.Message == "" {
			rj.Message = http.StatusText(rj.Status)
		}
		s.log.Debug("wsroom: identify refused", "room", room, "status", rj.Status, "err", err)
		http.Error(w, rj.Message, rj.Status)
		return nil, false
	}
	adm.identity = cleanName(reply.Name)
	if adm.identity == "" {
		return adm, true
	}
	if err := checkName(adm.identity, s.opts.MaxNameLength); err != nil {
		s.log.Warn("wsroom: Identify returned a bad name", "room", room, "err", err)
		http.Error(w, "bad member name", http.StatusForbidden)
		return nil, false
	}
	res, replaced, rj := s.admitName(r.Context(), r, room, adm.identity, adm.connID, adm.since.set, true)
	if rj != nil {
		http.Error(w, rj.Message, rj.Status)
		return nil, false
	}
	adm.identity = res.Name // OnJoin may rename
	adm.reserved, adm.res, adm.replaced = true, res, replaced
	return adm, true
}

// admitName checks a name, runs the OnJoin hook and reserves the name. A
// refusal comes back as a RejectError with the error code and HTTP status
// to answer with.
func (s *Server) admitName(ctx context.Context, r *http.Request, room, name, connID string, resume, identified bool) (Reservation, Owner, *RejectError) {
	name, rj := s.checkJoin(ctx, r, room, name, resume, identified)
	if rj != nil {
		return Reservation{}, Owner{}, rj
	}
	return s.reserveName(ctx, room, name, connID, identified)
}

// checkJoin checks a name and runs the OnJoin hook, which may rename the
// member: it returns the name to reserve.
func (s *Server) checkJoin(ctx context.Context, r *http.Request, room, name string, resume, identified bool) (string, *RejectError) {
	name = cleanName(name)
	if err := checkName(name, s.opts.MaxNameLength); err != nil {
		return "", reject(http.StatusBadRequest, CodeBadName)
	}
	if hook := s.opts.Hooks.OnJoin; hook != nil {
		reply, err := hook(ctx, JoinEvent{Request: r, Room: room, Name: name, Resume: resume, Identified: identified})
		if err != nil {
			rj := asReject(err, CodeJoinRefused)
			if rj.Message == "" {
				rj.Message = errorText(rj.Code)
			}
			return "", &rj
		}
		if reply.Name != "" {
			name = cleanName(reply.Name)
			if err := checkName(name, s.opts.MaxNameLength); err != nil {
				return "", reject(http.StatusBadRequest, CodeBadName)
			}
		}
	}
	return name, nil
}

// reserveName reserves a checked name for a connection of this server.
func (s *Server) reserveName(ctx context.Context, room, name, connID string, identified bool) (Reservation, Owner, *RejectError) {
	replace := identified && s.opts.Duplicates == DuplicateReplace
	res, replaced, err := s.reserve(ctx, room, name, connID, replace)
	switch {
	case err == nil:
		return res, replaced, nil
	case errors.Is(err, ErrNameTaken):
		return Reservation{}, Owner{}, reject(http.StatusConflict, CodeNameTaken)
	case errors.Is(err, ErrRoomFull):
		return Reservation{}, Owner{}, reject(http.StatusServiceUnavailable, CodeRoomFull)
	}
	s.log.Error("wsroom: reserve failed", "room", room, "name", name, "err", err)
	return Reservation{}, Owner{}, reject(http.StatusServiceUnavailable, CodeUnavailable)
}

func reject(status int, code string) *RejectError {
	return &RejectError{Status: status, Code: code, Message: errorText(code)}
}

// serveMember is the member's reading loop: it returns once the member has
// left and every goroutine the connection started has ended.
func (c *wsConn) serveMember(m *member, adm *admission) {
	c.startHeartbeat()
	m.start(adm)
	for !c.isKilled() {
		typ, bp, err := c.read()
		if err != nil {
			c.readFailed(err)
			break
		}
		m.handle(typ, (*bp)[maxHeader:])
		putBuf(bp)
	}
	m.leave()
	c.close()
}

// StatusReplaced is the close code of a connection whose member name a
// newer connection of the same identified user took over (Options.Duplicates
// DuplicateReplace). A client must not reconnect on it, or two tabs would
// take the name from each other forever.
const StatusReplaced websocket.StatusCode = 4001

// StatusLeaseLost is the close code (1012, service restart) of the members
// of a server that lost its presence lease (a backend outage longer than
// Options.LeaseTime): their departures were announced, and they should
// reconnect.
const StatusLeaseLost = websocket.StatusServiceRestart
