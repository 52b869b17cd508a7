package wsroom_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// leaveCase is one way for a member to go: what the client does, the close
// code it should see, and what OnLeave should say.
type leaveCase struct {
	name     string
	opts     wsroom.Options
	act      func(t *testing.T, e *env, victim *client, raw *rawConn)
	raw      bool // the victim is a rawConn (for what a real client will not do)
	recvBuf  int  // the raw victim's receive buffer
	sendBuf  int  // the server's send buffer for every connection
	wantCode int  // close code seen by the victim; 0: don't check
	rawCode  int  // close code seen by a raw victim (-1: none); 0: don't check
	reason   wsroom.LeaveReason
	hookCode int
}

func TestLeaveCauses(t *testing.T) {
	t.Parallel()
	cases := []leaveCase{
		{
			name: "close frame",
			act: func(t *testing.T, e *env, v *client, _ *rawConn) {
				assert.Success(t, v.c.Close(4000, "done"))
			},
			reason: wsroom.ReasonClosed, hookCode: 4000,
		},
		{
			name: "tcp drop",
			raw:  true,
			act: func(t *testing.T, e *env, _ *client, r *rawConn) {
				assert.Success(t, r.nc.Close())
			},
			reason: wsroom.ReasonClosed, hookCode: 1006,
		},
		{
			name: "message too big",
			opts: wsroom.Options{MaxMessageBytes: 100},
			act: func(t *testing.T, e *env, v *client, _ *rawConn) {
				v.sendText(`{"type":"message","text":"` + strings.Repeat("x", 200) + `"}`)
			},
			wantCode: 1009, reason: wsroom.ReasonPolicy, hookCode: 1009,
		},
		{
			name: "invalid utf-8",
			act: func(t *testing.T, e *env, v *client, _ *rawConn) {
				v.sendText("{\"type\":\"message\",\"text\":\"\xff\xfe\"}")
			},
			wantCode: 1007, reason: wsroom.ReasonPolicy, hookCode: 1007,
		},
		{
			name: "sustained rate",
			opts: wsroom.Options{RateLimit: 1, RateBurst: 3},
			act: func(t *testing.T, e *env, v *client, _ *rawConn) {
				for i := range 10 {
					if v.c.Write(context.Background(), websocket.MessageText, []byte(`{"type":"message","text":"spam"}`)) != nil {
						return
					}
					_ = i
				}
			},
			wantCode: 1008, reason: wsroom.ReasonPolicy, hookCode: 1008,
		},
		{
			name: "binary refused",
			opts: wsroom.Options{NoBinary: true},
			act: func(t *testing.T, e *env, v *client, _ *rawConn) {
				assert.Success(t, v.c.Write(testContext(t), websocket.MessageBinary, []byte{1, 2, 3}))
			},
			wantCode: 1003, reason: wsroom.ReasonPolicy, hookCode: 1003,
		},
		{
			name: "removed",
			act: func(t *testing.T, e *env, v *client, _ *rawConn) {
				assert.Success(t, e.srv.Room("r").Remove(testContext(t), "victim", "be nice"))
			},
			wantCode: 1008, reason: wsroom.ReasonRemoved, hookCode: 1008,
		},
		{
			name:   "no pong",
			raw:    true,
			opts:   wsroom.Options{PingInterval: 20 * time.Millisecond, PongTimeout: time.Second},
			act:    func(t *testing.T, e *env, _ *client, r *rawConn) {}, // the raw client never reads, so never answers
			reason: wsroom.ReasonTimeout, hookCode: 1006, rawCode: -1,
		},
		{
			name:    "too slow",
			raw:     true,
			recvBuf: 4096,
			sendBuf: 4096,
			opts:    wsroom.Options{SendQueue: 8, RateLimit: -1, MaxMessageBytes: 64 << 10},
			act: func(t *testing.T, e *env, _ *client, r *rawConn) {
				// The victim reads nothing while the room is flooded.
				big := strings.Repeat("x", 30000)
				for i := 0; i < 2000 && e.srv.Stats().Slow == 0; i++ {
					_, err := e.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: big}, wsroom.Except("watcher"))
					assert.Success(t, err)
				}
			},
			reason: wsroom.ReasonSlow, hookCode: 1013, rawCode: 1013,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			l := newLeaves()
			opts := tc.opts
			opts.Hooks.OnLeave = l.hook
			var wrap func(net.Listener) net.Listener
			if tc.sendBuf > 0 {
				wrap = func(ln net.Listener) net.Listener { return smallSendBuf{ln, tc.sendBuf} }
			}
			e := newEnvListener(t, &opts, wrap)
			watcher, _ := e.join("r", "watcher")
			var v *client
			var raw *rawConn
			if tc.raw {
				raw = e.rawDial("/chat/r", wsroom.Subprotocol, tc.recvBuf)
				raw.writeFrame(true, 1, []byte(`{"type":"join","name":"victim"}`))
			} else {
				v, _ = e.join("r", "victim")
			}
			assert.Equal(t, "join", "victim", watcher.expect("join").Name)

			tc.act(t, e, v, raw)

			ev := l.wait(t)
			assert.Equal(t, "leaver", "victim", ev.Name)
			assert.Equal(t, "reason", tc.reason, ev.Reason)
			assert.Equal(t, "hook code", tc.hookCode, ev.Code)
			if tc.wantCode != 0 {
				assert.Equal(t, "close code seen by the client", websocket.StatusCode(tc.wantCode), v.closed())
			}
			if tc.rawCode != 0 {
				// The victim reads again: what was in flight, then the close.
				assert.Equal(t, "close code seen by the raw client", tc.rawCode, raw.closeCode())
			}
			// The others see the leave exactly once: a marker sent after it
			// comes next, with nothing in between but messages.
			assert.Equal(t, "leave", "victim", watcher.until("leave").Name)
			watcher.say("marker")
			for {
				ev := watcher.expect("message")
				if ev.Text == "marker" {
					break
				}
			}
			assert.Equal(t, "OnLeave calls", 1, len(l.all()))
		})
	}
}

