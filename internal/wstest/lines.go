package wstest

import (
	"context"
	"strings"
	"testing"
)

// Lines is an io.Writer that hands each line written to it to the
// channel, for loggers whose output a test waits for. Make it with room
// for every line the test may log, make(Lines, 100): a line that does not
// fit is dropped, so that a logger never blocks. Write may be called from
// any goroutine.
type Lines chan string

// Write sends each line of p to the channel, without its newline, or
// drops it when the channel is full. It never fails.
func (l Lines) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		select {
		case l <- line:
		default:
		}
	}
	return len(p), nil
}

// Wait returns the first line that contains every one of subs, dropping
// the lines before it; it fails if ctx is done first.
func (l Lines) Wait(ctx context.Context, t testing.TB, subs ...string) string {
	t.Helper()
	for {
		select {
		case line := <-l:
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(line, s)
			}
			if ok {
				return line
			}
		case <-ctx.Done():
			t.Fatalf("no log line with %q", subs)
		}
	}
}
