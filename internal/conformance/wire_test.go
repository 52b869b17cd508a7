package conformance_test

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
	"unicode/utf8"
)

// Opcodes (RFC 6455, 5.2).
const (
	opCont   byte = 0x0
	opText   byte = 0x1
	opBinary byte = 0x2
	opClose  byte = 0x8
	opPing   byte = 0x9
	opPong   byte = 0xA
)

// rowKey masks every frame of the table: not zero, so that a server that
// forgot to unmask could not echo the right bytes by chance.
var rowKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// header is a client frame header, including the malformed ones.
type header struct {
	fin      bool
	rsv      byte  // Autobahn's numbering: 4 is RSV1, 2 is RSV2, 1 is RSV3
	op       byte  // 4 bits
	n        int64 // announced payload length; -1: the payload's
	form     int   // length encoding: 0 minimal, else 7, 16 or 64
	unmasked bool
	key      [4]byte
}

// encode returns the frame h with payload p, masked with h.key unless
// h.unmasked. The payload may be shorter than announced (h.n).
func encode(h header, p []byte) []byte {
	n := h.n
	if n < 0 {
		n = int64(len(p))
	}
	b := make([]byte, 0, 14+len(p))
	first := h.op & 0x0f
	if h.fin {
		first |= 0x80
	}
	first |= (h.rsv & 7) << 4
	b = append(b, first)
	var maskBit byte = 0x80
	if h.unmasked {
		maskBit = 0
	}
	form := h.form
	if form == 0 {
		switch {
		case n < 126:
			form = 7
		case n <= 0xffff:
			form = 16
		default:
			form = 64
		}
	}
	switch form {
	case 7:
		b = append(b, maskBit|byte(n))
	case 16:
		b = append(b, maskBit|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, maskBit|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	if h.unmasked {
		return append(b, p...)
	}
	b = append(b, h.key[:]...)
	for i, c := range p {
		b = append(b, c^h.key[i%4])
	}
	return b
}

// fr is a final, masked frame.
func fr(op byte, p []byte) []byte { return frag(op, true, p) }

// frag is a masked frame, final or not.
func frag(op byte, fin bool, p []byte) []byte {
	return encode(header{fin: fin, op: op, n: -1, key: rowKey}, p)
}

// closePayload is the payload of a close frame with code and reason.
func closePayload(code int, reason []byte) []byte {
	return append(binary.BigEndian.AppendUint16(nil, uint16(code)), reason...)
}

// event is what the server sent: a whole data message (fragments
// reassembled), a control frame, or the end of the stream.
type event struct {
	op      byte
	payload []byte
	code    int // close: the status code, 1005 when the frame has none
	reason  string
	err     error // the end: why reading stopped
	at      time.Time
}

func (e event) String() string {
	switch {
	case e.err != nil:
		return endString(e.err)
	case e.op == opText:
		return fmt.Sprintf("text[%d]", len(e.payload))
	case e.op == opBinary:
		return fmt.Sprintf("binary[%d]", len(e.payload))
	case e.op == opPing:
		return fmt.Sprintf("ping[%d]", len(e.payload))
	case e.op == opPong:
		return fmt.Sprintf("pong[%d]", len(e.payload))
	case e.op == opClose && e.code == 1005:
		return "close (no code)"
	case e.op == opClose:
		return fmt.Sprintf("close %d", e.code)
	}
	return fmt.Sprintf("op%d[%d]", e.op, len(e.payload))
}

// endString names the way a stream ended.
func endString(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "eof"
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "eof mid-frame"
	case strings.Contains(err.Error(), "reset by peer"):
		return "reset"
	case errors.Is(err, net.ErrClosed):
		return "closed by the client"
	}
	return err.Error()
}

// maxServerFrame bounds what the reader accepts from the server.
const maxServerFrame = 64 << 20

// wire is a raw RFC 6455 client connection. A goroutine reads everything
// the server sends as events, checks that each frame is well formed,
// answers pings, and answers a close frame with a close frame, as a
// well-behaved client (and Autobahn) does.
type wire struct {
	nc net.Conn
	br *bufio.Reader

	wmu       sync.Mutex // one frame at a time on the way out
	closeSent bool       // under wmu

	mu         sync.Mutex
	events     []event
	violations []string
	signal     chan struct{} // an event was added
	ended      chan struct{} // closed at the server's close frame or the end of the stream
	endOnce    sync.Once
	done       chan struct{} // the reading goroutine returned
}

// dialOptions shape the handshake.
type dialOptions struct {
	subprotocol  string
	offerDeflate bool
}

// dialWire connects to addr and performs the opening handshake for path,
// checking the server's answer (RFC 6455, 4.2.2).
func dialWire(ctx context.Context, addr, path string, o dialOptions) (*wire, error) {
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		nc.SetDeadline(dl)
	}
	nonce := make([]byte, 16)
	rand.Read(nonce)
	key := base64.StdEncoding.EncodeToString(nonce)
	req := "GET " + path + " HTTP/1.1\r\nHost: " + addr + "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
		"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + "\r\n"
	if o.subprotocol != "" {
		req += "Sec-WebSocket-Protocol: " + o.subprotocol + "\r\n"
	}
	if o.offerDeflate {
		req += "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
	}
	if _, err := io.WriteString(nc, req+"\r\n"); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %w", err)
	}
	resp.Body.Close()
	sum := sha1.Sum([]byte(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"))
	var bad []string
	if resp.StatusCode != http.StatusSwitchingProtocols {
		bad = append(bad, fmt.Sprintf("status %d", resp.StatusCode))
	}
	if !strings.EqualFold(resp.Header.Get("Upgrade"), "websocket") {
		bad = append(bad, "no Upgrade: websocket")
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), base64.StdEncoding.EncodeToString(sum[:]); got != want {
		bad = append(bad, fmt.Sprintf("Sec-WebSocket-Accept %q, want %q", got, want))
	}
	if got := resp.Header.Get("Sec-WebSocket-Protocol"); got != o.subprotocol {
		bad = append(bad, fmt.Sprintf("subprotocol %q, want %q", got, o.subprotocol))
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		bad = append(bad, fmt.Sprintf("extension %q accepted", ext))
	}
	if bad != nil {
		nc.Close()
		return nil, fmt.Errorf("handshake: %s", strings.Join(bad, "; "))
	}
	nc.SetDeadline(time.Time{})
	w := &wire{nc: nc, br: br, signal: make(chan struct{}, 1), ended: make(chan struct{}), done: make(chan struct{})}
	go w.readLoop()
	return w, nil
}

// close ends the connection and waits for the reading goroutine.
func (w *wire) close() {
	w.nc.Close()
	<-w.done
}

// write sends b, in pieces of chop bytes when chop > 0 (Autobahn's
// "chopped" cases), each within timeout.
func (w *wire) write(b []byte, chop int, timeout time.Duration) error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	for len(b) > 0 {
		n := len(b)
		if chop > 0 {
			n = min(n, chop)
		}
		w.nc.SetWriteDeadline(time.Now().Add(timeout))
		if _, err := w.nc.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// markCloseSent records that the client sent a close frame, so the reader
// does not answer the server's.
func (w *wire) markCloseSent() {
	w.wmu.Lock()
	w.closeSent = true
	w.wmu.Unlock()
}

// reply writes a control frame from the reading goroutine; a close frame
// only if none was sent.
func (w *wire) reply(op byte, p []byte) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	if w.closeSent {
		return
	}
	if op == opClose {
		w.closeSent = true
	}
	w.nc.SetWriteDeadline(time.Now().Add(time.Second))
	w.nc.Write(fr(op, p)) // the server may be gone: nothing to do about it
}

func (w *wire) push(e event) {
	e.at = time.Now()
	w.mu.Lock()
	w.events = append(w.events, e)
	w.mu.Unlock()
	select {
	case w.signal <- struct{}{}:
	default:
	}
	if e.err != nil || e.op == opClose {
		w.endOnce.Do(func() { close(w.ended) })
	}
}

func (w *wire) violate(format string, args ...any) {
	w.mu.Lock()
	w.violations = append(w.violations, fmt.Sprintf(format, args...))
	w.mu.Unlock()
}

// next returns the next event, or an error when ctx ends first. The end of
// the stream stays, to be returned again.
func (w *wire) next(ctx context.Context) (event, error) {
	for {
		w.mu.Lock()
		if len(w.events) > 0 {
			e := w.events[0]
			if e.err == nil {
				w.events = w.events[1:]
			}
			w.mu.Unlock()
			return e, nil
		}
		w.mu.Unlock()
		select {
		case <-w.signal:
		case <-ctx.Done():
			return event{}, ctx.Err()
		}
	}
}

// problems returns the protocol violations the server committed.
func (w *wire) problems() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.violations...)
}

