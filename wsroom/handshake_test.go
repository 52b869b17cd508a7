package wsroom_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// rawRequest sends a raw HTTP request and returns the response.
func rawRequest(t *testing.T, e *env, req string) *http.Response {
	t.Helper()
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	nc, err := net.DialTimeout("tcp", addr, testTimeout)
	assert.Success(t, err)
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(testTimeout))
	_, err = io.WriteString(nc, strings.ReplaceAll(req, "HOST", addr))
	assert.Success(t, err)
	resp, err := http.ReadResponse(bufio.NewReader(nc), nil)
	assert.Success(t, err)
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp
}

func TestHandshakeRefusals(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, path := range []string{"/chat", "/chat/r", "/echo"} {
		// A plain GET, as from a browser's address bar.
		resp := rawRequest(t, e, "GET "+path+" HTTP/1.1\r\nHost: HOST\r\n\r\n")
		assert.Equal(t, "plain GET "+path, http.StatusUpgradeRequired, resp.StatusCode)

		// The hixie-76 handshake of the original page's era: no
		// Sec-WebSocket-Version, two keys and eight bytes of body.
		resp = rawRequest(t, e, "GET "+path+" HTTP/1.1\r\nHost: HOST\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\n"+
			"Origin: http://HOST\r\nSec-WebSocket-Key1: 4 @1  46546xW%0l 1 5\r\nSec-WebSocket-Key2: 12998 5 Y3 1  .P00\r\n\r\n^n:ds[4U")
		assert.Equal(t, "hixie-76 "+path, http.StatusUpgradeRequired, resp.StatusCode)
		assert.Equal(t, "version advertised", "13", resp.Header.Get("Sec-WebSocket-Version"))

		// Version 8 (an old draft) is refused the same way.
		resp = rawRequest(t, e, "GET "+path+" HTTP/1.1\r\nHost: HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
			"Sec-WebSocket-Version: 8\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n")
		assert.Equal(t, "draft version "+path, http.StatusUpgradeRequired, resp.StatusCode)
		assert.Equal(t, "version advertised", "13", resp.Header.Get("Sec-WebSocket-Version"))

		resp = rawRequest(t, e, "POST "+path+" HTTP/1.1\r\nHost: HOST\r\nContent-Length: 0\r\n\r\n")
		assert.Equal(t, "POST "+path, http.StatusMethodNotAllowed, resp.StatusCode)

		// A missing key is a bad request, not a server error.
		resp = rawRequest(t, e, "GET "+path+" HTTP/1.1\r\nHost: HOST\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n")
		assert.Equal(t, "no key "+path, http.StatusBadRequest, resp.StatusCode)
	}
	resp := rawRequest(t, e, "GET /chat/"+strings.Repeat("x", 65)+" HTTP/1.1\r\nHost: HOST\r\n\r\n")
	assert.Equal(t, "room name too long", http.StatusBadRequest, resp.StatusCode)
}

func TestOriginPolicy(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		opts   wsroom.Options
		origin string
		ok     bool
	}{
		{"no origin (not a browser)", wsroom.Options{}, "", true},
		{"same origin", wsroom.Options{}, "http://HOST", true},
		{"cross site", wsroom.Options{}, "https://evil.example", false},
		{"null origin", wsroom.Options{}, "null", false},
		{"allowlisted", wsroom.Options{OriginPatterns: []string{"*.example.com"}}, "https://app.example.com", true},
		{"allowlisted with scheme", wsroom.Options{OriginPatterns: []string{"https://app.example.com"}}, "https://app.example.com", true},
		{"scheme mismatch", wsroom.Options{OriginPatterns: []string{"https://app.example.com"}}, "http://app.example.com", false},
		{"not allowlisted", wsroom.Options{OriginPatterns: []string{"*.example.com"}}, "https://example.org", false},
		{"InsecureSkipVerify", wsroom.Options{InsecureSkipVerify: true}, "https://evil.example", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			opts := tc.opts
			e := newEnv(t, &opts)
			h := http.Header{}
			if tc.origin != "" {
				h.Set("Origin", strings.ReplaceAll(tc.origin, "HOST", strings.TrimPrefix(e.ts.URL, "http://")))
			}
			for _, path := range []string{"/chat/r", "/echo"} {
				_, err := e.dialErr(path, true, h)
				if tc.ok {
					assert.Success(t, err)
				} else {
					assert.True(t, "refused with 403: "+path, err != nil && strings.Contains(err.Error(), "403"))
				}
			}
		})
	}
}

func TestBadOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range []wsroom.Options{
		{OriginPatterns: []string{"[bad"}},
		{DefaultRoom: "bad\x00room"},
		{RateBurst: -1},
		{PongTimeout: -1},
	} {
		_, err := wsroom.New(&opts)
		assert.ErrorIs(t, wsroom.ErrBadOptions, err)
	}
	_, err := wsroom.New(nil)
	assert.Success(t, err)
}

// bufferingWriter is a ResponseWriter of a framework that keeps the status
// line and headers in the hijacked connection's buffer instead of sending
// them before Hijack returns.
type bufferingWriter struct {
	http.ResponseWriter
	status int
}

func (w *bufferingWriter) WriteHeader(code int) { w.status = code }

func (w *bufferingWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(brw.Writer, "HTTP/1.1 %d %s\r\n", w.status, http.StatusText(w.status))
	w.Header().Write(brw.Writer)
	brw.Writer.WriteString("\r\n")
	return c, brw, nil
}

// TestUpgradeUnderBufferingFramework: what a framework left in the buffer
// goes out with the upgrade, and frames follow it.
func TestUpgradeUnderBufferingFramework(t *testing.T) {
	t.Parallel()
	srv, err := wsroom.New(&wsroom.Options{Logger: quiet})
	assert.Success(t, err)
	echo := srv.Echo()
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		echo.ServeHTTP(&bufferingWriter{ResponseWriter: w}, r)
	}))
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		assert.Success(t, srv.Shutdown(ctx))
		ts.Close()
	})
	ctx := testContext(t)
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(ts.URL, "http"), nil)
	assert.Success(t, err)
	defer c.CloseNow()
	for _, msg := range []string{"one", strings.Repeat("two", 1000)} {
		assert.Success(t, c.Write(ctx, websocket.MessageText, []byte(msg)))
		typ, b, err := c.Read(ctx)
		assert.Success(t, err)
		assert.Equal(t, "echo", websocket.MessageText, typ)
		assert.Equal(t, "echo", msg, string(b))
	}
	assert.Success(t, c.Close(websocket.StatusNormalClosure, ""))
}
