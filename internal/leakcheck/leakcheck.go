// Package leakcheck fails a test binary that leaves goroutines behind.
package leakcheck

import (
	"fmt"
	"os"
	"runtime"
	"testing"
	"time"
)

// Main runs the tests and then checks, for up to five seconds, that only
// the main goroutine is left. Use it from TestMain:
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
func Main(m *testing.M) {
	code := m.Run()
	if code == 0 {
		if err := Wait(1, 5*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			code = 1
		}
	}
	os.Exit(code)
}

// Wait waits until at most n goroutines run, or fails with their stacks.
func Wait(n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for runtime.NumGoroutine() > n {
		if time.Now().After(deadline) {
			return fmt.Errorf("goroutine leak: %d goroutines left, want %d:\n%s", runtime.NumGoroutine(), n, stacks())
		}
		runtime.Gosched()
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline above
	}
	return nil
}

func stacks() []byte {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return buf[:n]
		}
		buf = make([]byte, 2*len(buf))
	}
}
