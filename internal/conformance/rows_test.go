package conformance_test

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// row is one case of the suite: what the client sends and the outcome
// Autobahn's fuzzing client grades OK. IDs are Autobahn's case numbers
// where the case is Autobahn's; the suite's own use letters (1.L, 6.V,
// 6.I, 7.R, 9.H, 9.D, C, H, R).
type row struct {
	id    string
	desc  string
	cfg   string // the server's options: "" (confOptions) or "defaults"
	only  string // "echo" or "chat": run on that endpoint only
	dial  dialOptions
	steps []step
	want  want
}

// step is one write of the client; or a pause.
type step struct {
	b     []byte
	chop  int  // write in pieces of this many bytes
	close bool // b holds a close frame: the client starts the closing handshake
	pause bool // wait up to pauseFor for the server to fail the connection
}

// want is the outcome Autobahn grades OK.
type want struct {
	replies []reply
	// close lists the codes of an acceptable close frame from the server
	// (1005: a close frame without a code); nil: the connection stays open,
	// which the suite checks by a round trip and a normal closing
	// handshake.
	close []int
	// dropOK: Autobahn also accepts the TCP connection dropped without a
	// close frame (its "requireClean": false cases).
	dropOK bool
	// within bounds the time from the client's last write to the close
	// frame; 0: the row's timeout.
	within time.Duration
	// failFast: the row has a pause before its last fragment; the report
	// says whether the server failed the connection during it (Autobahn:
	// OK) or only after the whole message (Autobahn: NON-STRICT, also a
	// pass).
	failFast bool
}

// reply is a message the server must send, in order.
type reply struct {
	op      byte   // opText, opBinary or opPong
	payload []byte // the exact payload, for the echo endpoint and pongs
	chat    string // chat endpoint: a message event with this text
}

const pauseFor = time.Second

// Builders keep the table readable.
func send(frames ...[]byte) step           { return step{b: bytes.Join(frames, nil)} }
func chopped(n int, frames ...[]byte) step { return step{b: bytes.Join(frames, nil), chop: n} }
func sendClose(p []byte) step              { return step{b: fr(opClose, p), close: true} }
func pause() step                          { return step{pause: true} }
func echoed(op byte, p []byte) reply       { return reply{op: op, payload: p} }
func pong(p []byte) reply                  { return reply{op: opPong, payload: p} }
func chatMsg(text string) reply            { return reply{op: opText, chat: text} }
func open(rs ...reply) want                { return want{replies: rs} }
func closes(codes ...int) want             { return want{close: codes} }
func fails(code int, rs ...reply) want     { return want{close: []int{code}, dropOK: true, replies: rs} }
func rep(b byte, n int) []byte             { return bytes.Repeat([]byte{b}, n) }
func text(s string) []byte                 { return []byte(s) }
func rsvFrame(rsv, op byte, p []byte) []byte {
	return encode(header{fin: true, rsv: rsv, op: op, n: -1, key: rowKey}, p)
}

// announce is a frame header announcing n bytes, followed by p only.
func announce(op byte, fin bool, n int64, p []byte) []byte {
	return encode(header{fin: fin, op: op, n: n, key: rowKey}, p)
}

// Limits of the servers the table runs against.
const (
	confLimit    = 1 << 20 // confOptions: MaxMessageBytes
	defaultText  = 32 << 10
	defaultBin   = 1 << 20 // the default of Options.MaxBinaryBytes (the lead's)
	headerWithin = time.Second
)

