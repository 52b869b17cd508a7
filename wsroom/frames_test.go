package wsroom_test

import (
	"fmt"
	"strings"
	"testing"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestNoDataFrameAfterCloseFrame closes members while broadcasts pile up
// for them: once the server has answered a client's close frame, no data
// frame follows (RFC 6455, 5.5.1), however busy the member's writer is.
// A stalled member's close frame arrives while the writer is blocked in a
// write, so the answer waits for it, and the writer has more to write.
func TestNoDataFrameAfterCloseFrame(t *testing.T) {
	t.Parallel()
	for _, stalled := range []bool{false, true} {
		t.Run(fmt.Sprintf("stalled=%v", stalled), func(t *testing.T) {
			t.Parallel()
			e := newEnv(t, &wsroom.Options{RateLimit: -1, SendQueue: -1, WelcomeHistory: -1, MaxMessageBytes: 1 << 20})
			ctx := testContext(t)
			room := e.srv.Room("flood")
			text := "x"
			if stalled {
				text = strings.Repeat("x", 16<<10)
			}
			for round := range 10 {
				r := e.rawDial("/chat/flood", "wsroom.v1", 0)
				r.writeFrame(true, 1, fmt.Appendf(nil, `{"type":"join","name":"m%d"}`, round))
				_, _, err := r.readFrame() // the welcome
				assert.Success(t, err)
				stop, done := make(chan struct{}), make(chan struct{})
				if stalled {
					close(done)
					for range 300 { // about 5 MB: more than the socket buffers hold
						_, err := room.Broadcast(ctx, wsroom.Message{Text: text})
						assert.Success(t, err)
					}
				} else {
					go func() {
						defer close(done)
						for range 100000 {
							select {
							case <-stop:
								return
							default:
							}
							if _, err := room.Broadcast(ctx, wsroom.Message{Text: text}); err != nil {
								return
							}
						}
					}()
					for range 20 {
						_, _, err := r.readFrame()
						assert.Success(t, err)
					}
				}
				r.writeFrame(true, 8, []byte{0x03, 0xe8}) // 1000
				closeAt := -1
				for i := 0; ; i++ {
					op, _, err := r.readFrame()
					if err != nil {
						break // the server closed the connection
					}
					if closeAt >= 0 {
						t.Fatalf("round %d: frame %d, opcode %d, came after the close frame (frame %d)", round, i, op, closeAt)
					}
					if op == 8 {
						closeAt = i
					}
				}
				close(stop)
				<-done
				assert.True(t, fmt.Sprintf("round %d: the server answered the close frame", round), closeAt >= 0)
			}
		})
	}
}
