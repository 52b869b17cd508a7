package browser

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// buildChat builds examples/chat into the test's temporary directory.
func buildChat(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "chat")
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build examples/chat: %v", err)
	}
	cmd := exec.Command(goTool, "build", "-o", bin, ".")
	cmd.Dir = filepath.Join(repoRoot(t), "examples", "chat") // its own module
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./examples/chat: %v\n%s", err, out)
	}
	return bin
}

// chatServer is examples/chat running as a subprocess on 127.0.0.1, so
// that a test can stop it (SIGINT, as an operator would) and start it
// again on the same address.
type chatServer struct {
	t    *testing.T
	bin  string
	args []string
	addr string

	cmd    *exec.Cmd
	exited chan struct{}
	logs   *lineLog
}

// startChat starts examples/chat with the given flags (besides -addr) on a
// free loopback port, for the test.
func (e *env) startChat(t *testing.T, args ...string) *chatServer {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	s := &chatServer{t: t, bin: e.bin, args: args, addr: addr}
	s.start()
	t.Cleanup(s.stop)
	return s
}

// URL is the server's base URL, http://127.0.0.1:PORT.
func (s *chatServer) URL() string { return "http://" + s.addr }

// WS is the server's base WebSocket URL.
func (s *chatServer) WS() string { return "ws://" + s.addr }

// start starts the server and waits until it listens.
func (s *chatServer) start() {
	s.t.Helper()
	s.logs = &lineLog{ready: make(chan struct{})}
	s.cmd = exec.Command(s.bin, append([]string{"-addr", s.addr}, s.args...)...)
	s.cmd.Stdout = s.logs
	s.cmd.Stderr = s.logs
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting examples/chat: %v", err)
	}
	exited := make(chan struct{})
	s.exited = exited
	cmd := s.cmd
	go func() {
		cmd.Wait()
		close(exited)
	}()
	select {
	case <-s.logs.ready:
	case <-exited:
		s.t.Fatalf("examples/chat exited before listening:\n%s", s.logs)
	case <-time.After(20 * time.Second):
		s.stop()
		s.t.Fatalf("examples/chat did not listen within 20s:\n%s", s.logs)
	}
}

// stop stops the server as SIGINT does (graceful shutdown: 1001 to every
// member) and waits for it to exit; a server that does not exit in 20s is
// killed and the test fails.
func (s *chatServer) stop() {
	if s.cmd == nil {
		return
	}
	cmd, exited := s.cmd, s.exited
	s.cmd = nil
	cmd.Process.Signal(os.Interrupt)
	select {
	case <-exited:
	case <-time.After(20 * time.Second):
		cmd.Process.Kill()
		<-exited
		s.t.Errorf("examples/chat did not exit within 20s of SIGINT:\n%s", s.logs)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		s.t.Errorf("examples/chat exited with %d:\n%s", code, s.logs)
	}
}

// lineLog keeps a subprocess's output and signals when it listens.
type lineLog struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	ready chan struct{}
	once  sync.Once
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if strings.Contains(l.buf.String(), "chat: listening") {
		l.once.Do(func() { close(l.ready) })
	}
	return len(p), nil
}

func (l *lineLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}