// rows returns the table.
func rows() []row {
	var rs []row
	add := func(r ...row) { rs = append(rs, r...) }

	// 1.x framing: payload lengths in the 7-, 16- and 64-bit encodings.
	for i, n := range []int{0, 125, 126, 127, 128, 65535, 65536} {
		add(row{id: fmt.Sprintf("1.1.%d", i+1), desc: fmt.Sprintf("text message, %d bytes", n),
			steps: []step{send(fr(opText, rep('*', n)))}, want: open(echoed(opText, rep('*', n)))})
		add(row{id: fmt.Sprintf("1.2.%d", i+1), desc: fmt.Sprintf("binary message, %d bytes", n),
			steps: []step{send(fr(opBinary, rep(0xfe, n)))}, want: open(echoed(opBinary, rep(0xfe, n)))})
	}
	add(row{id: "1.1.8", desc: "text message, 65536 bytes, written in chops of 997 bytes",
		steps: []step{chopped(997, fr(opText, rep('*', 65536)))}, want: open(echoed(opText, rep('*', 65536)))})
	add(row{id: "1.2.8", desc: "binary message, 65536 bytes, written in chops of 997 bytes",
		steps: []step{chopped(997, fr(opBinary, rep(0xfe, 65536)))}, want: open(echoed(opBinary, rep(0xfe, 65536)))})
	msb := encode(header{fin: true, op: opText, n: -1, form: 64, key: rowKey}, text("hello"))
	msb[2] |= 0x80 // the 64-bit length's most significant bit, which must be 0 (5.2)
	add(row{id: "1.L.1", desc: "64-bit length with the most significant bit set",
		steps: []step{send(msb)}, want: fails(1002)})

	// 2.x pings and pongs.
	add(row{id: "2.1", desc: "ping without payload", steps: []step{send(fr(opPing, nil))}, want: open(pong(nil))})
	add(row{id: "2.2", desc: "ping with a small text payload",
		steps: []step{send(fr(opPing, text("Hello, world!")))}, want: open(pong(text("Hello, world!")))})
	bin := []byte{0x00, 0xff, 0xfe, 0xfd, 0xfc, 0xfb, 0x00, 0xff}
	add(row{id: "2.3", desc: "ping with a small binary payload", steps: []step{send(fr(opPing, bin))}, want: open(pong(bin))})
	add(row{id: "2.4", desc: "ping with a 125-byte payload: identical pong",
		steps: []step{send(fr(opPing, rep(0xfe, 125)))}, want: open(pong(rep(0xfe, 125)))})
	add(row{id: "2.5", desc: "ping with a 126-byte payload (control frame over 125 bytes)",
		steps: []step{send(fr(opPing, rep(0xfe, 126)))}, want: fails(1002)})
	add(row{id: "2.6", desc: "ping with a 125-byte payload, written in chops of 1 byte",
		steps: []step{chopped(1, fr(opPing, rep(0xfe, 125)))}, want: open(pong(rep(0xfe, 125)))})
	add(row{id: "2.7", desc: "unsolicited pong without payload: ignored",
		steps: []step{send(fr(opPong, nil))}, want: open()})
	add(row{id: "2.8", desc: "unsolicited pong with payload: ignored",
		steps: []step{send(fr(opPong, text("unsolicited pong payload")))}, want: open()})
	add(row{id: "2.9", desc: "unsolicited pong, then a ping: one pong, for the ping",
		steps: []step{send(fr(opPong, text("unsolicited pong payload")), fr(opPing, text("ping payload")))},
		want:  open(pong(text("ping payload")))})
	var pings [][]byte
	var pongs []reply
	for i := range 10 {
		p := fmt.Appendf(nil, "payload-%d", i)
		pings = append(pings, fr(opPing, p))
		pongs = append(pongs, pong(p))
	}
	add(row{id: "2.10", desc: "10 pings in a row: 10 pongs, in order", steps: []step{send(pings...)}, want: open(pongs...)})
	add(row{id: "2.11", desc: "10 pings in a row, written in chops of 1 byte", steps: []step{chopped(1, pings...)}, want: open(pongs...)})

	// 3.x reserved bits: no extension is negotiated, so any RSV bit fails
	// the connection.
	small := text("Hello, world!")
	ping := fr(opPing, text("ping payload"))
	add(row{id: "3.1", desc: "text message with RSV = 1", steps: []step{send(rsvFrame(1, opText, small))}, want: fails(1002)})
	add(row{id: "3.2", desc: "text, text with RSV = 2, ping: first echoed, then failed, no pong",
		steps: []step{send(fr(opText, small), rsvFrame(2, opText, small), ping)}, want: fails(1002, echoed(opText, small))})
	add(row{id: "3.3", desc: "as 3.2 with RSV = 3, frame by frame",
		steps: []step{send(fr(opText, small)), send(rsvFrame(3, opText, small)), send(ping)}, want: fails(1002, echoed(opText, small))})
	add(row{id: "3.4", desc: "as 3.2 with RSV = 4 (RSV1, no compression negotiated), in chops of 1 byte",
		steps: []step{chopped(1, fr(opText, small), rsvFrame(4, opText, small), ping)}, want: fails(1002, echoed(opText, small))})
	add(row{id: "3.5", desc: "binary message with RSV = 5", steps: []step{send(rsvFrame(5, opBinary, rep(0xfe, 8)))}, want: fails(1002)})
	add(row{id: "3.6", desc: "ping with RSV = 6", steps: []step{send(rsvFrame(6, opPing, text("ping payload")))}, want: fails(1002)})
	add(row{id: "3.7", desc: "close with RSV = 7", steps: []step{{b: rsvFrame(7, opClose, nil), close: true}}, want: fails(1002)})

	// 4.x reserved opcodes.
	for i, op := range []byte{3, 4, 5, 6, 7} {
		add(reservedOpcode("4.1", i+1, op, small, ping))
	}
	for i, op := range []byte{11, 12, 13, 14, 15} {
		add(reservedOpcode("4.2", i+1, op, small, ping))
	}

	// 5.x fragmentation.
	add(row{id: "5.1", desc: "ping in 2 fragments", steps: []step{send(frag(opPing, false, text("fragment1")), frag(opCont, true, text("fragment2")))}, want: fails(1002)})
	add(row{id: "5.2", desc: "pong in 2 fragments", steps: []step{send(frag(opPong, false, text("fragment1")), frag(opCont, true, text("fragment2")))}, want: fails(1002)})
	frag12 := [][]byte{frag(opText, false, text("fragment1")), frag(opCont, true, text("fragment2"))}
	add(row{id: "5.3", desc: "text message in 2 fragments", steps: []step{send(frag12...)}, want: open(echoed(opText, text("fragment1fragment2")))})
	add(row{id: "5.4", desc: "text message in 2 fragments, frame by frame", steps: []step{send(frag12[0]), send(frag12[1])}, want: open(echoed(opText, text("fragment1fragment2")))})
	add(row{id: "5.5", desc: "text message in 2 fragments, in chops of 1 byte", steps: []step{chopped(1, frag12...)}, want: open(echoed(opText, text("fragment1fragment2")))})
	pingBetween := []byte(fr(opPing, text("ping payload")))
	add(row{id: "5.6", desc: "text in 2 fragments with a ping between: pong, then the message",
		steps: []step{send(frag12[0], pingBetween, frag12[1])}, want: open(pong(text("ping payload")), echoed(opText, text("fragment1fragment2")))})
	add(row{id: "5.7", desc: "as 5.6, frame by frame",
		steps: []step{send(frag12[0]), send(pingBetween), send(frag12[1])}, want: open(pong(text("ping payload")), echoed(opText, text("fragment1fragment2")))})
	add(row{id: "5.8", desc: "as 5.6, in chops of 1 byte",
		steps: []step{chopped(1, frag12[0], pingBetween, frag12[1])}, want: open(pong(text("ping payload")), echoed(opText, text("fragment1fragment2")))})
	contFin := [][]byte{frag(opCont, true, text("non-continuation payload")), fr(opText, text("Hello, world!"))}
	contMore := [][]byte{frag(opCont, false, text("non-continuation payload")), fr(opText, text("Hello, world!"))}
	add(row{id: "5.9", desc: "continuation (FIN) with nothing to continue, then text", steps: []step{send(contFin...)}, want: fails(1002)})
	add(row{id: "5.10", desc: "as 5.9, frame by frame", steps: []step{send(contFin[0]), send(contFin[1])}, want: fails(1002)})
	add(row{id: "5.11", desc: "as 5.9, in chops of 1 byte", steps: []step{chopped(1, contFin...)}, want: fails(1002)})
	add(row{id: "5.12", desc: "continuation (no FIN) with nothing to continue, then text", steps: []step{send(contMore...)}, want: fails(1002)})
	add(row{id: "5.13", desc: "as 5.12, frame by frame", steps: []step{send(contMore[0]), send(contMore[1])}, want: fails(1002)})
	add(row{id: "5.14", desc: "as 5.12, in chops of 1 byte", steps: []step{chopped(1, contMore...)}, want: fails(1002)})
	add(row{id: "5.15", desc: "a message in 2 fragments, then a continuation that continues nothing",
		steps: []step{send(frag(opText, false, text("fragment1")), frag(opCont, true, text("fragment2")),
			frag(opCont, false, text("fragment3")), frag(opText, true, text("fragment4")))},
		want: fails(1002, echoed(opText, text("fragment1fragment2")))})
	add(row{id: "5.16", desc: "continuation, text (no FIN), continuation (FIN), twice",
		steps: []step{send(frag(opCont, false, text("fragment1")), frag(opText, false, text("fragment2")), frag(opCont, true, text("fragment3")),
			frag(opCont, false, text("fragment1")), frag(opText, false, text("fragment2")), frag(opCont, true, text("fragment3")))},
		want: fails(1002)})
	add(row{id: "5.17", desc: "continuation (FIN), text (no FIN), continuation (FIN), twice",
		steps: []step{send(frag(opCont, true, text("fragment1")), frag(opText, false, text("fragment2")), frag(opCont, true, text("fragment3")),
			frag(opCont, true, text("fragment1")), frag(opText, false, text("fragment2")), frag(opCont, true, text("fragment3")))},
		want: fails(1002)})
	add(row{id: "5.18", desc: "a new text message before the previous one is finished",
		steps: []step{send(frag(opText, false, text("fragment1")), frag(opText, true, text("fragment2")))}, want: fails(1002)})
	five := func(i int) []byte { return frag(opCont, i == 5, fmt.Appendf(nil, "fragment%d", i)) }
	add(row{id: "5.19", desc: "text in 5 fragments with 2 pings between: 2 pongs, then the message",
		steps: []step{send(frag(opText, false, text("fragment1"))), send(five(2)), send(fr(opPing, text("pongme 1!"))),
			send(five(3)), send(five(4)), send(fr(opPing, text("pongme 2!"))), send(five(5))},
		want: open(pong(text("pongme 1!")), pong(text("pongme 2!")), echoed(opText, text("fragment1fragment2fragment3fragment4fragment5")))})
	add(row{id: "5.20", desc: "as 5.19, in chops of 1 byte",
		steps: []step{chopped(1, frag(opText, false, text("fragment1")), five(2), fr(opPing, text("pongme 1!")),
			five(3), five(4), fr(opPing, text("pongme 2!")), five(5))},
		want: open(pong(text("pongme 1!")), pong(text("pongme 2!")), echoed(opText, text("fragment1fragment2fragment3fragment4fragment5")))})
	many := func(op byte, p []byte, size int) [][]byte {
		var fs [][]byte
		for i := 0; i < len(p); i += size {
			o := opCont
			if i == 0 {
				o = op
			}
			fs = append(fs, frag(o, i+size >= len(p), p[i:min(i+size, len(p))]))
		}
		return fs
	}
	longText := []byte(strings.Repeat("reassemble me, ", 70))
	add(row{id: "5.M.1", desc: "text message in 100+ fragments of 10 bytes", steps: []step{send(many(opText, longText, 10)...)}, want: open(echoed(opText, longText))})
	longBin := rep(0xab, 1000)
	add(row{id: "5.M.2", desc: "binary message in 100 fragments of 10 bytes", steps: []step{send(many(opBinary, longBin, 10)...)}, want: open(echoed(opBinary, longBin))})
	add(row{id: "5.M.3", desc: "binary message: empty first and last fragments, pings between",
		steps: []step{send(frag(opBinary, false, nil), fr(opPing, text("a")), frag(opCont, false, rep(1, 3)), fr(opPing, text("b")), frag(opCont, true, nil))},
		want:  open(pong(text("a")), pong(text("b")), echoed(opBinary, rep(1, 3)))})
	add(row{id: "5.M.4", desc: "close frame in 2 fragments", steps: []step{{b: bytes.Join([][]byte{frag(opClose, false, closePayload(1000, nil)), frag(opCont, true, nil)}, nil), close: true}}, want: fails(1002)})
	add(row{id: "10.1.1", desc: "text message of 65536 bytes in fragments of 1300 bytes", steps: []step{send(many(opText, rep('*', 65536), 1300)...)}, want: open(echoed(opText, rep('*', 65536)))})

	// 6.x UTF-8.
	add(row{id: "6.1.1", desc: "empty text message", steps: []step{send(fr(opText, nil))}, want: open(echoed(opText, nil))})
	add(row{id: "6.1.2", desc: "empty text message in 3 empty fragments",
		steps: []step{send(frag(opText, false, nil), frag(opCont, false, nil), frag(opCont, true, nil))}, want: open(echoed(opText, nil))})
	add(row{id: "6.1.3", desc: "empty fragment, fragment with text, empty fragment",
		steps: []step{send(frag(opText, false, nil), frag(opCont, false, text("middle frame payload")), frag(opCont, true, nil))},
		want:  open(echoed(opText, text("middle frame payload")))})
	hello := []byte("Hello-µ@ßöäüàá-UTF-8!!")
	add(row{id: "6.2.1", desc: "valid UTF-8 in one fragment", steps: []step{send(fr(opText, hello))}, want: open(echoed(opText, hello))})
	add(row{id: "6.2.2", desc: "valid UTF-8 in 2 fragments, split at a code point",
		steps: []step{send(frag(opText, false, hello[:6]), frag(opCont, true, hello[6:]))}, want: open(echoed(opText, hello))})
	add(row{id: "6.2.3", desc: "valid UTF-8 in fragments of 1 byte (code points split across fragments)",
		steps: []step{send(many(opText, hello, 1)...)}, want: open(echoed(opText, hello))})
	kosme := []byte("κόσμε")
	add(row{id: "6.2.4", desc: "κόσμε in fragments of 1 byte", steps: []step{send(many(opText, kosme, 1)...)}, want: open(echoed(opText, kosme))})
	bad := []byte("κόσμε\xed\xa0\x80edited")
	add(row{id: "6.3.1", desc: "invalid UTF-8 (a surrogate) in one fragment", steps: []step{send(fr(opText, bad))}, want: fails(1007)})
	add(row{id: "6.3.2", desc: "invalid UTF-8 (a surrogate) in fragments of 1 byte", steps: []step{send(many(opText, bad, 1)...)}, want: fails(1007)})
	add(row{id: "6.4.1", desc: "valid fragment, invalid fragment (> U+10FFFF), pause, last fragment: fail fast or after the message",
		steps: []step{send(frag(opText, false, kosme), frag(opCont, false, text("\xf4\x90\x80\x80"))), pause(), send(frag(opCont, true, text("edited")))},
		want:  want{close: []int{1007}, dropOK: true, failFast: true}})
	add(row{id: "6.4.2", desc: "invalid sequence split across 2 fragments, pause, last fragment",
		steps: []step{send(frag(opText, false, text("κόσμε\xf4")), frag(opCont, false, text("\x90\x80\x80"))), pause(), send(frag(opCont, true, text("edited")))},
		want:  want{close: []int{1007}, dropOK: true, failFast: true}})
	for i, s := range validUTF8 {
		add(row{id: fmt.Sprintf("6.V.%d", i+1), desc: fmt.Sprintf("valid UTF-8 %s, whole and in fragments of 1 byte", s.name),
			steps: []step{send(fr(opText, []byte(s.b))), send(many(opText, []byte(s.b), 1)...)},
			want:  open(echoed(opText, []byte(s.b)), echoed(opText, []byte(s.b)))})
	}
	for i, s := range invalidUTF8 {
		b := []byte("ok " + s.b + " ok")
		add(row{id: fmt.Sprintf("6.I.%d.1", i+1), desc: fmt.Sprintf("invalid UTF-8 (%s) in one fragment", s.name),
			steps: []step{send(fr(opText, b))}, want: fails(1007)})
		cut := 3 + len(s.b)/2 // inside the sequence, or before a 1-byte one
		add(row{id: fmt.Sprintf("6.I.%d.2", i+1), desc: fmt.Sprintf("invalid UTF-8 (%s) split across 2 fragments", s.name),
			steps: []step{send(frag(opText, false, b[:cut]), frag(opCont, true, b[cut:]))}, want: fails(1007)})
	}
	add(row{id: "6.I.T", desc: "text ends inside a code point (\\xce), last fragment empty",
		steps: []step{send(frag(opText, false, text("κόσμε\xce")), frag(opCont, true, nil))}, want: fails(1007)})

	// 7.x closing.
	add(row{id: "7.1.1", desc: "text message, then close 1000: echo, then clean close",
		steps: []step{send(fr(opText, small)), sendClose(closePayload(1000, nil))}, want: want{replies: []reply{echoed(opText, small)}, close: []int{1000}}})
	add(row{id: "7.1.2", desc: "close sent twice: one close back",
		steps: []step{{b: bytes.Join([][]byte{fr(opClose, closePayload(1000, nil)), fr(opClose, closePayload(1000, nil))}, nil), close: true}},
		want:  closes(1000)})
	add(row{id: "7.1.3", desc: "close, then ping: no pong",
		steps: []step{{b: bytes.Join([][]byte{fr(opClose, closePayload(1000, nil)), ping}, nil), close: true}}, want: closes(1000)})
	add(row{id: "7.1.4", desc: "close, then text: no echo",
		steps: []step{{b: bytes.Join([][]byte{fr(opClose, closePayload(1000, nil)), fr(opText, small)}, nil), close: true}}, want: closes(1000)})
	add(row{id: "7.1.5", desc: "first fragment, close, last fragment: no echo",
		steps: []step{{b: bytes.Join([][]byte{frag(opText, false, text("fragment1")), fr(opClose, closePayload(1000, nil)), frag(opCont, true, text("fragment2"))}, nil), close: true}},
		want:  closes(1000)})
	add(row{id: "7.3.1", desc: "close with an empty payload", steps: []step{sendClose(nil)}, want: closes(1000, 1005)})
	add(row{id: "7.3.2", desc: "close with a 1-byte payload", steps: []step{sendClose([]byte{0x2a})}, want: fails(1002)})
	add(row{id: "7.3.3", desc: "close 1000 without a reason", steps: []step{sendClose(closePayload(1000, nil))}, want: closes(1000)})
	add(row{id: "7.3.4", desc: "close 1000 with a short reason", steps: []step{sendClose(closePayload(1000, text("Hello World!")))}, want: closes(1000)})
	add(row{id: "7.3.5", desc: "close 1000 with a 123-byte reason (payload 125 bytes)", steps: []step{sendClose(closePayload(1000, rep('*', 123)))}, want: closes(1000)})
	add(row{id: "7.3.6", desc: "close 1000 with a 124-byte reason (control frame over 125 bytes)", steps: []step{sendClose(closePayload(1000, rep('*', 124)))}, want: fails(1002)})
	add(row{id: "7.5.1", desc: "close 1000 with an invalid UTF-8 reason (Autobahn: 1002 or 1007 or drop)",
		steps: []step{sendClose(closePayload(1000, text("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64")))},
		want:  want{close: []int{1002, 1007}, dropOK: true}})
	for i, code := range []int{1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999} {
		add(row{id: fmt.Sprintf("7.7.%d", i+1), desc: fmt.Sprintf("close with valid code %d: normal or echoed code", code),
			steps: []step{sendClose(closePayload(code, nil))}, want: closes(1000, code)})
	}
	for i, code := range []int{0, 999, 1004, 1005, 1006, 1016, 1100, 2000, 2999} {
		add(row{id: fmt.Sprintf("7.9.%d", i+1), desc: fmt.Sprintf("close with invalid code %d", code),
			steps: []step{sendClose(closePayload(code, nil))}, want: fails(1002)})
	}
	add(row{id: "7.13.1", desc: "close with invalid code 5000", steps: []step{sendClose(closePayload(5000, nil))}, want: fails(1002)})
	add(row{id: "7.13.2", desc: "close with invalid code 65535", steps: []step{sendClose(closePayload(65535, nil))}, want: fails(1002)})
	add(row{id: "7.R.1", desc: "close with code 1015 (reserved: TLS handshake failure)", steps: []step{sendClose(closePayload(1015, nil))}, want: fails(1002)})

	// 9.x limits, on a server whose MaxMessageBytes is 1 MiB.
	for i, n := range []int{64 << 10, 256 << 10, confLimit} {
		add(row{id: fmt.Sprintf("9.1.%d", i+1), desc: fmt.Sprintf("text message of %d bytes (limit %d)", n, confLimit),
			steps: []step{send(fr(opText, rep('*', n)))}, want: open(echoed(opText, rep('*', n)))})
		add(row{id: fmt.Sprintf("9.2.%d", i+1), desc: fmt.Sprintf("binary message of %d bytes (limit %d)", n, confLimit),
			steps: []step{send(fr(opBinary, rep(0xfe, n)))}, want: open(echoed(opBinary, rep(0xfe, n)))})
	}
	add(row{id: "9.1.L", desc: "text message one byte over the limit", steps: []step{send(fr(opText, rep('*', confLimit+1)))}, want: closes(1009)})
	add(row{id: "9.2.L", desc: "binary message one byte over the limit", steps: []step{send(fr(opBinary, rep(0xfe, confLimit+1)))}, want: closes(1009)})
	add(row{id: "9.3.1", desc: "text message at the limit in fragments of 64 KiB", steps: []step{send(many(opText, rep('*', confLimit), 64<<10)...)}, want: open(echoed(opText, rep('*', confLimit)))})
	add(row{id: "9.4.1", desc: "binary message at the limit in fragments of 64 KiB", steps: []step{send(many(opBinary, rep(0xfe, confLimit), 64<<10)...)}, want: open(echoed(opBinary, rep(0xfe, confLimit)))})
	add(row{id: "9.3.L", desc: "text fragments adding up to one byte over the limit", steps: []step{send(many(opText, rep('*', confLimit+1), 64<<10)...)}, want: closes(1009)})
	add(row{id: "9.4.L", desc: "binary fragments adding up to one byte over the limit", steps: []step{send(many(opBinary, rep(0xfe, confLimit+1), 64<<10)...)}, want: closes(1009)})
	add(row{id: "9.H.1", desc: "text header announces 8 MiB (limit 1 MiB), 1 KiB sent: 1009 at the header",
		steps: []step{send(announce(opText, true, 8<<20, rep('*', 1024)))}, want: want{close: []int{1009}, within: headerWithin}})
	add(row{id: "9.H.2", desc: "binary header announces 8 MiB (limit 1 MiB), 1 KiB sent: 1009 at the header",
		steps: []step{send(announce(opBinary, true, 8<<20, rep(0xfe, 1024)))}, want: want{close: []int{1009}, within: headerWithin}})
	add(row{id: "9.H.3", desc: "512 KiB fragment, then a continuation header taking the message to 1.5 MiB: 1009 at the header",
		steps: []step{send(frag(opText, false, rep('*', 512<<10)), announce(opCont, true, 1<<20, rep('*', 1024)))},
		want:  want{close: []int{1009}, within: headerWithin}})
	add(row{id: "9.H.4", desc: "header announces 2^63-1 bytes: 1009 at the header",
		steps: []step{send(announce(opBinary, true, 1<<63-1, rep(0xfe, 16)))}, want: want{close: []int{1009}, within: headerWithin}})

	// 9.x limits with the default Options: 32 KiB of text, 1 MiB binary.
	add(row{id: "9.D.1", cfg: "defaults", desc: "defaults: text message of 32 KiB (MaxMessageBytes)",
		steps: []step{send(fr(opText, rep('*', defaultText)))}, want: open(echoed(opText, rep('*', defaultText)))})
	add(row{id: "9.D.2", cfg: "defaults", desc: "defaults: text message of 32 KiB + 1",
		steps: []step{send(fr(opText, rep('*', defaultText+1)))}, want: closes(1009)})
	add(row{id: "9.D.3", cfg: "defaults", desc: "defaults: binary message of 64 KiB (over the text limit; MaxBinaryBytes 1 MiB)",
		steps: []step{send(fr(opBinary, rep(0xfe, 64<<10)))}, want: open(echoed(opBinary, rep(0xfe, 64<<10)))})
	add(row{id: "9.D.4", cfg: "defaults", desc: "defaults: binary message of 1 MiB (MaxBinaryBytes)",
		steps: []step{send(fr(opBinary, rep(0xfe, defaultBin)))}, want: open(echoed(opBinary, rep(0xfe, defaultBin)))})
	add(row{id: "9.D.5", cfg: "defaults", desc: "defaults: binary message of 1 MiB + 1",
		steps: []step{send(fr(opBinary, rep(0xfe, defaultBin+1)))}, want: closes(1009)})
	add(row{id: "9.D.6", cfg: "defaults", desc: "defaults: text header announces 8 MiB, 1 KiB sent: 1009 at the header",
		steps: []step{send(announce(opText, true, 8<<20, rep('*', 1024)))}, want: want{close: []int{1009}, within: headerWithin}})
	add(row{id: "9.D.7", cfg: "defaults", desc: "defaults: text header announces 64 KiB, 1 KiB sent: 1009 at the header",
		steps: []step{send(announce(opText, true, 64<<10, rep('*', 1024)))}, want: want{close: []int{1009}, within: headerWithin}})

	// RFC 6455 requirements Autobahn does not test.
	add(row{id: "R.1", desc: "unmasked client frame (5.1: the server MUST close; 1002 or drop)",
		steps: []step{send(encode(header{fin: true, op: opText, n: -1, unmasked: true}, small))}, want: fails(1002)})
	add(row{id: "R.2", desc: "masking key of zeros is valid", steps: []step{send(encode(header{fin: true, op: opText, n: -1}, small))}, want: open(echoed(opText, small))})
	add(row{id: "H.1", desc: "permessage-deflate offered: declined (no extension in the answer), plain frames work",
		dial: dialOptions{offerDeflate: true}, steps: []step{send(fr(opText, small))}, want: open(echoed(opText, small))})
	add(row{id: "H.2", desc: "permessage-deflate offered and declined: a frame with RSV1 fails",
		dial: dialOptions{offerDeflate: true}, steps: []step{send(rsvFrame(4, opText, small))}, want: fails(1002)})

	// The chat protocol, through the same frames.
	add(row{id: "C.1", only: "chat", desc: "chat message in 3 fragments with a ping between: pong, then the message",
		steps: []step{send(frag(opText, false, text(`{"type":"mess`)), fr(opPing, text("p")), frag(opCont, false, text(`age","text":"fragm`)), frag(opCont, true, text(`ented"}`)))},
		want:  open(pong(text("p")), chatMsg("fragmented"))})
	add(row{id: "C.2", only: "chat", desc: "chat message with κόσμε, in fragments of 1 byte",
		steps: []step{send(many(opText, text(`{"type":"message","text":"κόσμε"}`), 1)...)}, want: open(chatMsg("κόσμε"))})
	add(row{id: "C.3", only: "chat", desc: "chat message with invalid UTF-8 in its text",
		steps: []step{send(fr(opText, text("{\"type\":\"message\",\"text\":\"κόσμε\xed\xa0\x80\"}")))}, want: fails(1007)})
	add(row{id: "C.4", only: "chat", desc: "chat message and close 1001 at once: close echoed (the message may not come back: the client is leaving)",
		steps: []step{{b: bytes.Join([][]byte{fr(opText, text(`{"type":"message","text":"bye"}`)), fr(opClose, closePayload(1001, text("going")))}, nil), close: true}},
		want:  closes(1000, 1001)})
	return rs
}

