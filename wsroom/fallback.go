package wsroom

import (
	"context"
	"crypto/rand"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// The HTTP fallback: rooms for clients whose network blocks WebSocket.
//
// A GET with "Accept: text/event-stream" on a chat endpoint opens a
// Server-Sent Events stream (sse.go), admitted as an upgrade is (caps,
// origin, since or Last-Event-ID, Identify, an identified member's name
// reserved first) and answered the same statuses. Its first event names a
// token; POSTs to the endpoint carry the token in the Wsroom-Token header
// and the client's frames in their body: text frames one a line
// (text/plain or application/json, at most MaxMessageBytes in all), or one
// binary message (application/octet-stream, at most MaxBinaryBytes). A POST
// that lands on another server than the stream's (no sticky sessions) is
// forwarded to it through the Broker (forward.go).
//
// POST statuses: 202 queued for the member; 403 cross-site
// Origin; 404 no such stream (a token never issued, expired with its
// stream, or ending); 405 fallback off; 413 body over its limit (the
// stream closes with 1009, as a WebSocket would); 415 another content
// type; 429 the stream has postQueue POSTs waiting; 503 shutting down, or
// the stream's server did not answer a forwarded POST within
// BackendTimeout.

// TokenHeader is the request header of a fallback POST that names the
// event stream it is for, by the token the stream's first event gave.
const TokenHeader = "Wsroom-Token"

// fallback is a Server's registry of event streams by token, and the
// state of the POSTs it forwards to other servers (forward.go).
type fallback struct {
	mu      sync.Mutex
	streams map[string]*sseConn

	// forwarding: the subscription to this server's topic, and the
	// forwarded POSTs waiting for their reply. Guarded by mu; subMu
	// orders subscribing and closing.
	subMu   sync.Mutex
	closed  bool
	unsub   func()
	seq     uint64
	pending map[uint64]chan int
	replies sync.WaitGroup // replies being published
}

// isStream reports whether r asks for the fallback's event stream.
func (s *Server) isStream(r *http.Request) bool {
	return !s.opts.NoFallback && r.Method == http.MethodGet &&
		!headerHasToken(r.Header, "Upgrade", "websocket") &&
		headerHasToken(r.Header, "Accept", "text/event-stream")
}

// serveStream is the fallback's chat endpoint for one room: admission,
// then the member's life on the stream until it leaves.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, room string) {
	c, adm := s.openStream(w, r, room)
	if c == nil {
		return
	}
	defer s.end(c.ip)
	defer s.fb.unregister(s, c)
	stop := c.watchShutdown()
	defer stop()
	m := newMember(s, c, r, adm)
	c.serveMember(m, adm, r.Context().Done())
}

// openStream refuses a stream request, or admits it and starts the
// stream. It returns the stream, counted in and registered, or nil when
// the request was answered.
func (s *Server) openStream(w http.ResponseWriter, r *http.Request, room string) (*sseConn, *admission) {
	ip, ok := s.begin(w, r)
	if !ok {
		return nil, nil
	}
	done := false
	var adm *admission
	defer func() {
		if !done { // refused, or a hook panicked
			if adm != nil && adm.reserved {
				s.releaseName(context.WithoutCancel(r.Context()), adm.res)
			}
			s.end(ip)
		}
	}()
	if err := checkName(room, maxRoomLength); err != nil {
		http.Error(w, "bad room name", http.StatusBadRequest)
		return nil, nil
	}
	if s.refuseCrossSite(w, r) {
		return nil, nil
	}
	s.cors(w, r) // an allowed cross-site page may read a refusal's status too
	if !flushable(w) {
		s.log.Error("wsroom: cannot stream: no ResponseWriter on the chain can flush; "+
			"give the middleware's wrapper an Unwrap() http.ResponseWriter method that returns the writer it wraps", "path", r.URL.Path)
		http.Error(w, "this server cannot stream events", http.StatusNotImplemented)
		return nil, nil
	}
	since := r.URL.Query().Get("since")
	if since == "" {
		since = r.Header.Get("Last-Event-ID")
	}
	if adm, ok = s.admit(w, r, room, since); !ok {
		adm = nil
		return nil, nil
	}
	if err := s.fb.listen(s); err != nil {
		s.log.Error("wsroom: cannot subscribe to the server's topic; fallback streams refused", "err", err)
		http.Error(w, "the server is unavailable; try again later", http.StatusServiceUnavailable)
		return nil, nil
	}
	c := newSSEConn(s, w, s.id+"."+rand.Text(), ip)
	if !s.fb.register(s, c) {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return nil, nil
	}
	// Past this point the stream's goroutine owns the ResponseWriter.
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache, no-transform")
	h.Set("X-Accel-Buffering", "no") // nginx: pass each event on at once
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	// A stream lives longer than the http.Server's ReadTimeout, which
	// would otherwise end the request's context (as if the client had
	// gone) while the client is listening.
	c.rc.SetReadDeadline(time.Time{})
	c.wmu.Lock()
	err := c.writeLocked(streamHello(c.token, postURL(r), s.opts))
	c.wmu.Unlock()
	if err != nil {
		s.fb.unregister(s, c)
		return nil, nil
	}
	done = true
	return c, adm
}

