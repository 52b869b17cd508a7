package wsroom

import (
	"context"
	"time"

	"github.com/coder/websocket"
)

// Pings a client may send: coder/websocket answers each with a pong inside
// its reader, before any rate limit sees a frame, so a flood of pings would
// spend the server's CPU and socket on pongs. A client that keeps a
// connection alive pings every few seconds at most.
const (
	pingRate  = 5  // per second, on average
	pingBurst = 20 // at once
)

// pingGuard bounds a connection's pings: over the rate, a ping goes
// unanswered; a whole burst more closes the connection with 1008. It is
// used on the connection's reading goroutine only.
type pingGuard struct {
	limiter rateLimiter
	c       *wsConn // set once the connection exists
}

// newPingGuard returns the guard of a new connection, or nil when the
// rate limit is off.
func newPingGuard(o *Options) *pingGuard {
	if o.RateLimit < 0 {
		return nil
	}
	return &pingGuard{limiter: newRateLimiter(pingRate, pingBurst)}
}

// onPing is the connection's websocket.AcceptOptions.OnPingReceived: it
// reports whether the ping gets its pong.
func (g *pingGuard) onPing(context.Context, []byte) bool {
	if g.limiter.allow(time.Now()) {
		return true
	}
	if c := g.c; c != nil {
		c.srv.refused("ping_flood")
		if g.limiter.sustained() {
			c.kill(ReasonPolicy, websocket.StatusPolicyViolation, "too many pings", nil)
		}
	}
	return false
}