// reservedOpcode is a 4.x row: after a valid text message when i >= 3, a
// frame with a reserved opcode, then a ping that must not be answered.
func reservedOpcode(group string, i int, op byte, small, ping []byte) row {
	var payload []byte
	if i%2 == 0 {
		payload = text("reserved opcode payload")
	}
	r := row{id: fmt.Sprintf("%s.%d", group, i), desc: fmt.Sprintf("frame with reserved opcode %d", op)}
	if i >= 3 {
		r.desc = fmt.Sprintf("text, frame with reserved opcode %d, ping: first echoed, then failed, no pong", op)
		r.steps = []step{send(fr(opText, small), fr(op, payload), ping)}
		r.want = fails(1002, echoed(opText, small))
		return r
	}
	r.steps = []step{send(fr(op, payload))}
	r.want = fails(1002)
	return r
}

type sample struct{ name, b string }

var validUTF8 = []sample{
	{"U+0000", "\x00"}, {"U+007F", "\x7f"}, {"U+0080", "\u0080"}, {"U+07FF", "\u07ff"},
	{"U+0800", "\u0800"}, {"U+FFFF (noncharacter, valid)", "\uffff"}, {"U+FEFF (BOM)", "\ufeff"},
	{"U+10000", "\U00010000"}, {"U+10FFFF", "\U0010ffff"}, {"κόσμε", "κόσμε"},
}

var invalidUTF8 = []sample{
	{"surrogate U+D800", "\xed\xa0\x80"},
	{"surrogate pair", "\xed\xa0\x80\xed\xb0\x80"},
	{"above U+10FFFF", "\xf4\x90\x80\x80"},
	{"overlong '/' in 2 bytes", "\xc0\xaf"},
	{"overlong NUL in 2 bytes", "\xc0\x80"},
	{"overlong '/' in 3 bytes", "\xe0\x80\xaf"},
	{"overlong '/' in 4 bytes", "\xf0\x80\x80\xaf"},
	{"lone continuation byte", "\x80"},
	{"truncated 3-byte sequence", "\xe2\x82"},
	{"5-byte sequence", "\xf8\x88\x80\x80\x80"},
	{"6-byte sequence", "\xfc\x84\x80\x80\x80\x80"},
	{"byte 0xFE", "\xfe"},
	{"byte 0xFF", "\xff"},
}

// streamOf is the bytes a row sends, for the fuzz seeds.
func streamOf(r row) []byte {
	var b []byte
	for _, s := range r.steps {
		b = append(b, s.b...)
	}
	return b
}
