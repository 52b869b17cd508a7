package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"wsroom.dev/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// client is an independent WebSocket client run as a program.
type client struct {
	name  string
	argv  []string     // the server's ws:// URL is appended
	check func() error // why the client cannot run, or nil
}

var clients = []client{
	{"python", []string{"/usr/bin/python3", "python/client.py"}, pythonReady},
	{"node", []string{"node", "node/client.mjs"}, nodeReady},
}

// scenarios are the names every client must report "ok" for.
var scenarios = []string{"echo", "chat-json", "chat-plain", "flood"}

// The python3 on PATH may be a build without Debian's packages: the
// client runs under /usr/bin/python3.
func pythonReady() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := exec.CommandContext(ctx, "/usr/bin/python3", "-c", "import websockets").Run(); err != nil {
		return errors.New("python3-websockets is not installed for /usr/bin/python3: apt-get install -y python3-websockets")
	}
	return nil
}

func nodeReady() error {
	if _, err := exec.LookPath("node"); err != nil {
		return errors.New("node is not installed: apt-get install -y nodejs npm, then npm ci in internal/interop/node")
	}
	if _, err := os.Stat("node/node_modules/ws/package.json"); err != nil {
		return errors.New("internal/interop/node/node_modules is missing: run npm ci in internal/interop/node")
	}
	return nil
}

// TestInterop builds the example chat server and runs each client against
// a fresh instance of it.
func TestInterop(t *testing.T) {
	dir := t.TempDir()
	build := sync.OnceValues(func() (string, error) { return buildChat(dir) })
	for _, c := range clients {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if err := c.check(); err != nil {
				if os.Getenv("WSROOM_REQUIRE_INTEROP") == "1" {
					t.Fatalf("%v (WSROOM_REQUIRE_INTEROP=1)", err)
				}
				t.Skipf("%v (WSROOM_REQUIRE_INTEROP=1 makes this a failure)", err)
			}
			bin, err := build()
			if err != nil {
				t.Fatal(err)
			}
			runClient(t, bin, c)
		})
	}
}

// buildChat builds examples/chat into dir, with the race detector when
// the tests run with it.
func buildChat(dir string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	bin := filepath.Join(dir, "chat")
	args := []string{"build", "-o", bin}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, ".")
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = filepath.Join("..", "..", "examples", "chat") // its own module
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", errors.New("go build examples/chat: " + err.Error() + "\n" + string(out))
	}
	return bin, nil
}

// runClient runs one client against a fresh chat server: on the client's
// READY line the server gets SIGTERM, and it must exit cleanly.
func runClient(t *testing.T, bin string, c client) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	srv := startChat(ctx, t, bin)
	start := time.Now()
	cmd := exec.CommandContext(ctx, c.argv[0], append(c.argv[1:], srv.ws)...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ok := map[string]bool{}
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "READY":
			srv.terminate()
			t.Logf("%s: READY: SIGTERM to the server", c.name)
		case strings.HasPrefix(line, "ok "):
			name, _, _ := strings.Cut(strings.TrimPrefix(line, "ok "), ":")
			ok[name] = true
			t.Logf("%s: %s", c.name, line)
		case strings.HasPrefix(line, "FAIL "):
			t.Errorf("%s: %s", c.name, line)
		default:
			t.Logf("%s: %s", c.name, line)
		}
	}
	if err := cmd.Wait(); err != nil {
		t.Errorf("%s client: %v\n%s", c.name, err, stderr.String())
	}
	for _, s := range scenarios {
		if !ok[s] {
			t.Errorf("%s: no ok line for %s", c.name, s)
		}
	}
	srv.stop(t)
	t.Logf("%s: client and server done in %v", c.name, time.Since(start).Round(time.Millisecond))
}

// chat is a running example chat server.
type chat struct {
	cmd      *exec.Cmd
	ws       string // ws://127.0.0.1:port
	logs     *logWriter
	termOnce sync.Once
	waitOnce sync.Once
	waitErr  error
}

// startChat starts the server on a free port of 127.0.0.1, pinging every
// 100ms, without a rate limit (the clients flood it).
func startChat(ctx context.Context, t *testing.T, bin string) *chat {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, "-addr", "127.0.0.1:0", "-ping", "100ms", "-pong-timeout", "5s", "-rate", "-1")
	logs := &logWriter{url: make(chan string, 1)}
	cmd.Stderr = logs
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &chat{cmd: cmd, logs: logs}
	t.Cleanup(func() {
		cmd.Process.Kill() // when the test failed before stop
		s.wait()
	})
	timer := time.NewTimer(time.Minute)
	defer timer.Stop()
	select {
	case u := <-logs.url:
		s.ws = "ws" + strings.TrimPrefix(u, "http")
	case <-timer.C:
		t.Fatalf("the chat server did not start within a minute:\n%s", logs)
	}
	return s
}

func (s *chat) terminate() {
	s.termOnce.Do(func() { s.cmd.Process.Signal(syscall.SIGTERM) })
}

func (s *chat) wait() error {
	s.waitOnce.Do(func() { s.waitErr = s.cmd.Wait() })
	return s.waitErr
}

// stop sends SIGTERM (if the client's READY did not) and checks that the
// server shut down gracefully: exit status 0, and no data race reported
// by a -race build.
func (s *chat) stop(t *testing.T) {
	s.terminate()
	if err := s.wait(); err != nil {
		t.Errorf("chat server: %v\n%s", err, s.logs)
	}
	if logs := s.logs.String(); strings.Contains(logs, "DATA RACE") || strings.Contains(logs, "level=ERROR") {
		t.Errorf("chat server logged a race or an error:\n%s", logs)
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
