package faults_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// leaves records why each member left, from the OnLeave hook.
type leaves struct {
	mu sync.Mutex
	by map[string]wsroom.LeaveEvent
}

func (l *leaves) hook(ctx context.Context, e wsroom.LeaveEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.by[e.Room+"/"+e.Name] = e
}

func (l *leaves) of(room, name string) (wsroom.LeaveEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.by[room+"/"+name]
	return e, ok
}

// The heartbeat of the vanish tests: a peer that stops answering is gone
// within PingInterval + PongTimeout.
const (
	pingInterval = 250 * time.Millisecond
	pongTimeout  = 1500 * time.Millisecond
	// slack is what a loaded 2-core machine under -race may add.
	slack = 3 * time.Second
)

// TestPeerVanishes: a member whose peer disappears without a close frame
// (its connection closed or reset, or its traffic blackholed one way or
// both, the sockets left open: a half-open connection) leaves, announced
// to the room once, within the heartbeat's timeout; the reason is closed
// (1006) when the TCP connection ended, timeout when it went silent.
func TestPeerVanishes(t *testing.T) {
	t.Parallel()
	l := &leaves{by: map[string]wsroom.LeaveEvent{}}
	e := newEnv(t, wsroom.Options{PingInterval: pingInterval, PongTimeout: pongTimeout, Hooks: wsroom.Hooks{OnLeave: l.hook}})
	for _, tc := range []struct {
		name     string
		vanish   func(p *proxy)
		reason   wsroom.LeaveReason
		code     int
		boundary time.Duration
	}{
		{"closed without a close frame", func(p *proxy) { p.cut(false) }, wsroom.ReasonClosed, 1006, slack},
		{"reset", func(p *proxy) { p.cut(true) }, wsroom.ReasonClosed, 1006, slack},
		{"blackholed", func(p *proxy) { p.blackhole(true, true) }, wsroom.ReasonTimeout, 1006, pingInterval + pongTimeout + slack},
		{"half-open, nothing reaches the server", func(p *proxy) { p.blackhole(true, false) }, wsroom.ReasonTimeout, 1006, pingInterval + pongTimeout + slack},
		{"half-open, nothing reaches the client", func(p *proxy) { p.blackhole(false, true) }, wsroom.ReasonTimeout, 1006, pingInterval + pongTimeout + slack},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 30*time.Second)
			room := "vanish-" + tc.name
			watcher := e.join(ctx, room, "watcher")
			p := newProxy(t, e.addr())
			ghost, err := joinURL(ctx, "ws://"+p.addr()+"/chat/"+room, "ghost", "")
			if err != nil {
				t.Fatal(err)
			}
			defer ghost.close()
			if ev, err := watcher.next(ctx, "join"); err != nil || ev.Name != "ghost" {
				t.Fatalf("watcher: %+v %v", ev, err)
			}
			// Traffic flows until the peer vanishes: a message goes through.
			if err := ghost.say(ctx, "still here"); err != nil {
				t.Fatal(err)
			}
			if ev, err := watcher.next(ctx, "message"); err != nil || ev.Text != "still here" {
				t.Fatalf("watcher: %+v %v", ev, err)
			}

			start := time.Now()
			tc.vanish(p)
			ev, err := watcher.next(ctx, "leave")
			took := time.Since(start)
			if err != nil || ev.Name != "ghost" {
				t.Fatalf("watcher: %+v %v", ev, err)
			}
			t.Logf("leave announced %v after the peer vanished", took.Round(time.Millisecond))
			if took > tc.boundary {
				t.Errorf("leave announced after %v, want within %v", took, tc.boundary)
			}
			waitFor(ctx, t, "OnLeave", func() bool { _, ok := l.of(room, "ghost"); return ok })
			le, _ := l.of(room, "ghost")
			if le.Reason != tc.reason || le.Code != tc.code {
				t.Errorf("OnLeave: reason %v code %d, want %v %d (err %v)", le.Reason, le.Code, tc.reason, tc.code, le.Err)
			}
			// Announced once: the next event the watcher sees is its own
			// message, not a second leave.
			if err := watcher.say(ctx, "after"); err != nil {
				t.Fatal(err)
			}
			if ev, err := watcher.next(ctx, "leave", "message"); err != nil || ev.Type != "message" {
				t.Fatalf("after the leave: %+v %v", ev, err)
			}
		})
	}
}

// TestEchoPeerVanishes: an echo connection, which belongs to no room, is
// dropped by the heartbeat too when its peer goes silent.
func TestEchoPeerVanishes(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	e := newEnv(t, wsroom.Options{PingInterval: pingInterval, PongTimeout: pongTimeout})
	p := newProxy(t, e.addr())
	c, _, err := websocket.Dial(ctx, "ws://"+p.addr()+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("hi")); err != nil {
		t.Fatal(err)
	}
	if _, b, err := c.Read(ctx); err != nil || string(b) != "hi" {
		t.Fatalf("echo: %q %v", b, err)
	}
	start := time.Now()
	p.blackhole(true, true)
	waitFor(ctx, t, "the echo connection to be dropped", func() bool { return e.srv.Stats().Connections == 0 })
	took := time.Since(start)
	t.Logf("echo connection dropped %v after its peer went silent", took.Round(time.Millisecond))
	if took > pingInterval+pongTimeout+slack {
		t.Errorf("dropped after %v, want within %v", took, pingInterval+pongTimeout+slack)
	}
}
