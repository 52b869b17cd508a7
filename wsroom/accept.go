package wsroom

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path"
	"runtime/debug"
	"strings"

	"github.com/coder/websocket"
)

// refuse answers a request that cannot be upgraded and reports whether it
// did. Old and broken handshakes get a 4xx, never a 200 or a 500: a request
// without an upgrade gets 426 (RFC 6455 §4.2.1), and an upgrade for another
// protocol version, such as the hixie-76 handshake of old browsers, gets 426
// with Sec-WebSocket-Version: 13 (§4.4).
func (s *Server) refuse(w http.ResponseWriter, r *http.Request) bool {
	if r.Method != http.MethodGet {
		w.Header().Set("Allow", http.MethodGet)
		http.Error(w, "a WebSocket handshake is a GET request", http.StatusMethodNotAllowed)
		return true
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") || !headerHasToken(r.Header, "Connection", "upgrade") {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "this endpoint speaks WebSocket (RFC 6455) only", http.StatusUpgradeRequired)
		return true
	}
	if r.Header.Get("Sec-WebSocket-Version") != "13" {
		w.Header().Set("Upgrade", "websocket")
		w.Header().Set("Sec-WebSocket-Version", "13")
		http.Error(w, "unsupported WebSocket version; this server speaks version 13 (RFC 6455)", http.StatusUpgradeRequired)
		return true
	}
	if s.refuseOrigin(w, r) {
		return true
	}
	if chain, ok := hijackable(w); !ok {
		// Answer before anything is written: behind such a wrapper the
		// upgrade would send 101 and then fail, leaving the client with
		// silence.
		s.log.Error("wsroom: cannot upgrade: no ResponseWriter on the chain can hijack the connection; "+
			"give the middleware's wrapper an Unwrap() http.ResponseWriter method that returns the writer it wraps",
			"writers", chain, "path", r.URL.Path)
		http.Error(w, "this server cannot upgrade the connection", http.StatusNotImplemented)
		return true
	}
	return false
}

// refuseOrigin answers 403 to a request from a cross-site page that
// Options.OriginPatterns does not allow, and reports whether it did. Both
// transports check it: the upgrade, and the fallback's stream and POSTs.
func (s *Server) refuseOrigin(w http.ResponseWriter, r *http.Request) bool {
	if err := s.checkOrigin(r); err != nil {
		s.log.Debug("wsroom: cross-origin request refused", "origin", r.Header.Get("Origin"), "host", r.Host)
		http.Error(w, err.Error(), http.StatusForbidden)
		return true
	}
	return false
}

// hijackable reports whether w, or a ResponseWriter it wraps (through
// Unwrap, as http.ResponseController follows), can hijack the connection,
// and names the writers it went through.
func hijackable(w http.ResponseWriter) (chain string, ok bool) {
	var b strings.Builder
	for {
		if b.Len() > 0 {
			b.WriteString(" -> ")
		}
		fmt.Fprintf(&b, "%T", w)
		if _, ok := w.(http.Hijacker); ok {
			return b.String(), true
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return b.String(), false
		}
		w = u.Unwrap()
	}
}

// checkOrigin allows requests without an Origin (not from a browser), from
// the same host, or from an origin allowed by OriginPatterns.
func (s *Server) checkOrigin(r *http.Request) error {
	origin := r.Header.Get("Origin")
	if origin == "" || s.opts.InsecureSkipVerify {
		return nil
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" {
		if strings.EqualFold(u.Host, r.Host) {
			return nil
		}
		for _, p := range s.opts.OriginPatterns {
			target := u.Host
			if strings.Contains(p, "://") {
				target = u.Scheme + "://" + u.Host
			}
			if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
				return nil
			}
		}
	}
	return fmt.Errorf("origin %q is not allowed", origin)
}

func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for t := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(t), token) {
				return true
			}
		}
	}
	return false
}

// accept upgrades the connection. It returns the library's connection and
// wsroom's own handles on the hijacked connection: the inspecting reader
// (for read deadlines, which wake a blocked reader without a timer or a
// context per read) and the frameWriter, the only way out.
//
// The upgrade runs on a goroutine of its own, which the handler waits for:
// it is the deepest moment of a connection's life (net/http writes the 101
// response under it), and the runtime seldom gives back stack that a
// goroutine grew, so doing it on the handler's goroutine, under the frames of
// whatever router mounts the Server, would double the stack every member
// keeps for as long as it is connected. A panic there is passed back to the
// handler's goroutine.
func (s *Server) accept(w http.ResponseWriter, r *http.Request, subprotocols []string) (*websocket.Conn, *inspectConn, *frameWriter, error) {
	hr := &hijackRecorder{ResponseWriter: w, s: s, ping: newPingGuard(s.opts)}
	done := make(chan acceptResult, 1)
	go s.acceptOn(hr, r, subprotocols, done)
	res := <-done
	if res.panicked {
		// A panic in the router's WriteHeader or Hijack belongs to the
		// request's goroutine, where net/http or the router's recoverer
		// handles it as it would any other.
		panic(res.panicVal)
	}
	if res.err != nil {
		return nil, nil, nil, res.err
	}
	return res.conn, hr.conn, hr.fw, nil
}

