package wsroom

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"testing"

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
