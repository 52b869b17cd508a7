package wsroom_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestBroadcastBinaryCopies: a caller that reuses its buffer after
// BroadcastBinary returns does not change what members receive.
func TestBroadcastBinaryCopies(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, _ := e.join("bin", "ann")
	room := e.srv.Room("bin")
	buf := make([]byte, 64)
	const n = 50
	for i := range n {
		for j := range buf {
			buf[j] = byte(i)
		}
		assert.Success(t, room.BroadcastBinary(testContext(t), buf))
	}
	for j := range buf {
		buf[j] = 0xff
	}
	ctx := testContext(t)
	for i := range n {
		typ, b, err := c.readFrame(ctx)
		assert.Success(t, err)
		assert.Equal(t, "binary", websocket.MessageBinary, typ)
		assert.True(t, fmt.Sprintf("frame %d holds what was sent", i), bytes.Equal(bytes.Repeat([]byte{byte(i)}, 64), b))
	}
}

// TestRemoveReasonCutOnACharacter: a long reason is cut to the 123 bytes
// a close frame holds without splitting a character, so the client gets
// valid UTF-8 (a browser fails a connection with 1007 otherwise).
func TestRemoveReasonCutOnACharacter(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	c, _ := e.join("rm", "ann")
	reason := strings.Repeat("é", 100) // 200 bytes, 2 per character
	assert.Success(t, e.srv.Room("rm").Remove(testContext(t), "ann", reason))
	ctx := testContext(t)
	var err error
	for err == nil {
		_, _, err = c.readFrame(ctx)
	}
	var ce websocket.CloseError
	assert.True(t, "a close error", errorAs(err, &ce))
	assert.Equal(t, "code", websocket.StatusPolicyViolation, ce.Code)
	assert.True(t, "valid UTF-8", utf8.ValidString(ce.Reason))
	assert.Equal(t, "cut to whole characters", strings.Repeat("é", 61), ce.Reason)
}

// failingStore fails every Reserve with the bare sentinel, or with an
// error full of internals.
type failingStore struct {
	*wsroom.MemoryStore
	err error
}

func (s failingStore) Reserve(ctx context.Context, r wsroom.Reservation, o wsroom.ReserveOptions) (wsroom.Owner, error) {
	return wsroom.Owner{}, s.err
}

// TestErrorTextIsFixed: what a client reads in an error event is the
// code's fixed text, whatever the store's error said.
func TestErrorTextIsFixed(t *testing.T) {
	t.Parallel()
	for _, err := range []error{wsroom.ErrNameTaken, fmt.Errorf("dial tcp 10.1.2.3:6379: secret-host: %w", context.DeadlineExceeded)} {
		e := newEnv(t, &wsroom.Options{Store: failingStore{wsroom.NewMemoryStore(nil), err}})
		c := e.dial("/chat/x", true)
		c.send(map[string]any{"type": "join", "name": "ann"})
		ev := c.expect("error")
		assert.True(t, "no internals, no <nil>", !strings.Contains(ev.Message, "nil") && !strings.Contains(ev.Message, "10.1.2.3") && !strings.Contains(ev.Message, "wsroom:"))
		switch err {
		case wsroom.ErrNameTaken:
			assert.Equal(t, "code", wsroom.CodeNameTaken, ev.Code)
			assert.Equal(t, "text", "the name is taken in this room", ev.Message)
		default:
			assert.Equal(t, "code", wsroom.CodeUnavailable, ev.Code)
		}
		c.send(map[string]any{"type": "bogus"})
		assert.Equal(t, "bad request text", "the frame is not a valid request", c.expect("error").Message)
	}
}

// TestBinaryDefaultFitsAPicture: with the defaults, a drawing of a few
// hundred KiB is echoed and relayed; a text message stays bounded at 32
// KiB.
func TestBinaryDefaultFitsAPicture(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	picture := bytes.Repeat([]byte{0x89, 'P', 'N', 'G'}, 100<<10) // 400 KiB
	echo := e.dial("/echo", false)
	ctx := testContext(t)
	assert.Success(t, echo.c.Write(ctx, websocket.MessageBinary, picture))
	typ, b, err := echo.readFrame(ctx)
	assert.Success(t, err)
	assert.True(t, "echoed whole", typ == websocket.MessageBinary && bytes.Equal(picture, b))

	a, _ := e.join("draw", "ann")
	bob, _ := e.join("draw", "bob")
	a.until("join")
	assert.Success(t, bob.c.Write(ctx, websocket.MessageBinary, picture))
	for {
		typ, b, err := a.readFrame(ctx)
		assert.Success(t, err)
		if typ == websocket.MessageBinary {
			assert.True(t, "relayed whole", bytes.Equal(picture, b))
			break
		}
	}
	bob.sendText(strings.Repeat("x", 33<<10))
	assert.Equal(t, "text over 32 KiB", websocket.StatusMessageTooBig, bob.closed())
}

// TestWriteTimeoutPerFrame: WriteTimeout bounds each frame, not a whole
// batch: a plain-text member that reads steadily but slowly through a long
// batch of lines is not dropped. (Not parallel: it is about time.)
func TestWriteTimeoutPerFrame(t *testing.T) {
	l := newLeaves()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{OnLeave: l.hook}, WriteTimeout: 2 * time.Second, RateLimit: -1, SendQueue: -1, SendQueueBytes: -1, MaxMessageBytes: 1 << 20, WelcomeHistory: -1})
	r := e.rawDial("/chat/slow", "", 256<<10)
	r.writeFrame(true, 1, []byte("login:slow"))
	for range 2 { // the welcome's lines
		_, _, err := r.readFrame()
		assert.Success(t, err)
	}
	room := e.srv.Room("slow")
	const lines = 2400
	line := strings.Repeat("x", 8<<10)
	for range lines {
		_, err := room.Broadcast(testContext(t), wsroom.Message{Text: line})
		assert.Success(t, err)
	}
	// About 20 MB at ~6 MB/s: three seconds in all, more than the
	// timeout (the socket buffers hold a part), but each frame is taken
	// well within it. (Slower, and a frame waits for the kernel to free a
	// third of a send buffer of megabytes: the timeout of a test must not
	// be that tight.)
	start := time.Now()
	for i := range lines {
		op, _, err := r.readFrame()
		if err != nil {
			t.Fatalf("frame %d after %v: %v; left: %+v", i, time.Since(start), err, l.all())
		}
		assert.True(t, fmt.Sprintf("frame %d is a line, not a close (after %v)", i, time.Since(start)), op == 1)
		if i%8 == 0 {
			sleepFor(t, 10*time.Millisecond)
		}
	}
	assert.True(t, "the reading took longer than the timeout", time.Since(start) > 2500*time.Millisecond)
}

func errorAs(err error, target any) bool { return errors.As(err, target) }