// smallSendBuf shrinks the send buffer of accepted connections, so that a
// client that stops reading stalls the server's writes quickly.
type smallSendBuf struct {
	net.Listener
	size int
}

func (l smallSendBuf) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		c.(*net.TCPConn).SetWriteBuffer(l.size)
	}
	return c, err
}

func TestRateLimitedFrameIsDroppedWithError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: 0.001, RateBurst: 2})
	c, _ := e.join("r", "alice") // the join took one token
	c.say("one")
	assert.Equal(t, "within burst", "one", c.expect("message").Text)
	c.say("two")
	ev := c.expect("error")
	assert.Equal(t, "code", "rate_limited", ev.Code)
}

func TestJoinTimeout(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{JoinTimeout: 50 * time.Millisecond})
	c := e.dial("/chat/r", true)
	assert.Equal(t, "close code", websocket.StatusPolicyViolation, c.closed())
}

func TestRoomFull(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{MaxMembers: 2})
	e.join("r", "a")
	e.join("r", "b")
	c := e.dial("/chat/r", true)
	c.send(map[string]any{"type": "join", "name": "c"})
	assert.Equal(t, "code", "room_full", c.expect("error").Code)
	// Another room is not full.
	_, w := e.join("other", "c")
	assert.Equal(t, "other room", "c", w.Name)
}

func TestShutdown(t *testing.T) {
	t.Parallel()
	l := newLeaves()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{OnLeave: l.hook}})
	a, _ := e.join("r", "alice")
	b, _ := e.join("r", "bob")
	echo := e.dial("/echo", false)
	pending := e.dial("/chat/r", true) // connected, never joined
	a.expect("join")

	assert.Success(t, e.srv.Shutdown(testContext(t)))
	for _, c := range []*client{a, b, echo, pending} {
		assert.Equal(t, "close code", websocket.StatusGoingAway, c.closed())
	}
	// Departures during shutdown are not announced: alice got no leave
	// before her close frame (closed() would have skipped it, so look at
	// what was pending).
	for _, ev := range a.pending {
		assert.True(t, "no leave during shutdown", ev.Type != "leave")
	}
	got := map[string]wsroom.LeaveReason{}
	for _, ev := range l.all() {
		got[ev.Name] = ev.Reason
	}
	assert.Equal(t, "OnLeave", map[string]wsroom.LeaveReason{"alice": wsroom.ReasonShutdown, "bob": wsroom.ReasonShutdown}, got)
	assert.Equal(t, "stats", wsroom.Stats{}, zeroCounters(e.srv.Stats()))

	// New connections are refused; Shutdown is idempotent.
	_, err := e.dialErr("/chat/r", true, nil)
	assert.True(t, "refused after shutdown", err != nil && strings.Contains(err.Error(), "503"))
	assert.Success(t, e.srv.Shutdown(testContext(t)))
	_, err = e.srv.Room("r").Broadcast(testContext(t), wsroom.Message{Text: "x"})
	assert.ErrorIs(t, wsroom.ErrShutdown, err)
}

