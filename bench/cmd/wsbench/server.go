package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"wsroom.dev/bench/internal/loadgen"
)

// binaries are the servers, built once.
type binaries struct {
	dir    string
	wsroom string // path, or "" if not built
	peer   string
	errs   map[string]error // why a binary could not be built
}

// build compiles wsroom's chat example and, if any peer is wanted, the
// peer server. The peer server builds from the bench module directory (so
// that wsroom.dev resolves through its replace directive); the chat
// example from its own module when it has one (examples/chat/go.mod), else
// as a package of wsroom.dev from the bench module.
func build(ctx context.Context, impls []string) (*binaries, error) {
	mod, err := moduleDir()
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	dir, err := os.MkdirTemp("", "wsbench-")
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b := &binaries{dir: dir, errs: make(map[string]error)}
	needPeer, needWsroom := false, false
	for _, impl := range impls {
		if impl == "wsroom" {
			needWsroom = true
		} else {
			needPeer = true
		}
	}
	gobuild := func(dir, out, pkg string) error {
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir = dir
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go build %s: %w: %s", pkg, err, strings.TrimSpace(stderr.String()))
		}
		return nil
	}
	if needWsroom {
		out := filepath.Join(dir, "wsroom")
		chatDir, pkg := mod, "wsroom.dev/examples/chat"
		if own := filepath.Join(filepath.Dir(mod), "examples", "chat"); fileExists(filepath.Join(own, "go.mod")) {
			chatDir, pkg = own, "."
		}
		if err := gobuild(chatDir, out, pkg); err != nil {
			b.errs["wsroom"] = err
		} else {
			b.wsroom = out
		}
	}
	if needPeer {
		out := filepath.Join(dir, "peerserver")
		if err := gobuild(mod, out, "./cmd/peerserver"); err != nil {
			b.errs["peer"] = err
		} else {
			b.peer = out
		}
	}
	return b, nil
}

func (b *binaries) remove() { os.RemoveAll(b.dir) }

func fileExists(name string) bool {
	_, err := os.Stat(name)
	return err == nil
}

// moduleDir is the bench module's directory: the working directory when
// run as `go run ./cmd/wsbench` from it, else found above it (or in a
// bench directory above it).
func moduleDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("module dir: %w", err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		for _, c := range []string{d, filepath.Join(d, "bench")} {
			b, err := os.ReadFile(filepath.Join(c, "go.mod"))
			if err == nil && bytes.HasPrefix(b, []byte("module wsroom.dev/bench\n")) {
				return c, nil
			}
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("module dir: no wsroom.dev/bench module at or above %s", wd)
		}
	}
}

// server is one running server process.
type server struct {
	impl   string
	url    string
	cmd    *exec.Cmd
	out    *tailBuffer
	exited chan struct{} // closed when the process has been waited for
	err    error         // its exit status, once exited is closed

	stopOnce sync.Once
	stopped  bool // Stop was called before the process exited
}

// start runs a fresh server for impl, with flags added to wsroom's
// command line, on a free loopback port and waits until its /debug/mem
// answers.
func (b *binaries) start(ctx context.Context, impl string, flags ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	switch impl {
	case "wsroom":
		if b.wsroom == "" {
			return nil, fmt.Errorf("start wsroom: %w", b.errs["wsroom"])
		}
		cmd = exec.Command(b.wsroom, append([]string{"-addr", addr, "-unlimited", "-debug", "-log-level", "ERROR"}, flags...)...)
	default:
		if len(flags) > 0 {
			return nil, fmt.Errorf("start %s: flags %q are wsroom's", impl, flags)
		}
		if b.peer == "" {
			return nil, fmt.Errorf("start %s: %w", impl, b.errs["peer"])
		}
		cmd = exec.Command(b.peer, "-impl", impl, "-addr", addr)
	}
	s := &server{impl: impl, url: "http://" + addr, cmd: cmd, out: &tailBuffer{max: 4096}, exited: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = s.out, s.out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", impl, err)
	}
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	if err := s.waitReady(ctx, 15*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("start %s: %w", impl, err)
	}
	return s, nil
}

// waitReady polls /debug/mem.
func (s *server) waitReady(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/debug/mem", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("GET /debug/mem: %s", resp.Status)
		}
		select {
		case <-s.exited:
			return fmt.Errorf("exited (%v): %s", s.err, s.out.String())
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", timeout, err)
		case <-tick.C:
		}
	}
}

// stop sends SIGTERM, then SIGKILL after 5 s, and waits for the process.
// It is idempotent.
func (s *server) stop() {
	s.stopOnce.Do(func() {
		select {
		case <-s.exited:
			return // it died by itself
		default:
		}
		s.stopped = true
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(5 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	})
}

// crashed reports a process that exited before it was stopped.
func (s *server) crashed() error {
	select {
	case <-s.exited:
	default:
		return nil
	}
	if s.stopped {
		return nil
	}
	return fmt.Errorf("server exited during the run (%v): %s", s.err, s.out.String())
}

// cpu returns the process's CPU time: the sum of its threads' run time
// from /proc/PID/task/*/schedstat (ns), or utime+stime from /proc/PID/stat
// (clock ticks) where schedstat is missing.
func (s *server) cpu() (time.Duration, error) {
	return loadgen.ProcessCPU(s.cmd.Process.Pid)
}

// freeAddr returns a loopback address with a free port.
func freeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// raiseFileLimit sets the soft RLIMIT_NOFILE to the hard limit; the
// servers inherit it.
func raiseFileLimit() (uint64, error) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("getrlimit: %w", err)
	}
	lim.Cur = lim.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return 0, fmt.Errorf("setrlimit: %w", err)
	}
	return lim.Cur, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.b))
}
