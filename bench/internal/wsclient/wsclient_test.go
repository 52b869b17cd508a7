package wsclient

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"wsroom.dev/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// server starts an httptest server whose handler gets each accepted coder
// connection; the test waits for the handlers before it ends.
func server(t *testing.T, proto string, handle func(ctx context.Context, c *websocket.Conn) error) string {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		wg.Add(1)
		defer wg.Done()
		opts := &websocket.AcceptOptions{}
		if proto != "" {
			opts.Subprotocols = []string{proto}
		}
		c, err := websocket.Accept(w, r, opts)
		if err != nil {
			errs <- err
			return
		}
		c.SetReadLimit(1 << 30)
		defer c.CloseNow()
		if err := handle(r.Context(), c); err != nil {
			errs <- err
		}
	}))
	t.Cleanup(func() {
		srv.Close() // waits for the handlers
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("server: %v", err)
		}
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func dial(t *testing.T, url, proto string) *Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, err := Dial(ctx, url, proto)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func echo(ctx context.Context, c *websocket.Conn) error {
	for {
		typ, p, err := c.Read(ctx)
		if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
			return nil
		}
		if err != nil {
			return err
		}
		if err := c.Write(ctx, typ, p); err != nil {
			return err
		}
	}
}

func TestEcho(t *testing.T) {
	t.Parallel()
	url := server(t, "", echo)
	c := dial(t, url, "")
	big := bytes.Repeat([]byte("0123456789abcdef"), 200<<10/16) // 200 KiB
	tests := []struct {
		op Opcode
		p  []byte
	}{
		{OpText, []byte("hello")},
		{OpBinary, []byte{0, 1, 2, 3, 255}},
		{OpText, []byte{}},
		{OpText, bytes.Repeat([]byte("x"), 125)},
		{OpText, bytes.Repeat([]byte("y"), 126)},
		{OpBinary, bytes.Repeat([]byte("z"), 65535)},
		{OpBinary, bytes.Repeat([]byte("w"), 65536)},
		{OpBinary, big},
		{OpText, big},
		{OpText, []byte("after big")},
	}
	for _, tt := range tests {
		sent := bytes.Clone(tt.p)
		if err := c.WriteMessage(tt.op, tt.p); err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(sent, tt.p) {
			t.Fatal("WriteMessage modified its argument")
		}
		op, p, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if op != tt.op || !bytes.Equal(p, tt.p) {
			t.Fatalf("echo of %v %d bytes: got %v %d bytes", tt.op, len(tt.p), op, len(p))
		}
	}
	if err := c.Close(StatusNormalClosure, "done"); err != nil {
		t.Fatal(err)
	}
	if err := c.WriteText([]byte("late")); !errors.Is(err, ErrClosed) {
		t.Fatalf("write after Close: %v, want ErrClosed", err)
	}
}

func TestSubprotocol(t *testing.T) {
	t.Parallel()
	url := server(t, "wsroom.v1", func(ctx context.Context, c *websocket.Conn) error {
		if c.Subprotocol() != "wsroom.v1" {
			<-c.CloseRead(ctx).Done() // the refused dial below: until it ends
			return nil
		}
		return echo(ctx, c)
	})
	c := dial(t, url, "wsroom.v1")
	if c.Subprotocol() != "wsroom.v1" {
		t.Fatalf("Subprotocol() = %q", c.Subprotocol())
	}
	c.Close(StatusNormalClosure, "")

	// A subprotocol the server does not speak fails the dial.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := Dial(ctx, url, "other.v1"); err == nil {
		c.CloseNow()
		t.Fatal("Dial with an unknown subprotocol succeeded")
	} else if !strings.Contains(err.Error(), "subprotocol") {
		t.Fatalf("Dial: %v", err)
	}
}