// postURL is where the stream's POSTs go, relative to the stream's URL:
// the same path and query, less the resume point.
func postURL(r *http.Request) string {
	q := r.URL.Query()
	q.Del("since")
	return "?" + q.Encode()
}

// flushable reports whether w, or a ResponseWriter it wraps, can flush.
func flushable(w http.ResponseWriter) bool {
	for {
		if _, ok := w.(http.Flusher); ok {
			return true
		}
		if _, ok := w.(interface{ FlushError() error }); ok {
			return true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return false
		}
		w = u.Unwrap()
	}
}

// refuseCrossSite is refuseOrigin for the stream, which a page can ask for
// without sending an Origin: a browser sends none with a "no-cors" fetch,
// and such a request would open a stream with the user's cookies (and,
// under Identify, take over the user's name) from any site. A request
// without an Origin that the browser marks as not from the same origin
// (Sec-Fetch-Site) is refused like a cross-site Origin.
func (s *Server) refuseCrossSite(w http.ResponseWriter, r *http.Request) bool {
	if s.refuseOrigin(w, r) {
		return true
	}
	if r.Header.Get("Origin") == "" && !s.opts.InsecureSkipVerify {
		switch r.Header.Get("Sec-Fetch-Site") {
		case "cross-site", "same-site":
			s.log.Debug("wsroom: cross-site stream request without an Origin refused", "host", r.Host)
			http.Error(w, "cross-site requests need an Origin", http.StatusForbidden)
			return true
		}
	}
	return false
}

// cors lets an allowed cross-site page (OriginPatterns) read the stream and
// the POSTs' answers, with its cookies, as it may use a WebSocket.
func (s *Server) cors(w http.ResponseWriter, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return // same origin
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
	h.Add("Vary", "Origin")
}