// zeroCounters keeps the gauges of s and zeroes the cumulative counters.
func zeroCounters(s wsroom.Stats) wsroom.Stats {
	return wsroom.Stats{Connections: s.Connections, Members: s.Members, Rooms: s.Rooms}
}

func TestShutdownTimesOut(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{
		OnLeave: func(ctx context.Context, _ wsroom.LeaveEvent) { <-release },
	}})
	e.join("r", "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	assert.ErrorIs(t, context.DeadlineExceeded, err)
	close(release)
	assert.Success(t, e.srv.Shutdown(testContext(t)))
}

func TestManyMembersNoneDropped(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: -1})
	const n, msgs = 40, 200
	cs := make([]*client, n)
	for i := range n {
		cs[i], _ = e.join("r", fmt.Sprint("m", i))
	}
	sender := cs[0]
	for i := range msgs {
		sender.say(fmt.Sprint(i))
	}
	for i, c := range cs {
		k := 0
		for k < msgs {
			ev, err := c.next()
			assert.Success(t, err)
			if ev.Type == "message" {
				assert.Equal(t, fmt.Sprint("member ", i, " message"), fmt.Sprint(k), ev.Text)
				k++
			}
		}
	}
	assert.Equal(t, "nobody dropped", int64(0), e.srv.Stats().Slow)
	// Queued events were batched: fewer frames than events.
	s := e.srv.Stats()
	assert.True(t, fmt.Sprintf("batched: %d frames for %d deliveries", s.FramesOut, s.Deliveries), s.FramesOut < s.Deliveries)
}

// TestTooBigAtTheHeader: a client that announces a message over the limit
// and sends only part of it is closed with 1009 at once, not held until
// the heartbeat drops it.
func TestTooBigAtTheHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil) // 32 KiB text, 1 MiB binary
	for _, tc := range []struct {
		path string
		op   byte
		n    int
	}{
		{"/echo", 2, 8 << 20},
		{"/echo", 1, 64 << 10},
		{"/chat/big", 2, 8 << 20},
		{"/chat/big", 1, 1 << 20},
	} {
		r := e.rawDial(tc.path, "", 0)
		head := []byte{0x80 | tc.op, 0x80 | 127}
		head = binary.BigEndian.AppendUint64(head, uint64(tc.n))
		head = append(head, 1, 2, 3, 4)
		_, err := r.nc.Write(append(head, make([]byte, 1024)...))
		assert.Success(t, err)
		start := time.Now()
		assert.Equal(t, fmt.Sprintf("%s: %d bytes announced", tc.path, tc.n), 1009, r.closeCode())
		assert.True(t, "within a second", time.Since(start) < time.Second)
	}
}

// TestPingFlood: pings are limited apart from frames: a client that floods
// pings gets a burst of pongs, then none, then 1008, for echo and chat
// alike; a connection that pings now and then is answered every time.
func TestPingFlood(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	for _, path := range []string{"/echo", "/chat/pings"} {
		r := e.rawDial(path, "", 0)
		for i := range 200 {
			if r.tryWriteFrame(true, 9, []byte(fmt.Sprint(i))) != nil {
				break // closed
			}
		}
		pongs := 0
		code := -1
		for {
			op, p, err := r.readFrame()
			if err != nil {
				break
			}
			if op == 10 {
				pongs++
			}
			if op == 8 && len(p) >= 2 {
				code = int(binary.BigEndian.Uint16(p))
				break
			}
		}
		assert.Equal(t, path+": closed for the flood", 1008, code)
		assert.True(t, fmt.Sprintf("%s: %d pongs, at most about a burst", path, pongs), pongs <= 25)
	}
	// A client that pings once in a while gets every pong.
	c := e.dial("/echo", false)
	for range 5 {
		assert.Success(t, c.c.Ping(testContext(t)))
	}
}
