// Package leakcheck fails a test binary that leaves goroutines behind.
package leakcheck

import (
	"bytes"
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// Main runs the tests and then checks, for up to five seconds, that no
// goroutine is left but the main one (and the runtime's signal handler,
// which the fuzzing engine starts for good). Use it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Wait(5 * time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Wait waits until no goroutine is left but the caller's, or fails with
// the stacks of those left.
func Wait(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := others()
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak: %d goroutines left:\n\n%s", len(left), bytes.Join(left, []byte("\n\n")))
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline above
	}
}

// others returns the stacks of the goroutines other than the caller's and
// the runtime's own.
func others() [][]byte {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var left [][]byte
	for i, g := range bytes.Split(buf, []byte("\n\n")) {
		if i == 0 || bytes.Contains(g, []byte("os/signal.signal_recv")) {
			continue // the caller; the signal handler
		}
		left = append(left, g)
	}
	return left
}