// servePost serves the fallback's POSTs (and the CORS preflight of an
// allowed cross-site page's). It reports false, without answering, for
// another request (a POST without a token, say) or when the fallback is
// off: the WebSocket endpoint refuses it (405).
func (s *Server) servePost(w http.ResponseWriter, r *http.Request) bool {
	if s.opts.NoFallback {
		return false
	}
	token := r.Header.Get(TokenHeader)
	switch {
	case r.Method == http.MethodPost && token != "":
	case r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "":
		s.preflight(w, r)
		return true
	default:
		return false // not the fallback's: the WebSocket endpoint's refusal
	}
	if s.refuseOrigin(w, r) {
		return true
	}
	s.cors(w, r)
	if s.shuttingDown() {
		http.Error(w, "server shutting down", http.StatusServiceUnavailable)
		return true
	}
	server, ok := tokenServer(token)
	if !ok {
		http.Error(w, "no such stream", http.StatusNotFound)
		return true
	}
	binary, ok := postKind(r.Header.Get("Content-Type"))
	if !ok {
		http.Error(w, "a POST is text/plain or application/json (frames, one a line), or application/octet-stream (one binary message)", http.StatusUnsupportedMediaType)
		return true
	}
	var c *sseConn
	if server == s.id {
		if c = s.fb.lookup(token); c == nil {
			http.Error(w, "no such stream", http.StatusNotFound)
			return true
		}
	}
	limit := s.opts.MaxMessageBytes
	if binary {
		limit = s.opts.MaxBinaryBytes
	}
	f := sseFrames{binary: binary}
	var err error
	if f.data, err = readBody(w, r, limit); err != nil {
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			http.Error(w, "could not read the body", http.StatusBadRequest)
			return true
		}
		f.data, f.tooBig = nil, true
	}
	var status int
	if c != nil {
		status = c.enqueue(f)
	} else {
		status = s.forward(r.Context(), server, token, f)
	}
	switch {
	case f.tooBig && status == http.StatusAccepted:
		http.Error(w, "the body is over its limit; the stream closes with 1009", http.StatusRequestEntityTooLarge)
	case status == http.StatusAccepted:
		w.WriteHeader(status)
	default:
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "1")
		}
		http.Error(w, http.StatusText(status), status)
	}
	return true
}

// preflight answers the CORS preflight of an allowed cross-site page.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	if s.refuseOrigin(w, r) {
		return
	}
	s.cors(w, r)
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "GET, POST")
	h.Set("Access-Control-Allow-Headers", TokenHeader+", Content-Type, Last-Event-ID")
	h.Set("Access-Control-Max-Age", "600")
	w.WriteHeader(http.StatusNoContent)
}

// postKind tells a POST's body by its Content-Type: text frames or a
// binary message; ok is false for any other type.
func postKind(ctype string) (binary, ok bool) {
	if ctype == "" {
		return false, true
	}
	mt, _, err := mime.ParseMediaType(ctype)
	if err != nil {
		return false, false
	}
	switch mt {
	case "text/plain", "application/json":
		return false, true
	case "application/octet-stream":
		return true, true
	}
	return false, false
}

// readBody reads a POST's body, at most limit bytes (limit < 0: no limit).
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := r.Body
	if limit >= 0 {
		body = http.MaxBytesReader(w, r.Body, limit)
	}
	return io.ReadAll(body)
}

// tokenServer returns the server part of a token: the id of the Server
// that issued it.
func tokenServer(token string) (string, bool) {
	server, secret, ok := strings.Cut(token, ".")
	if !ok || len(server) != 26 || len(secret) != 26 {
		return "", false
	}
	for i := 0; i < len(server); i++ {
		if c := server[i]; !('A' <= c && c <= 'Z' || '2' <= c && c <= '7') {
			return "", false
		}
	}
	return server, true
}

// register makes a stream known by its token, and to Stats; false once
// the server is shutting down.
func (f *fallback) register(s *Server, c *sseConn) bool {
	if s.shuttingDown() {
		return false
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams == nil {
		f.streams = make(map[string]*sseConn)
	}
	f.streams[c.token] = c
	s.stats.conns.Add(1)
	s.stats.streams.Add(1)
	return true
}

func (f *fallback) unregister(s *Server, c *sseConn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.streams[c.token] == c {
		delete(f.streams, c.token)
		s.stats.conns.Add(-1)
		s.stats.streams.Add(-1)
	}
}

func (f *fallback) lookup(token string) *sseConn {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.streams[token]
}

// depth returns what waits in the streams' queues.
func (f *fallback) depth() (events, bytes int64) {
	f.mu.Lock()
	conns := make([]*sseConn, 0, len(f.streams))
	for _, c := range f.streams {
		conns = append(conns, c)
	}
	f.mu.Unlock()
	for _, c := range conns {
		e, b := c.out.depth()
		events += int64(e)
		bytes += b
	}
	return events, bytes
}
