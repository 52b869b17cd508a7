package wsroomnats

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"wsroom.dev/internal/leakcheck"
)

// Why the shared NATS server, or the nats-server binary for the private
// servers of the fault tests, is missing ("" if it is not).
var (
	natsMissing   string
	serverMissing string
)

func TestMain(m *testing.M) {
	natsMissing, serverMissing = probeNATS(), probeServer()
	if os.Getenv("WSROOM_REQUIRE_BACKENDS") != "1" {
		if natsMissing != "" {
			fmt.Fprintln(os.Stderr, "wsroomnats: skipping the tests on the shared server: "+natsMissing)
		}
		if serverMissing != "" {
			fmt.Fprintln(os.Stderr, "wsroomnats: skipping the fault tests: "+serverMissing)
		}
	}
	leakcheck.Main(m)
}

// natsURL is the shared NATS server of the backend tests.
func natsURL() string {
	if u := os.Getenv("WSROOM_NATS_URL"); u != "" {
		return u
	}
	return "nats://127.0.0.1:4222"
}

func probeNATS() string {
	nc, err := nats.Connect(natsURL(), nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return fmt.Sprintf("nats not reachable at %s (%v): start nats-server -a 127.0.0.1 -p 4222 (or set WSROOM_NATS_URL) to run these tests", natsURL(), err)
	}
	nc.Close()
	return ""
}

// serverBin is the nats-server that the fault tests start.
func serverBin() string {
	if bin := os.Getenv("WSROOM_NATS_SERVER"); bin != "" {
		return bin
	}
	if p, err := exec.LookPath("nats-server"); err == nil {
		return p
	}
	return "/usr/sbin/nats-server"
}

func probeServer() string {
	if _, err := os.Stat(serverBin()); err != nil {
		return fmt.Sprintf("nats-server not found at %s: install nats-server (or set WSROOM_NATS_SERVER) to run the fault tests", serverBin())
	}
	return ""
}

// requireBackend skips the test, or fails it under
// WSROOM_REQUIRE_BACKENDS=1, when why is not empty.
func requireBackend(t testing.TB, why string) {
	t.Helper()
	if why == "" {
		return
	}
	if os.Getenv("WSROOM_REQUIRE_BACKENDS") == "1" {
		t.Fatalf("%s (WSROOM_REQUIRE_BACKENDS=1)", why)
	}
	t.Skip("backend missing (see the line printed above the tests)")
}

// requireNATS skips or fails the test when the shared server is missing.
func requireNATS(t testing.TB) {
	t.Helper()
	requireBackend(t, natsMissing)
}

// testCtx is bounded: every wait of a test is.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// testLogger writes the broker's log into the test's output until the
// test's cleanups are done (nats.go calls back on its own goroutine, which
// may outlive the test by a moment).
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{out: t.Output()}
	t.Cleanup(w.stop) // first registered: runs after the brokers' Close
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type testWriter struct {
	mu   sync.Mutex
	out  io.Writer
	done bool
}

func (w *testWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return len(b), nil
	}
	return w.out.Write(b)
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// testDialer dials loopback TCP for nats.go and can break every connection
// it made: the server stays up, the client sees its connection drop.
type testDialer struct {
	mu    sync.Mutex
	conns []net.Conn
	dials int
}

func (d *testDialer) Dial(network, address string) (net.Conn, error) {
	d.mu.Lock()
	d.dials++
	d.mu.Unlock()
	c, err := (&net.Dialer{Timeout: 2 * time.Second}).Dial(network, address)
	if err != nil {
		return nil, err
	}
	d.mu.Lock()
	d.conns = append(d.conns, c)
	d.mu.Unlock()
	return c, nil
}

// kill closes every connection made so far.
func (d *testDialer) kill() {
	d.mu.Lock()
	conns := d.conns
	d.conns = nil
	d.mu.Unlock()
	for _, c := range conns {
		c.Close()
	}
}

func (d *testDialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dials
}

// open returns a Broker from OpenBroker on url, dialing through a
// testDialer, closed when the test ends.
func open(t testing.TB, url string, o *Options) (*Broker, *testDialer) {
	t.Helper()
	d := &testDialer{}
	var opts Options
	if o != nil {
		opts = *o
	}
	if opts.Logger == nil {
		opts.Logger = testLogger(t)
	}
	opts.NATSOptions = append(opts.NATSOptions, nats.SetCustomDialer(d))
	b, err := OpenBroker(testCtx(t), url, &opts)
	if err != nil {
		t.Fatalf("OpenBroker: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Logf("Close: %v", err)
		}
	})
	return b, d
}

// privateServer is a nats-server of the test's own, on a spare loopback
// port, that the test can kill and restart.
type privateServer struct {
	t    testing.TB
	bin  string
	args []string
	url  string
	cmd  *exec.Cmd
}

// startPrivate starts a nats-server with the given configuration file
// text (none if empty).
func startPrivate(t testing.TB, conf string) *privateServer {
	t.Helper()
	requireBackend(t, serverMissing)
	bin := serverBin()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	s := &privateServer{t: t, bin: bin, url: "nats://127.0.0.1:" + strconv.Itoa(port), args: []string{"-a", "127.0.0.1", "-p", strconv.Itoa(port)}}
	if conf != "" {
		f := t.TempDir() + "/nats.conf"
		if err := os.WriteFile(f, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		s.args = append(s.args, "-c", f)
	}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *privateServer) start() {
	s.t.Helper()
	s.cmd = exec.Command(s.bin, s.args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("start nats-server: %v", err)
	}
	addr := s.url[len("nats://"):]
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server %v did not listen within 10s: %v", s.args, err)
		}
		<-tick.C
	}
}

// kill ends the server at once, like a crash.
func (s *privateServer) kill() {
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
}

// freeze stops the server (SIGSTOP) and waits until every one of its
// threads has stopped: from then on it answers nothing, like a hung host.
func (s *privateServer) freeze() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
		s.t.Fatal(err)
	}
	dir := fmt.Sprintf("/proc/%d/task", s.cmd.Process.Pid)
	deadline := time.Now().Add(10 * time.Second)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		tasks, err := os.ReadDir(dir)
		if err != nil {
			s.t.Fatalf("freeze: %v", err)
		}
		stopped := 0
		for _, task := range tasks {
			b, err := os.ReadFile(dir + "/" + task.Name() + "/stat")
			// The state follows the command, in parentheses: "pid (comm) T ...".
			if i := bytes.LastIndexByte(b, ')'); err == nil && i >= 0 && i+2 < len(b) && b[i+2] == 'T' {
				stopped++
			}
		}
		if stopped == len(tasks) {
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("nats-server did not stop within 10s (%d of %d threads)", stopped, len(tasks))
		}
		<-tick.C
	}
}
