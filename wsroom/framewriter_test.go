package wsroom

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
)

// recordConn is a net.Conn that keeps what is written to it.
type recordConn struct {
	net.Conn
	out    bytes.Buffer
	writes int
}

func (c *recordConn) Write(p []byte) (int, error) {
	c.writes++
	return c.out.Write(p)
}

func TestFrameHeaders(t *testing.T) {
	for _, tc := range []struct {
		n    int
		head []byte
	}{
		{0, []byte{0x81, 0}},
		{125, []byte{0x81, 125}},
		{126, []byte{0x81, 126, 0, 126}},
		{copyMax, []byte{0x81, 126, 0x04, 0x00}},
		{copyMax + 1, []byte{0x81, 126, 0x04, 0x01}},
		{0xffff, []byte{0x81, 126, 0xff, 0xff}},
		{0x10000, []byte{0x81, 127, 0, 0, 0, 0, 0, 1, 0, 0}},
	} {
		payload := bytes.Repeat([]byte{'p'}, tc.n)
		want := append(append([]byte(nil), tc.head...), payload...)

		c := &recordConn{}
		fw := &frameWriter{conn: c}
		assert.Success(t, fw.writeFrame(opText, payload))
		assert.True(t, fmt.Sprintf("writeFrame: a text frame of %d bytes", tc.n), bytes.Equal(want, c.out.Bytes()))
		if tc.n <= copyMax {
			assert.Equal(t, fmt.Sprintf("writes for a frame of %d bytes", tc.n), 1, c.writes)
		}

		c.out.Reset()
		c.writes = 0
		assert.Success(t, fw.writeFramed(opText, append(make([]byte, maxHeader), payload...)))
		assert.True(t, fmt.Sprintf("writeFramed: a text frame of %d bytes", tc.n), bytes.Equal(want, c.out.Bytes()))
		assert.Equal(t, fmt.Sprintf("writeFramed: writes for a frame of %d bytes", tc.n), 1, c.writes)
	}
	c := &recordConn{}
	fw := &frameWriter{conn: c}
	assert.Success(t, fw.writeFrame(opBinary, []byte{1, 2}))
	assert.True(t, "a binary frame", bytes.Equal([]byte{0x82, 2, 1, 2}, c.out.Bytes()))
}

// TestNoDataFrameAfterCloseSent: once the library has written a close
// frame, frameWriter refuses data frames; a ping changes nothing.
func TestNoDataFrameAfterCloseSent(t *testing.T) {
	c := &recordConn{}
	fw := &frameWriter{conn: c}
	ping := []byte{0x89, 0}
	_, err := fw.Write(ping)
	assert.Success(t, err)
	assert.Success(t, fw.writeFrame(opText, []byte("before")))
	closeFrame := []byte{0x88, 2, 0x03, 0xe8}
	_, err = fw.Write(closeFrame)
	assert.Success(t, err)
	sent := c.out.Len()
	assert.True(t, "writeFrame after close: errCloseSent", errors.Is(fw.writeFrame(opText, []byte("late")), errCloseSent))
	assert.True(t, "writev after close: errCloseSent", errors.Is(fw.writeFrame(opBinary, make([]byte, copyMax+1)), errCloseSent))
	assert.True(t, "writeFramed after close: errCloseSent", errors.Is(fw.writeFramed(opText, make([]byte, maxHeader+3)), errCloseSent))
	assert.Equal(t, "bytes written after the close frame", sent, c.out.Len())
	assert.True(t, "the close frame is the last", bytes.HasSuffix(c.out.Bytes(), closeFrame))
}

// failConn fails every write after the first failAfter bytes, writing
// those.
type failConn struct {
	recordConn
	failAfter int
}

func (c *failConn) Write(p []byte) (int, error) {
	if room := c.failAfter - c.out.Len(); room < len(p) {
		c.recordConn.Write(p[:max(room, 0)])
		return max(room, 0), errors.New("broken pipe")
	}
	return c.recordConn.Write(p)
}