func TestFragmentedFromServer(t *testing.T) {
	t.Parallel()
	url := server(t, "", func(ctx context.Context, c *websocket.Conn) error {
		for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
			w, err := c.Writer(ctx, typ)
			if err != nil {
				return err
			}
			for _, part := range []string{"frag", "ment", "", "ed"} {
				if _, err := w.Write([]byte(part)); err != nil {
					return err
				}
			}
			if err := w.Close(); err != nil {
				return err
			}
		}
		// Hold the connection until the client closes it.
		_, _, err := c.Read(ctx)
		if websocket.CloseStatus(err) == websocket.StatusNormalClosure {
			return nil
		}
		return err
	})
	c := dial(t, url, "")
	for _, want := range []Opcode{OpText, OpBinary} {
		op, p, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if op != want || string(p) != "fragmented" {
			t.Fatalf("got %v %q, want %v \"fragmented\"", op, p, want)
		}
	}
	c.Close(StatusNormalClosure, "")
}

func TestPingPong(t *testing.T) {
	t.Parallel()
	url := server(t, "", func(ctx context.Context, c *websocket.Conn) error {
		c.CloseRead(ctx) // the handler only writes; CloseRead reads the pongs
		ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		for range 3 {
			if err := c.Ping(ctx); err != nil {
				return err
			}
		}
		return c.Write(ctx, websocket.MessageText, []byte("pinged"))
	})
	c := dial(t, url, "")
	_, p, err := c.ReadMessage()
	if err != nil {
		t.Fatal(err)
	}
	if string(p) != "pinged" {
		t.Fatalf("got %q", p)
	}
	c.Close(StatusNormalClosure, "")
}

func TestCloseFromServer(t *testing.T) {
	t.Parallel()
	url := server(t, "", func(ctx context.Context, c *websocket.Conn) error {
		// Close waits for the client's close frame: it fails if the
		// client does not answer.
		return c.Close(4001, "bye")
	})
	c := dial(t, url, "")
	_, _, err := c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != 4001 || ce.Reason != "bye" {
		t.Fatalf("ReadMessage: %v, want close 4001 bye", err)
	}
	if _, _, err2 := c.ReadMessage(); err2 != err {
		t.Fatalf("second ReadMessage: %v, want the same error", err2)
	}
}

func TestCloseFromClient(t *testing.T) {
	t.Parallel()
	got := make(chan error, 1)
	url := server(t, "", func(ctx context.Context, c *websocket.Conn) error {
		_, _, err := c.Read(ctx)
		got <- err
		return nil
	})
	c := dial(t, url, "")
	if err := c.Close(4002, "client done"); err != nil {
		t.Fatal(err)
	}
	err := <-got
	var ce websocket.CloseError
	if !errors.As(err, &ce) || ce.Code != 4002 || ce.Reason != "client done" {
		t.Fatalf("server read: %v, want close 4002", err)
	}
}

// rawServer answers the handshake itself and writes frames, for the cases
// coder/websocket does not produce: a ping between the fragments of a
// message, protocol errors.
func rawServer(t *testing.T, frames ...[]byte) string {
	t.Helper()
	done := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(done)
		sum := sha1.Sum([]byte(r.Header.Get("Sec-WebSocket-Key") + acceptGUID))
		nc, brw, err := http.NewResponseController(w).Hijack()
		if err != nil {
			t.Error(err)
			return
		}
		defer nc.Close()
		brw.WriteString("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")
		brw.WriteString("Sec-WebSocket-Accept: " + base64.StdEncoding.EncodeToString(sum[:]) + "\r\n\r\n")
		for _, f := range frames {
			brw.Write(f)
		}
		brw.Flush()
		nc.SetReadDeadline(time.Now().Add(5 * time.Second))
		io.Copy(io.Discard, bufio.NewReader(nc)) // until the client closes
	}))
	t.Cleanup(func() {
		<-done
		srv.Close()
	})
	return "ws" + strings.TrimPrefix(srv.URL, "http")
}

func frame(fin bool, op Opcode, p string) []byte {
	b0 := byte(op)
	if fin {
		b0 |= 0x80
	}
	b := []byte{b0}
	if len(p) < 126 {
		b = append(b, byte(len(p)))
	} else {
		b = append(b, 126)
		b = binary.BigEndian.AppendUint16(b, uint16(len(p)))
	}
	return append(b, p...)
}

