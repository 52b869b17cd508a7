package wsroompg_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// cluster is a private PostgreSQL server in a temporary directory, which a
// test may stop, start, freeze and thaw. It listens on a spare loopback
// port and keeps its unix socket in its directory.
type cluster struct {
	t    testing.TB
	bin  string   // directory of initdb and pg_ctl
	as   []string // command prefix to run as the postgres user; empty if we are not root
	dir  string
	port int
}

// pgBinDir finds initdb and pg_ctl: $WSROOM_PG_BIN, else the newest
// /usr/lib/postgresql/*/bin (Debian, Ubuntu), else $PATH.
func pgBinDir() (string, bool) {
	has := func(dir string) bool {
		for _, name := range []string{"initdb", "pg_ctl"} {
			if fi, err := os.Stat(filepath.Join(dir, name)); err != nil || fi.IsDir() {
				return false
			}
		}
		return true
	}
	if dir := os.Getenv("WSROOM_PG_BIN"); dir != "" {
		return dir, has(dir)
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool { return version(dirs[i]) > version(dirs[j]) })
	for _, dir := range dirs {
		if has(dir) {
			return dir, true
		}
	}
	if p, err := exec.LookPath("pg_ctl"); err == nil && has(filepath.Dir(p)) {
		return filepath.Dir(p), true
	}
	return "", false
}

// version is the major version in a /usr/lib/postgresql/N/bin path.
func version(dir string) int {
	n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir)))
	return n
}

// startCluster creates and starts a private cluster, removed when t ends.
// It skips (or fails) the test when the PostgreSQL server binaries are not
// installed.
func startCluster(t testing.TB) *cluster {
	t.Helper()
	bin, ok := pgBinDir()
	if !ok {
		unavailable(t, "initdb and pg_ctl not found: install the postgresql server (or set WSROOM_PG_BIN to their directory) to run the outage tests")
	}
	c := &cluster{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "wsroompg-")
	if err != nil {
		t.Fatal(err)
	}
	c.dir = dir
	t.Cleanup(func() {
		c.kill()
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "running as root and there is no postgres user to run a private cluster as: create one (useradd postgres) to run the outage tests")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			unavailable(t, "running as root without runuser to start a private cluster as postgres: install util-linux to run the outage tests")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		c.as = []string{runuser, "-u", "postgres", "--"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c.run(ctx, "initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	for try := 0; ; try++ {
		c.port = sparePort(t)
		err := c.try(ctx, c.pgctl("start")...)
		if err == nil {
			break
		}
		if try == 2 {
			t.Fatalf("start private cluster: %v\n%s", err, c.logTail())
		}
	}
	return c
}

func (c *cluster) data() string { return filepath.Join(c.dir, "data") }

// url is the cluster's address, for OpenStore or pgxpool.
func (c *cluster) url() string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", c.port)
}

func (c *cluster) pgctl(action string, args ...string) []string {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=40 -c shared_buffers=16MB -c fsync=on -c synchronous_commit=on", c.port, c.dir)
	return append([]string{"pg_ctl", "-D", c.data(), "-l", filepath.Join(c.dir, "log"), "-w", "-t", "60", "-o", opts, action}, args...)
}

// start starts the stopped cluster.
func (c *cluster) start(ctx context.Context) {
	c.t.Helper()
	c.run(ctx, c.pgctl("start")...)
}

// stop stops the cluster: mode "fast" (clients are disconnected, a
// checkpoint is written) or "immediate" (every process is killed, as in a
// crash; the WAL is replayed at the next start).
func (c *cluster) stop(ctx context.Context, mode string) {
	c.t.Helper()
	c.run(ctx, c.pgctl("stop", "-m", mode)...)
}

// kill stops the cluster if it runs, at once, for the test's cleanup.
func (c *cluster) kill() {
	c.signal(syscall.SIGCONT)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c.try(ctx, c.pgctl("stop", "-m", "immediate")...)
}

// freeze stops every process of the cluster (SIGSTOP), as a server that
// hangs or a network that drops everything; thaw lets them go on.
func (c *cluster) freeze() { c.t.Helper(); c.signal(syscall.SIGSTOP) }
func (c *cluster) thaw()   { c.t.Helper(); c.signal(syscall.SIGCONT) }

// signal sends sig to the postmaster and its children.
func (c *cluster) signal(sig syscall.Signal) {
	pidFile, err := os.ReadFile(filepath.Join(c.data(), "postmaster.pid"))
	if err != nil {
		return // not running
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(pidFile), "\n", 2)[0]))
	if err != nil {
		return
	}
	pids := []int{pm}
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read past
		// its closing parenthesis.
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		if len(f) > 1 && f[1] == strconv.Itoa(pm) {
			pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(st)))
			pids = append(pids, pid)
		}
	}
	for _, pid := range pids {
		syscall.Kill(pid, sig)
	}
}

func (c *cluster) run(ctx context.Context, args ...string) {
	c.t.Helper()
	if err := c.try(ctx, args...); err != nil {
		c.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, c.logTail())
	}
}

func (c *cluster) try(ctx context.Context, args ...string) error {
	argv := append(append([]string{}, c.as...), filepath.Join(c.bin, args[0]))
	argv = append(argv, args[1:]...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = c.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// The postmaster pg_ctl starts writes to its log file, not to our
	// pipe; should it hold the pipe all the same, do not wait for it.
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, out.Bytes())
	}
	return nil
}

// logTail is the end of the server's log, for failures.
func (c *cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "log"))
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// sparePort returns a loopback TCP port nothing listens on now.
func sparePort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
