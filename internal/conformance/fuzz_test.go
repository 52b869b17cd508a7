package conformance_test

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// The fuzz targets send the fuzzer's bytes as the client's stream after a
// real handshake, then half-close the connection (FIN). Whatever the bytes,
// the server must not panic, must end the connection (a FIN leaves it
// nothing more to read), must send only well-formed frames, and must be
// left with no goroutine of the connection once its handler returned.
//
//	go test -run='^$' -fuzz=FuzzEchoFrames -fuzztime=10s ./internal/conformance
//	go test -run='^$' -fuzz=FuzzChatFrames -fuzztime=10s ./internal/conformance

// fuzzTimeout bounds one input: the server must have ended the connection
// and its handler returned within it.
const fuzzTimeout = 10 * time.Second

// maxSeed keeps large rows out of the seed corpus: the fuzzer mutates
// small inputs faster, and the length encodings have small seeds of their
// own.
const maxSeed = 8 << 10

func FuzzEchoFrames(f *testing.F) {
	for _, s := range seeds("echo", nil) {
		f.Add(s)
	}
	fuzzFrames(f, "/echo", "")
}

func FuzzChatFrames(f *testing.F) {
	join := fr(opText, []byte(`{"type":"join","name":"fuzz"}`))
	for _, s := range seeds("chat", join) {
		f.Add(s)
	}
	fuzzFrames(f, "/chat/fuzz", wsroom.Subprotocol)
}

// seeds returns the stream of every small row that runs on ep, after
// prefix, and a few streams masked with a zero key, whose payloads the
// fuzzer can read.
func seeds(ep string, prefix []byte) [][]byte {
	var ss [][]byte
	for _, r := range rows() {
		if r.only != "" && r.only != ep {
			continue
		}
		if b := streamOf(r); len(prefix)+len(b) <= maxSeed {
			ss = append(ss, append(bytes.Clone(prefix), b...))
		}
	}
	plain := func(fin bool, op byte, p string, form int) []byte {
		return encode(header{fin: fin, op: op, n: -1, form: form}, []byte(p))
	}
	ss = append(ss,
		bytes.Join([][]byte{
			plain(true, opText, `{"type":"join","name":"zero"}`, 0),
			plain(false, opText, `{"type":"message",`, 0),
			plain(true, opPing, "p", 0),
			plain(true, opCont, `"text":"hi"}`, 0),
			plain(true, opText, `{"type":"history","limit":2}`, 0),
			plain(true, opClose, "\x03\xe8bye", 0),
		}, nil),
		bytes.Join([][]byte{
			plain(true, opText, "login:zero", 16),     // a 16-bit length for 10 bytes
			plain(true, opBinary, "\x00\x01\x02", 64), // a 64-bit length for 3 bytes
			plain(true, opText, "hello", 0),
		}, nil),
	)
	return ss
}

// fuzzFrames runs the fuzz target against an in-process server.
func fuzzFrames(f *testing.F, path, subprotocol string) {
	srv, err := wsroom.New(&wsroom.Options{Logger: quiet})
	if err != nil {
		f.Fatal(err)
	}
	ended := make(chan struct{}, 1)
	mux := http.NewServeMux()
	count := func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() { ended <- struct{}{} }()
			h.ServeHTTP(w, r)
		})
	}
	mux.Handle("/echo", count(srv.Echo()))
	mux.Handle("/chat/{room}", count(srv))
	ts := httptest.NewServer(mux)
	f.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			f.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	addr := strings.TrimPrefix(ts.URL, "http://")

	f.Fuzz(func(t *testing.T, stream []byte) {
		ctx, cancel := context.WithTimeout(context.Background(), fuzzTimeout)
		defer cancel()
		w, err := dialWire(ctx, addr, path, dialOptions{subprotocol: subprotocol})
		if err != nil {
			t.Fatalf("handshake: %v", err)
		}
		defer w.close()
		w.write(stream, 0, fuzzTimeout) // the server may have failed the connection already
		w.nc.(*net.TCPConn).CloseWrite()
		var last event
		for last.err == nil {
			if last, err = w.next(ctx); err != nil {
				t.Fatalf("the server did not end the connection within %v of the client's FIN", fuzzTimeout)
			}
		}
		select {
		case <-ended:
		case <-ctx.Done():
			t.Fatalf("the handler did not return within %v", fuzzTimeout)
		}
		for _, p := range w.problems() {
			if !tolerated(p) {
				t.Errorf("the server sent a malformed frame: %s", p)
			}
		}
		if left := serverGoroutines(ctx); left != "" {
			t.Fatalf("goroutines of the connection left after its handler returned:\n%s", left)
		}
	})
}

// tolerated reports whether a violation is one that knownFailures lists.
func tolerated(violation string) bool {
	_, known := knownFailures["echo/7.5.1"]
	return known && violation == "server close reason is not UTF-8"
}

// serverGoroutines waits, until ctx is done, for the goroutines of
// connections (net/http's, wsroom's, coder/websocket's) to end, and
// returns the stacks of those still there.
func serverGoroutines(ctx context.Context) string {
	for {
		left := connGoroutines()
		if left == "" || ctx.Err() != nil {
			return left
		}
		time.Sleep(time.Millisecond) // polling, bounded by ctx
	}
}

func connGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var left []string
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "wsroom.dev/wsroom.(*lease).loop") {
			continue // the Server's own, until Shutdown: not a connection's
		}
		if strings.Contains(g, "net/http.(*conn).serve") || strings.Contains(g, "wsroom.dev/wsroom.") ||
			strings.Contains(g, "github.com/coder/websocket.") {
			left = append(left, g)
		}
	}
	return strings.Join(left, "\n\n")
}