func TestInterleavedControl(t *testing.T) {
	t.Parallel()
	url := rawServer(t,
		frame(false, OpText, "a"),
		frame(true, OpPing, "p1"),
		frame(false, OpContinuation, strings.Repeat("b", 300)),
		frame(true, OpPong, "ignored"),
		frame(true, OpContinuation, "c"),
		frame(true, OpBinary, "next"),
		frame(true, OpClose, ""),
	)
	c := dial(t, url, "")
	op, p, err := c.ReadMessage()
	if err != nil || op != OpText || string(p) != "a"+strings.Repeat("b", 300)+"c" {
		t.Fatalf("got %v %q %v", op, p, err)
	}
	op, p, err = c.ReadMessage()
	if err != nil || op != OpBinary || string(p) != "next" {
		t.Fatalf("got %v %q %v", op, p, err)
	}
	_, _, err = c.ReadMessage()
	var ce *CloseError
	if !errors.As(err, &ce) || ce.Code != StatusNoStatusRcvd {
		t.Fatalf("got %v, want a close without status", err)
	}
	c.CloseNow()
}

func TestProtocolErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		frame []byte
	}{
		{"continuation first", frame(true, OpContinuation, "x")},
		{"reserved bits", append([]byte{0x80 | 0x40 | byte(OpText), 1}, 'x')},
		{"masked", []byte{0x80 | byte(OpText), 0x80 | 1, 0, 0, 0, 0, 'x'}},
		{"reserved opcode", frame(true, 3, "x")},
		{"long ping", frame(true, OpPing, strings.Repeat("p", 126))},
		{"fragmented ping", frame(false, OpPing, "p")},
		{"text in fragments", append(frame(false, OpText, "a"), frame(true, OpText, "b")...)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url := rawServer(t, tt.frame)
			c := dial(t, url, "")
			_, _, err := c.ReadMessage()
			if !errors.Is(err, ErrProtocol) {
				t.Fatalf("got %v, want ErrProtocol", err)
			}
			c.CloseNow()
		})
	}
}

func TestReadLimit(t *testing.T) {
	t.Parallel()
	url := rawServer(t, frame(true, OpText, strings.Repeat("x", 200)))
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	d := &Dialer{ReadLimit: 100, ReadBufferSize: 64}
	c, err := d.Dial(ctx, url, "")
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if _, _, err := c.ReadMessage(); !errors.Is(err, ErrTooBig) {
		t.Fatalf("got %v, want ErrTooBig", err)
	}
}

func TestDialErrors(t *testing.T) {
	t.Parallel()
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "no websocket here", http.StatusNotFound)
	}))
	defer plain.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := Dial(ctx, plain.URL, ""); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("Dial of a plain server: %v", err)
	}
	if _, err := Dial(ctx, "wss://127.0.0.1:1/", ""); err == nil {
		t.Fatal("Dial wss succeeded")
	}
	done, cancelDone := context.WithCancel(context.Background())
	cancelDone()
	if _, err := Dial(done, plain.URL, ""); !errors.Is(err, context.Canceled) {
		t.Fatalf("Dial with a done context: %v", err)
	}
}

func TestMask(t *testing.T) {
	t.Parallel()
	for n := range 20 {
		p := bytes.Repeat([]byte{0xAA}, n)
		key := uint32(0x04030201)
		maskBytes(key, p)
		for i, b := range p {
			if want := byte(0xAA ^ (i%4 + 1)); b != want {
				t.Fatalf("n=%d i=%d: %#x, want %#x", n, i, b, want)
			}
		}
	}
}

func BenchmarkReadMessage(b *testing.B) {
	msg := frame(true, OpText, `{"type":"message","from":"u1","text":"b:1:1700000000000000000"}`)
	stream := bytes.Repeat(msg, 1024)
	c := &Conn{readLimit: 1 << 20}
	r := bytes.NewReader(stream)
	c.br = bufio.NewReaderSize(r, 4096)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		if i%1024 == 0 {
			r.Reset(stream)
			c.br.Reset(r)
		}
		if _, _, err := c.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}
