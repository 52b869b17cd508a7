package wsroom

import "time"

// rateLimiter is a token bucket for one connection's incoming frames. It is
// used only by the connection's reading goroutine.
type rateLimiter struct {
	rate    float64 // tokens per second; <= 0: unlimited
	burst   float64
	tokens  float64
	last    time.Time
	strikes int // frames refused in a row
}

func newRateLimiter(rate float64, burst int) rateLimiter {
	return rateLimiter{rate: rate, burst: float64(burst), tokens: float64(burst)}
}

// allow takes a token for a frame arriving at now.
func (l *rateLimiter) allow(now time.Time) bool {
	if l.rate <= 0 {
		return true
	}
	if !l.last.IsZero() {
		l.tokens = min(l.burst, l.tokens+now.Sub(l.last).Seconds()*l.rate)
	}
	l.last = now
	if l.tokens >= 1 {
		l.tokens--
		l.strikes = 0
		return true
	}
	l.strikes++
	return false
}

// charge takes cost more tokens for what a frame asked of the server (a
// page of history, say). The bucket may go below zero: the frames that
// follow wait until it refills.
func (l *rateLimiter) charge(cost float64) {
	if l.rate <= 0 || cost <= 0 {
		return
	}
	l.tokens -= cost
}

// sustained reports whether the connection kept sending over the limit for
// more than a whole burst of refused frames.
func (l *rateLimiter) sustained() bool {
	return l.rate > 0 && float64(l.strikes) > l.burst
}