// readLoop reads the server's frames until the stream ends.
func (w *wire) readLoop() {
	defer close(w.done)
	var (
		msgOp   byte // the data message being reassembled, 0: none
		msg     []byte
		closeAt bool // a close frame was received
	)
	for {
		h, p, err := readServerFrame(w.br)
		if err != nil {
			w.push(event{err: err})
			return
		}
		if closeAt {
			w.violate("%s frame after the server's close frame", opName(h.op))
		}
		if h.rsv != 0 {
			w.violate("server frame with RSV bits %03b", h.rsv)
		}
		if !h.unmasked {
			w.violate("server frame masked")
		}
		switch h.op {
		case opCont:
			if msgOp == 0 {
				w.violate("server continuation frame without a message")
				continue
			}
			msg = append(msg, p...)
		case opText, opBinary:
			if msgOp != 0 {
				w.violate("server %s frame inside a fragmented message", opName(h.op))
			}
			msgOp, msg = h.op, append([]byte(nil), p...)
		case opClose, opPing, opPong:
			if !h.fin || len(p) > 125 {
				w.violate("server %s frame fragmented or over 125 bytes (%d)", opName(h.op), len(p))
			}
			e := event{op: h.op, payload: p}
			switch h.op {
			case opPing:
				w.reply(opPong, p)
			case opClose:
				closeAt = true
				e.code = 1005
				switch {
				case len(p) == 1:
					w.violate("server close frame with a 1-byte payload")
				case len(p) >= 2:
					e.code = int(binary.BigEndian.Uint16(p))
					e.reason = string(p[2:])
					if !validSentCode(e.code) {
						w.violate("server close code %d is not one an endpoint may send", e.code)
					}
					if !utf8.ValidString(e.reason) {
						w.violate("server close reason is not UTF-8")
					}
				}
				w.reply(opClose, p[:min(len(p), 2)])
			}
			w.push(e)
			continue
		default:
			w.violate("server frame with reserved opcode %d", h.op)
			continue
		}
		if !h.fin {
			continue
		}
		if msgOp == opText && !utf8.Valid(msg) {
			w.violate("server text message is not UTF-8")
		}
		w.push(event{op: msgOp, payload: msg})
		msgOp, msg = 0, nil
	}
}

