package faults_test

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildChat builds examples/chat into the test's temporary directory, with
// the race detector when the tests run with it.
func buildChat(t *testing.T) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "chat")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join("..", "..", "examples", "chat") // its own module
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build examples/chat: %v\n%s", err, out)
	}
	return bin
}

// chatProc is a running example chat server.
type chatProc struct {
	cmd      *exec.Cmd
	addr     string // 127.0.0.1:port
	logs     *logWriter
	exited   chan struct{}
	exitErr  error
	termOnce sync.Once
}

// startChat runs the example server with args (an -addr of 127.0.0.1:0
// unless args set one) until the test ends.
func startChat(t *testing.T, bin string, args ...string) *chatProc {
	t.Helper()
	if !strings.Contains(strings.Join(args, " "), "-addr") {
		args = append([]string{"-addr", "127.0.0.1:0"}, args...)
	}
	cmd := exec.Command(bin, args...)
	logs := &logWriter{url: make(chan string, 1)}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &chatProc{cmd: cmd, logs: logs, exited: make(chan struct{})}
	go func() {
		p.exitErr = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Kill() // if the test ended before the server
		<-p.exited
	})
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case u := <-logs.url:
		p.addr = strings.TrimPrefix(u, "http://")
	case <-p.exited:
		t.Fatalf("the chat server exited: %v\n%s", p.exitErr, logs)
	case <-timer.C:
		t.Fatalf("the chat server did not start within a minute:\n%s", logs)
	}
	return p
}

func (p *chatProc) terminate() {
	p.termOnce.Do(func() { p.cmd.Process.Signal(syscall.SIGTERM) })
}

// wait waits for the server to exit, for at most d, and returns its error.
func (p *chatProc) wait(t *testing.T, d time.Duration) error {
	t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-p.exited:
		return p.exitErr
	case <-timer.C:
		t.Fatalf("the chat server did not exit within %v:\n%s", d, p.logs)
		return nil
	}
}

// logWriter keeps the server's log and passes on the URL it listens on.
type logWriter struct {
	mu   sync.Mutex
	b    bytes.Buffer
	url  chan string
	sent bool
}

var listening = regexp.MustCompile(`url=(http://\S+)`)

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.b.Write(p)
	if !w.sent {
		if m := listening.FindSubmatch(w.b.Bytes()); m != nil {
			w.sent = true
			w.url <- string(m[1])
		}
	}
	return len(p), nil
}

func (w *logWriter) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}
