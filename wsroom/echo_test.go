package wsroom_test

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

func TestEcho(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{MaxMessageBytes: 1 << 20})
	c := e.dial("/echo", false)
	ctx := testContext(t)
	for _, tc := range []struct {
		typ  websocket.MessageType
		data []byte
	}{
		{websocket.MessageText, []byte("hello")},
		{websocket.MessageText, []byte("你好 🎉")},
		{websocket.MessageText, []byte{}},
		{websocket.MessageBinary, []byte{0, 1, 2, 0xff}},
		{websocket.MessageBinary, bytes.Repeat([]byte{0xab}, 300_000)},
		{websocket.MessageText, []byte(strings.Repeat("é", 100_000))},
	} {
		assert.Success(t, c.c.Write(ctx, tc.typ, tc.data))
		typ, got, err := c.readFrame(ctx)
		assert.Success(t, err)
		assert.Equal(t, "type", tc.typ, typ)
		assert.True(t, "same data", bytes.Equal(tc.data, got))
	}
}

func TestEchoReassemblesFragments(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c := e.dial("/echo", false)
	ctx := testContext(t)
	for _, typ := range []websocket.MessageType{websocket.MessageText, websocket.MessageBinary} {
		w, err := c.c.Writer(ctx, typ)
		assert.Success(t, err)
		for _, part := range []string{"frag", "mented ", "message"} {
			_, err := w.Write([]byte(part)) // each Write is one frame
			assert.Success(t, err)
		}
		assert.Success(t, w.Close())
		got, b, err := c.readFrame(ctx)
		assert.Success(t, err)
		assert.Equal(t, "type", typ, got)
		assert.Equal(t, "reassembled", "fragmented message", string(b))
	}
}

func TestEchoLimits(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{MaxMessageBytes: 1000, MaxBinaryBytes: 5000})
	big := e.dial("/echo", false)
	assert.Success(t, big.c.Write(testContext(t), websocket.MessageText, make([]byte, 1001)))
	assert.Equal(t, "text too big", websocket.StatusMessageTooBig, big.closed())
	bin := e.dial("/echo", false)
	assert.Success(t, bin.c.Write(testContext(t), websocket.MessageBinary, make([]byte, 5000)))
	typ, b, err := bin.readFrame(testContext(t))
	assert.Success(t, err)
	assert.True(t, "binary within its own limit echoed", typ == websocket.MessageBinary && len(b) == 5000)
	assert.Success(t, bin.c.Write(testContext(t), websocket.MessageBinary, make([]byte, 5001)))
	assert.Equal(t, "binary too big", websocket.StatusMessageTooBig, bin.closed())

	utf := e.dial("/echo", false)
	assert.Success(t, utf.c.Write(testContext(t), websocket.MessageText, []byte{'a', 0xff}))
	assert.Equal(t, "invalid UTF-8", websocket.StatusInvalidFramePayloadData, utf.closed())

	// Over the rate, frames are dropped, then the connection is closed.
	e2 := newEnv(t, &wsroom.Options{RateLimit: 1, RateBurst: 2})
	flood := e2.dial("/echo", false)
	for range 6 {
		if flood.c.Write(context.Background(), websocket.MessageText, []byte("x")) != nil {
			break
		}
	}
	n := 0
	for {
		_, _, err := flood.readFrame(testContext(t))
		if err != nil {
			assert.Equal(t, "rate", websocket.StatusPolicyViolation, websocket.CloseStatus(err))
			break
		}
		n++
	}
	assert.Equal(t, "echoed within the burst", 2, n)
}

// TestEchoAroundTheWriteBuffer sends messages of every header size and
// copy or writev path, and whose frames end just before,
// on and after the 4 KiB write buffer, and its multiples, while the
// heartbeat writes pings in between: every frame must arrive whole and in
// order, between the library's pings.
func TestEchoAroundTheWriteBuffer(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{MaxMessageBytes: 1 << 20, RateLimit: -1, PingInterval: time.Millisecond})
	c := e.dial("/echo", false)
	ctx := testContext(t)
	for _, n := range []int{1, 125, 126, 1024, 1025, 4000, 4078, 4079, 4080, 4081, 4082, 4090, 4091, 4092, 4093, 4096, 4100, 8172, 8180, 8188, 8192, 12272, 65535, 65536, 70000} {
		for _, typ := range []websocket.MessageType{websocket.MessageBinary, websocket.MessageText} {
			data := bytes.Repeat([]byte{byte('a' + n%26)}, n)
			data[n-1] = 'z'
			assert.Success(t, c.c.Write(ctx, typ, data))
			got, b, err := c.readFrame(ctx)
			assert.Success(t, err)
			assert.Equal(t, "type", typ, got)
			assert.True(t, fmt.Sprintf("%d bytes echoed whole", n), bytes.Equal(data, b))
		}
	}
}
