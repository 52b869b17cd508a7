package wsroom

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"wsroom.dev/internal/assert"
)

// clientFrame returns a masked client frame header for n bytes of payload
// and the payload (zeros).
func clientHeader(fin bool, op byte, n int) []byte {
	b := []byte{op}
	if fin {
		b[0] |= 0x80
	}
	switch {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126)
		b = binary.BigEndian.AppendUint16(b, uint16(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	return append(b, 1, 2, 3, 4)
}

// inspectAll reads everything through an inspectConn fed stream in chunks
// of size chunk; it returns the bytes passed on and the error.
func inspectAll(stream []byte, chunk int, textMax, binMax int64) ([]byte, error) {
	server, client := net.Pipe()
	go func() {
		for i := 0; i < len(stream); i += chunk {
			client.Write(stream[i:min(i+chunk, len(stream))])
		}
		client.Close()
	}()
	defer server.Close()
	ic := newInspectConn(server, nil, textMax, binMax)
	var out bytes.Buffer
	buf := make([]byte, 7)
	for {
		n, err := ic.Read(buf)
		out.Write(buf[:n])
		if err != nil {
			if errors.Is(err, io.EOF) {
				return out.Bytes(), nil
			}
			return out.Bytes(), err
		}
	}
}

func TestInspectorRefusesAtTheHeader(t *testing.T) {
	ok := append(clientHeader(true, opText, 10), make([]byte, 10)...)
	ok = append(ok, clientHeader(false, opBinary, 100)...)
	ok = append(ok, make([]byte, 100)...)
	ok = append(ok, clientHeader(true, 0x9, 3)...) // a ping between fragments
	ok = append(ok, 'p', 'i', 'n')
	ok = append(ok, clientHeader(true, opCont, 100)...)
	ok = append(ok, make([]byte, 100)...)
	for _, chunk := range []int{1, 3, 64, 1 << 20} {
		got, err := inspectAll(ok, chunk, 10, 200)
		assert.Success(t, err)
		assert.True(t, "within the limits: passed unchanged", bytes.Equal(ok, got))

		// A text message one byte over: refused at its header, what came
		// before passed on.
		bad := append(append([]byte(nil), ok...), clientHeader(true, opText, 11)...)
		got, err = inspectAll(bad, chunk, 10, 200)
		assert.True(t, "over: errTooBig", errors.Is(err, errTooBig))
		// (Bytes of the refused header that an earlier read returned stay
		// returned.)
		assert.True(t, "the frames before it passed", bytes.HasPrefix(got, ok) && bytes.HasPrefix(bad, got))

		// A fragmented binary message whose fragments add up to more.
		frag := append(clientHeader(false, opBinary, 150), make([]byte, 150)...)
		frag = append(frag, clientHeader(true, opCont, 51)...)
		_, err = inspectAll(frag, chunk, 10, 200)
		assert.True(t, "fragments over: errTooBig", errors.Is(err, errTooBig))

		// 8 MiB announced, never sent: refused without waiting for it.
		huge := clientHeader(true, opBinary, 8<<20)
		_, err = inspectAll(huge, chunk, 10, 200)
		assert.True(t, "announced: errTooBig", errors.Is(err, errTooBig))
	}
	got, err := inspectAll(clientHeader(true, opBinary, 1<<30), 5, -1, -1)
	assert.Success(t, err)
	assert.Equal(t, "no limits", 14, len(got))
}

// closeFrame returns a masked client close frame with code and reason.
func closeFrame(code uint16, reason []byte) []byte {
	key := []byte{9, 8, 7, 6}
	p := binary.BigEndian.AppendUint16(nil, code)
	p = append(p, reason...)
	b := []byte{0x88, 0x80 | byte(len(p))}
	b = append(b, key...)
	for i, c := range p {
		b = append(b, c^key[i%4])
	}
	return b
}

func TestInspectorChecksCloseReasons(t *testing.T) {
	msg := append(clientHeader(true, opText, 3), 'a', 'b', 'c')
	good := append(append([]byte(nil), msg...), closeFrame(1000, []byte("bye ✋"))...)
	good = append(good, msg...) // nothing should follow a close, but it is not ours to judge
	bad := append(append([]byte(nil), msg...), closeFrame(1000, []byte{'b', 0xff})...)
	for _, chunk := range []int{1, 2, 5, 64} {
		got, err := inspectAll(good, chunk, -1, -1)
		assert.Success(t, err)
		assert.True(t, fmt.Sprintf("chunk %d: a valid close frame passes whole, in order", chunk), bytes.Equal(good, got))
		got, err = inspectAll(bad, chunk, -1, -1)
		assert.True(t, "invalid reason: errCloseReason", errors.Is(err, errCloseReason))
		assert.True(t, "what came before passed", bytes.Equal(msg, got))
	}
	empty := closeFrame(1000, nil)[:6]
	empty[1] = 0x80 // no payload at all
	got, err := inspectAll(empty, 1, -1, -1)
	assert.Success(t, err)
	assert.True(t, "an empty close passes", bytes.Equal(empty, got))
}
