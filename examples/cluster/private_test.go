package cluster

// Private backend servers, each on a spare loopback port, that a fault
// test stops and starts again without disturbing the shared ones.

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

// spare returns a loopback TCP port nothing listens on now.
func spare(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// waitListening waits until addr accepts TCP connections.
func waitListening(ctx context.Context, addr string) error {
	return poll(ctx, 20*time.Millisecond, func() bool {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
		}
		return err == nil
	})
}

// daemon is a backend server run in the foreground as our child, in a
// process group of its own.
type daemon struct {
	t      testing.TB
	name   string
	argv   []string
	dir    string
	addr   string
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
}

// start runs the daemon and waits until it listens.
func (d *daemon) start() {
	d.t.Helper()
	d.cmd = exec.Command(d.argv[0], d.argv[1:]...)
	d.cmd.Dir = d.dir
	d.out = &bytes.Buffer{}
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = procAttr()
	if err := d.cmd.Start(); err != nil {
		d.t.Fatalf("start %s: %v", d.name, err)
	}
	exited := make(chan struct{})
	d.exited = exited
	go func(cmd *exec.Cmd) {
		cmd.Wait()
		close(exited)
	}(d.cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := waitListening(ctx, d.addr); err != nil {
		d.kill()
		d.t.Fatalf("%s did not listen on %s: %v\n%s", d.name, d.addr, err, d.out)
	}
}

// kill stops the daemon at once, as a crash would.
func (d *daemon) kill() {
	if d.cmd == nil {
		return
	}
	syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
	<-d.exited
	d.cmd = nil
}

// freeze stops the daemon (SIGSTOP): its connections stay open and
// nothing answers, as a hung host; thaw lets it go on.
func (d *daemon) freeze() { syscall.Kill(-d.cmd.Process.Pid, syscall.SIGSTOP) }
func (d *daemon) thaw()   { syscall.Kill(-d.cmd.Process.Pid, syscall.SIGCONT) }

// startRedis starts a private redis-server that writes every command to
// its append-only file before answering (appendfsync always), as a Redis
// that keeps what it acknowledged must: killed and started again, it has
// its data.
func startRedis(t testing.TB) (*daemon, string) {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		unavailable(t, "redis-server not installed (apt-get install redis-server): the outage test runs a private one")
	}
	port := spare(t)
	d := &daemon{t: t, name: "redis-server", dir: t.TempDir(), addr: "127.0.0.1:" + strconv.Itoa(port)}
	d.argv = []string{bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--loglevel", "warning"}
	d.start()
	t.Cleanup(d.kill)
	return d, fmt.Sprintf("redis://%s/0", d.addr)
}

// startNATS starts a private nats-server.
func startNATS(t testing.TB) (*daemon, string) {
	t.Helper()
	bin := os.Getenv("WSROOM_NATS_SERVER")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("nats-server"); err != nil {
			unavailable(t, "nats-server not installed (or set WSROOM_NATS_SERVER): the outage test runs a private one")
		}
	}
	port := spare(t)
	d := &daemon{t: t, name: "nats-server", dir: t.TempDir(), addr: "127.0.0.1:" + strconv.Itoa(port)}
	d.argv = []string{bin, "-a", "127.0.0.1", "-p", strconv.Itoa(port)}
	d.start()
	t.Cleanup(d.kill)
	return d, "nats://" + d.addr
}

// postgres is a private PostgreSQL cluster in a temporary directory, run
// with pg_ctl (as the postgres user when we are root).
type postgres struct {
	t    testing.TB
	bin  string
	as   []string
	dir  string
	port int
}

// startPostgres creates and starts a private cluster, removed when t
// ends. Commits are synchronous: what it acknowledged survives a crash.
func startPostgres(t testing.TB) (*postgres, string) {
	t.Helper()
	bin, ok := pgBinDir()
	if !ok {
		unavailable(t, "initdb and pg_ctl not found: install the postgresql server (or set WSROOM_PG_BIN) to run the outage test")
	}
	p := &postgres{t: t, bin: bin}
	dir, err := os.MkdirTemp("", "wsroom-cluster-pg-")
	if err != nil {
		t.Fatal(err)
	}
	p.dir = dir
	t.Cleanup(func() {
		p.try(context.Background(), p.pgctl("stop", "-m", "immediate")...)
		os.RemoveAll(dir)
	})
	if os.Geteuid() == 0 { // initdb and postgres refuse to run as root
		u, err := user.Lookup("postgres")
		if err != nil {
			unavailable(t, "running as root and there is no postgres user to run a private cluster as (useradd postgres)")
		}
		runuser, err := exec.LookPath("runuser")
		if err != nil {
			unavailable(t, "running as root without runuser to start a private cluster as postgres (util-linux)")
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
		p.as = []string{runuser, "-u", "postgres", "--"}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p.run(ctx, "initdb", "-D", p.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync")
	for attempt := 1; ; attempt++ {
		p.port = spare(t)
		err := p.try(ctx, p.pgctl("start")...)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("start private PostgreSQL: %v\n%s", err, p.logTail())
		}
	}
	return p, fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
}

// pgBinDir finds initdb and pg_ctl: $WSROOM_PG_BIN, the newest
// /usr/lib/postgresql/*/bin, or $PATH.
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
	major := func(dir string) int { n, _ := strconv.Atoi(filepath.Base(filepath.Dir(dir))); return n }
	sort.Slice(dirs, func(i, j int) bool { return major(dirs[i]) > major(dirs[j]) })
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

func (p *postgres) data() string { return filepath.Join(p.dir, "data") }

func (p *postgres) pgctl(action string, args ...string) []string {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c max_connections=50 -c shared_buffers=16MB -c fsync=on -c synchronous_commit=on", p.port, p.dir)
	return append([]string{"pg_ctl", "-D", p.data(), "-l", filepath.Join(p.dir, "log"), "-w", "-t", "60", "-o", opts, action}, args...)
}

// crash stops the cluster as a crash would (every process killed; the
// WAL is replayed at the next start).
func (p *postgres) crash(ctx context.Context) {
	p.t.Helper()
	p.run(ctx, p.pgctl("stop", "-m", "immediate")...)
}

// start starts the stopped cluster.
func (p *postgres) start(ctx context.Context) {
	p.t.Helper()
	p.run(ctx, p.pgctl("start")...)
}

func (p *postgres) run(ctx context.Context, args ...string) {
	p.t.Helper()
	if err := p.try(ctx, args...); err != nil {
		p.t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, p.logTail())
	}
}

func (p *postgres) try(ctx context.Context, args ...string) error {
	argv := append(append([]string{}, p.as...), filepath.Join(p.bin, args[0]))
	argv = append(argv, args[1:]...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = p.dir
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.WaitDelay = 5 * time.Second // the postmaster pg_ctl starts must not hold us
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%w: %s", err, out.Bytes())
	}
	return nil
}

func (p *postgres) logTail() string {
	b, _ := os.ReadFile(filepath.Join(p.dir, "log"))
	return tail(string(b), 4000)
}