// TestFrameWriterStickyError: after a write fails mid-frame, nothing more
// is written on the connection, data or control: the peer never sees the
// rest of a torn frame read as frames.
func TestFrameWriterStickyError(t *testing.T) {
	c := &failConn{failAfter: 5}
	fw := &frameWriter{conn: c}
	err := fw.writeFrame(opText, []byte("a long enough frame"))
	assert.True(t, "first write fails", err != nil)
	torn := c.out.Len()
	assert.True(t, "the first error again", errors.Is(fw.writeFrame(opText, []byte("x")), err))
	assert.True(t, "writev too", errors.Is(fw.writeFrame(opBinary, make([]byte, copyMax+1)), err))
	_, perr := fw.Write([]byte{0x89, 0}) // the library's ping
	assert.True(t, "control frames too", errors.Is(perr, err))
	c.failAfter = 1 << 20 // the connection would take more now
	assert.True(t, "still failing", errors.Is(fw.writeFramed(opText, make([]byte, maxHeader+1)), err))
	assert.Equal(t, "bytes written after the failure", torn, c.out.Len())
}

// TestFrameWriterReassemblesControlFrames: whatever the flush boundaries
// of the library's buffered writer, a control frame goes out whole, never
// with a data frame inside it.
func TestFrameWriterReassemblesControlFrames(t *testing.T) {
	c := &recordConn{}
	fw := &frameWriter{conn: c}
	ping := []byte{0x89, 4, 'p', 'i', 'n', 'g'}
	pong := []byte{0x8a, 0x7e, 0, 2, 'o', 'k'} // a 16-bit length, to split the header
	for _, cut := range []int{1, 2, 3, 4, 5} {
		c.out.Reset()
		all := append(append([]byte(nil), ping...), pong...)
		n, err := fw.Write(all[:cut])
		assert.Success(t, err)
		assert.Equal(t, "taken", cut, n)
		assert.Success(t, fw.writeFrame(opText, []byte("data")))
		_, err = fw.Write(all[cut:])
		assert.Success(t, err)
		want := append(append([]byte{0x81, 4, 'd', 'a', 't', 'a'}, ping...), pong...)
		if cut >= len(ping) {
			want = append(append(append([]byte(nil), ping...), 0x81, 4, 'd', 'a', 't', 'a'), pong...)
		}
		assert.True(t, fmt.Sprintf("cut at %d: frames whole and in order: %x", cut, c.out.Bytes()), bytes.Equal(want, c.out.Bytes()))
	}
}

// TestTryFramedKeepsTheTail: frames written directly, without blocking,
// to a peer that reads nothing fill the socket; a frame the socket took
// only in part has its rest kept and written first, so the peer reads
// whole frames, in order.
func TestTryFramedKeepsTheTail(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	assert.Success(t, err)
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	client, err := net.Dial("tcp", ln.Addr().String())
	assert.Success(t, err)
	defer client.Close()
	server := <-accepted
	defer server.Close()
	server.(*net.TCPConn).SetWriteBuffer(8 << 10)
	client.(*net.TCPConn).SetReadBuffer(8 << 10)
	fw := newFrameWriter(server, 5*time.Second)

	payload := func(i int) []byte { return bytes.Repeat([]byte{byte(i)}, 3000) }
	framed := func(p []byte) []byte { return append(make([]byte, maxHeader), p...) }
	sent, tails := 0, 0
	for i := 0; ; i++ {
		ok, tail, err := fw.tryFramed(opBinary, framed(payload(i)))
		assert.Success(t, err)
		if !ok {
			break // full
		}
		sent++
		if tail {
			tails++
			// The writer finishes the frame before anything else.
			done := make(chan error, 1)
			go func() { done <- fw.writeFrame(opBinary, payload(i+1)) }()
			br := bufio.NewReader(client)
			for j := 0; j <= i+1; j++ {
				var h [4]byte
				_, err := io.ReadFull(br, h[:])
				assert.Success(t, err)
				assert.True(t, fmt.Sprintf("frame %d: a whole binary frame of 3000 bytes", j), h[0] == 0x82 && h[1] == 126 && int(h[2])<<8|int(h[3]) == 3000)
				p := make([]byte, 3000)
				_, err = io.ReadFull(br, p)
				assert.Success(t, err)
				assert.True(t, fmt.Sprintf("frame %d in order", j), bytes.Equal(payload(j), p))
			}
			assert.Success(t, <-done)
			break
		}
		if i > 10000 {
			t.Fatal("the socket never filled")
		}
	}
	assert.True(t, "some frames went out directly", sent > 0)
	assert.True(t, "a frame the socket took in part", tails > 0)
	t.Logf("%d frames written directly before the socket filled; %d left a tail", sent, tails)
}
