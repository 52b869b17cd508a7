package wsroom_test

import (
	"bytes"
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// pacedReader reads a JSON member's frames at about one message per pace,
// as a client that does some work per message would, and checks that the
// messages marked "seq:N:" come in order, once each, until it has n.
func pacedReader(r *rawConn, n int, pace time.Duration) error {
	start := time.Now()
	next := 0
	for next < n {
		op, b, err := r.readFrame()
		if err != nil {
			return fmt.Errorf("after %d messages: %w", next, err)
		}
		if op == 8 {
			return fmt.Errorf("closed after %d messages: %q", next, b)
		}
		for _, line := range bytes.Split(b, []byte("\n")) {
			_, rest, ok := bytes.Cut(line, []byte(`"text":"seq:`))
			if !ok {
				continue
			}
			num, _, _ := bytes.Cut(rest, []byte(":"))
			if got, err := strconv.Atoi(string(num)); err != nil || got != next {
				return fmt.Errorf("message %d out of order: got %q", next, num)
			}
			next++
		}
		if wait := time.Until(start.Add(time.Duration(next) * pace)); wait > 0 {
			time.Sleep(wait) // pacing the reader, not waiting for anything
		}
	}
	return nil
}

// TestBurstSlowsThePublisher: one sender with the rate limit off pushes
// 5,000 messages of 2 KB at once into a room of readers that keep reading,
// each at about 5,000 messages a second once they start: the burst outruns
// everyone. The
// readers are not at fault: the sender is slowed (its socket is not read
// while most of the room is behind), and every reader, the sender included,
// gets all 5,000 in order. A member that stops reading is still closed as
// too slow, alone.
func TestBurstSlowsThePublisher(t *testing.T) {
	for _, stalled := range []bool{false, true} {
		t.Run(fmt.Sprintf("stalled=%v", stalled), func(t *testing.T) {
			// Under the race detector the server is slower than these
			// readers: nothing is outrun, and only correctness is checked
			// (make test runs this test without it too).
			n, pace := 5000, 200*time.Microsecond
			if raceEnabled {
				n = 1000
			}
			l := newLeaves()
			// Queues big enough (3,000 of these messages, where the
			// default 4 MiB holds 2,000) that a reader the scheduler holds
			// back a moment is not taken for one that fell behind the
			// others, and small enough that the stalled member passes them
			// (what the kernel's socket buffers hold is not queued).
			e := newEnv(t, &wsroom.Options{RateLimit: -1, WelcomeHistory: -1, SendQueue: 4096, SendQueueBytes: 6 << 20, Hooks: wsroom.Hooks{OnLeave: l.hook}})
			join := func(name string, recvBuf int) *rawConn {
				r := e.rawDial("/chat/burst", wsroom.Subprotocol, recvBuf)
				r.writeFrame(true, 1, fmt.Appendf(nil, `{"type":"join","name":%q}`, name))
				if recvBuf == 0 {
					_, _, err := r.readFrame() // the welcome
					assert.Success(t, err)
				}
				return r
			}
			var readers []*rawConn
			for i := range 4 {
				readers = append(readers, join(fmt.Sprint("reader", i), 0))
			}
			sender := join("sender", 0)
			members := int64(5)
			if stalled {
				join("stalled", 4096) // never reads
				members++
			}
			waitFor(t, "everyone joined", func() bool { return e.srv.Stats().Members == members })
			// Reading starts once the arrivals are behind us, and once the
			// publisher has been held back (at most 3s later): then the
			// burst has outrun the readers whatever the machine's speed.
			// (Reading at once, they once kept up on a slow machine, and
			// nothing was slowed.) Under the race detector they start at
			// once.
			throttled := make(chan struct{})
			go func() {
				defer close(throttled)
				if raceEnabled {
					return
				}
				ctx, cancel := context.WithTimeout(testContext(t), 3*time.Second)
				defer cancel()
				for e.srv.Stats().Throttled == 0 {
					select {
					case <-ctx.Done():
						return
					case <-time.After(time.Millisecond):
					}
				}
			}()
			errs := make(chan error, 5)
			var wg sync.WaitGroup
			for _, r := range append(readers, sender) {
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-throttled
					errs <- pacedReader(r, n, pace)
				}()
			}
			text := strings.Repeat("x", 2000)
			for i := range n {
				if err := sender.tryWriteFrame(true, 1, fmt.Appendf(nil, `{"type":"message","text":"seq:%d:%s"}`, i, text)); err != nil {
					t.Fatalf("sending %d: %v; left: %+v", i, err, l.all())
				}
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				assert.Success(t, err)
			}
			st := e.srv.Stats()
			t.Logf("the publisher waited for the room %d times; slow drops %d", st.Throttled, st.Slow)
			for _, ev := range l.all() {
				assert.Equal(t, "only the stalled member may leave", "stalled", ev.Name)
				assert.Equal(t, "why", wsroom.ReasonSlow, ev.Reason)
			}
			if raceEnabled {
				return
			}
			if stalled {
				assert.Equal(t, "the stalled member left", 1, len(l.all()))
			}
			assert.True(t, "the publisher was slowed", st.Throttled > 0)
		})
	}
}