// validSentCode reports whether an endpoint may put code in a close frame
// (RFC 6455, 7.4; the IANA registry up to 1014).
func validSentCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1014:
		return code != 1004 && code != 1005 && code != 1006
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

func opName(op byte) string {
	switch op {
	case opCont:
		return "continuation"
	case opText:
		return "text"
	case opBinary:
		return "binary"
	case opClose:
		return "close"
	case opPing:
		return "ping"
	case opPong:
		return "pong"
	}
	return fmt.Sprintf("opcode %d", op)
}

// readServerFrame reads one frame as the server sent it, unmasking it if
// it was (wrongly) masked.
func readServerFrame(br *bufio.Reader) (header, []byte, error) {
	var b [2]byte
	if _, err := io.ReadFull(br, b[:]); err != nil {
		return header{}, nil, err
	}
	h := header{fin: b[0]&0x80 != 0, rsv: b[0] >> 4 & 7, op: b[0] & 0x0f, unmasked: b[1]&0x80 == 0}
	n := uint64(b[1] & 0x7f)
	switch n {
	case 126:
		var l [2]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return header{}, nil, unexpected(err)
		}
		n = uint64(binary.BigEndian.Uint16(l[:]))
	case 127:
		var l [8]byte
		if _, err := io.ReadFull(br, l[:]); err != nil {
			return header{}, nil, unexpected(err)
		}
		n = binary.BigEndian.Uint64(l[:])
	}
	if n > maxServerFrame {
		return header{}, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	if !h.unmasked {
		if _, err := io.ReadFull(br, h.key[:]); err != nil {
			return header{}, nil, unexpected(err)
		}
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(br, p); err != nil {
		return header{}, nil, unexpected(err)
	}
	if !h.unmasked {
		for i := range p {
			p[i] ^= h.key[i%4]
		}
	}
	h.n = int64(n)
	return h, p, nil
}

// unexpected turns an EOF inside a frame into io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}