type acceptResult struct {
	conn     *websocket.Conn
	err      error
	panicked bool
	panicVal any
}

func (s *Server) acceptOn(hr *hijackRecorder, r *http.Request, subprotocols []string, done chan<- acceptResult) {
	defer func() {
		if v := recover(); v != nil {
			if v != http.ErrAbortHandler {
				s.log.Error("wsroom: panic during the upgrade; passed on to the request's goroutine", "panic", v, "stack", string(debug.Stack()))
			}
			done <- acceptResult{panicked: true, panicVal: v}
		}
	}()
	var onPing func(context.Context, []byte) bool
	if hr.ping != nil {
		onPing = hr.ping.onPing
	}
	c, err := websocket.Accept(hr, r, &websocket.AcceptOptions{
		OnPingReceived: onPing,
		Subprotocols:   subprotocols,
		// Never permessage-deflate, whatever the client offers: wsroom
		// writes its data frames itself, uncompressed (see frameWriter).
		CompressionMode: websocket.CompressionDisabled,
		// checkOrigin ran before the Identify hook; this repeats it.
		OriginPatterns:     s.opts.OriginPatterns,
		InsecureSkipVerify: s.opts.InsecureSkipVerify,
	})
	if err != nil {
		s.log.Debug("wsroom: upgrade failed", "err", err)
		done <- acceptResult{err: fmt.Errorf("wsroom: accept: %w", err)}
		return
	}
	// The inspector refuses an oversized message at its header; the
	// library's own limit stays as a second line.
	text, bin := s.opts.MaxMessageBytes, s.opts.MaxBinaryBytes
	limit := max(text, bin)
	if text < 0 || bin < 0 {
		limit = -1
	}
	c.SetReadLimit(limit)
	done <- acceptResult{conn: c}
}

// hijackRecorder passes the Hijack through to the real ResponseWriter. It
// hands the library the connection behind an inspectConn, and puts a
// frameWriter under the library's buffered writer.
type hijackRecorder struct {
	http.ResponseWriter
	s    *Server
	ping *pingGuard // nil: pings are not limited
	conn *inspectConn
	fw   *frameWriter
}

func (h *hijackRecorder) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	var c net.Conn
	var brw *bufio.ReadWriter
	var err error
	if hj, ok := h.ResponseWriter.(http.Hijacker); ok {
		c, brw, err = hj.Hijack() // the common case, and one frame less deep
	} else {
		c, brw, err = http.NewResponseController(h.ResponseWriter).Hijack()
	}
	if err != nil {
		return nil, nil, err
	}
	// What a framework left in the buffer (its own copy of the 101, say)
	// goes out now; then every frame goes through the frameWriter.
	if err := brw.Writer.Flush(); err != nil {
		c.Close()
		return nil, nil, fmt.Errorf("wsroom: flush before upgrade: %w", err)
	}
	h.fw = newFrameWriter(c, h.s.opts.WriteTimeout)
	brw.Writer.Reset(h.fw)
	// What the client sent right after its handshake, and everything
	// after it, is read through the inspector.
	var pre []byte
	if n := brw.Reader.Buffered(); n > 0 {
		b, _ := brw.Reader.Peek(n)
		pre = bytes.Clone(b)
	}
	h.conn = newInspectConn(c, pre, h.s.opts.MaxMessageBytes, h.s.opts.MaxBinaryBytes)
	h.conn.ping = h.ping
	brw.Reader.Reset(h.conn)
	return h.conn, brw, nil
}

func (h *hijackRecorder) Unwrap() http.ResponseWriter { return h.ResponseWriter }

// WriteHeaderNow is what gin's ResponseWriter needs after WriteHeader for
// the 101 to be sent; websocket.Accept calls it when present.
func (h *hijackRecorder) WriteHeaderNow() {
	if w, ok := h.ResponseWriter.(interface{ WriteHeaderNow() }); ok {
		w.WriteHeaderNow()
	}
}
