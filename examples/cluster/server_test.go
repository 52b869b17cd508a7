package cluster

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// server is one examples/chat process, in a process group of its own.
type server struct {
	t      testing.TB
	name   string // A, B, C: for the logs
	cmd    *exec.Cmd
	http   string // http://127.0.0.1:port
	ws     string // ws://127.0.0.1:port
	logs   *logBuffer
	exited chan struct{} // closed once the process has exited
	err    error         // its exit status, once exited
	killed bool          // by kill9: no clean exit expected
}

// startServer starts examples/chat on a free loopback port with the given
// flags and waits for its "listening" line. The server is stopped with
// SIGTERM when the test ends, and must exit cleanly; its log is printed if
// the test failed.
func startServer(t testing.TB, bin, name string, args ...string) *server {
	t.Helper()
	s := &server{t: t, name: name, logs: &logBuffer{url: make(chan string, 1)}, exited: make(chan struct{})}
	s.cmd = exec.Command(bin, append([]string{"-addr", "127.0.0.1:0"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = s.logs, s.logs
	s.cmd.SysProcAttr = procAttr()
	if err := s.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		s.err = s.cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(s.stop)
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case u := <-s.logs.url:
		s.http = u
		s.ws = "ws" + strings.TrimPrefix(u, "http")
	case <-s.exited:
		t.Fatalf("server %s exited at start (%v):\n%s", name, s.err, s.logs)
	case <-timer.C:
		t.Fatalf("server %s did not listen within a minute:\n%s", name, s.logs)
	}
	return s
}

// kill9 kills the server's process group with SIGKILL, as a crash would,
// and waits for it.
func (s *server) kill9() {
	s.t.Helper()
	s.killed = true
	syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("server %s still running 10s after SIGKILL", s.name)
	}
}

// running reports whether the process is still alive.
func (s *server) running() bool {
	select {
	case <-s.exited:
		return false
	default:
		return true
	}
}

// stop shuts the server down with SIGTERM: it must exit with status 0
// within 20s (else its group is killed), with no data race nor panic in
// its log.
func (s *server) stop() {
	t := s.t
	if s.running() {
		syscall.Kill(-s.cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-s.exited:
			if s.err != nil {
				t.Errorf("server %s exited with %v after SIGTERM", s.name, s.err)
			}
		case <-time.After(20 * time.Second):
			syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.exited
			t.Errorf("server %s did not shut down within 20s of SIGTERM", s.name)
		}
	} else if !s.killed {
		t.Errorf("server %s had exited by itself: %v", s.name, s.err)
	}
	logs := s.logs.String()
	for _, bad := range []string{"WARNING: DATA RACE", "panic:", "fatal error:"} {
		if strings.Contains(logs, bad) {
			t.Errorf("server %s logged %q", s.name, bad)
		}
	}
	if t.Failed() {
		t.Logf("log of server %s (%s):\n%s", s.name, s.http, tail(logs, 12000))
	}
}

// echo checks that the server still serves: a text sent to /echo comes
// back.
func (s *server) echo(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, s.ws+"/echo", nil)
	if err != nil {
		return fmt.Errorf("server %s: echo: %w", s.name, err)
	}
	defer c.CloseNow()
	if err := c.Write(ctx, websocket.MessageText, []byte("ping?")); err != nil {
		return fmt.Errorf("server %s: echo: %w", s.name, err)
	}
	_, b, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("server %s: echo: %w", s.name, err)
	}
	if string(b) != "ping?" {
		return fmt.Errorf("server %s: echo answered %q", s.name, b)
	}
	c.Close(websocket.StatusNormalClosure, "")
	return nil
}

// alive fails the test unless the server runs and answers an echo.
func (s *server) alive(ctx context.Context) {
	s.t.Helper()
	if !s.running() {
		s.t.Fatalf("server %s exited: %v\n%s", s.name, s.err, tail(s.logs.String(), 4000))
	}
	if err := s.echo(ctx); err != nil {
		s.t.Fatal(err)
	}
}

// logBuffer keeps a server's log and reports the URL of its "listening"
// line.
type logBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	scan int // bytes of buf looked at for the URL
	url  chan string
	sent bool
}

var listening = regexp.MustCompile(`msg="chat: listening" url=(\S+)`)

func (l *logBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(b)
	for !l.sent {
		rest := l.buf.Bytes()[l.scan:]
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		l.scan += i + 1
		if m := listening.FindSubmatch(rest[:i]); m != nil {
			l.url <- string(m[1])
			l.sent = true
		}
	}
	return len(b), nil
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// count is how many lines of the log hold s.
func (l *logBuffer) count(s string) int { return strings.Count(l.String(), s) }

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
