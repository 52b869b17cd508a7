package faults_test

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// nginx is Debian's nginx run as a reverse proxy in front of a wsroom
// Server, with a private configuration, on a spare loopback port.
type nginx struct {
	addr string // 127.0.0.1:port
	cmd  *exec.Cmd
	dir  string
}

// proxyReadTimeout is nginx's proxy_read_timeout in these tests: it closes
// a proxied connection on which the backend sent nothing for this long.
const proxyReadTimeout = 2 * time.Second

// nginxConf is the configuration: WebSocket upgrade support as nginx's
// documentation gives it, and a short read timeout.
const nginxConf = `daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path %[1]s/body;
	proxy_temp_path %[1]s/proxy;
	fastcgi_temp_path %[1]s/fastcgi;
	uwsgi_temp_path %[1]s/uwsgi;
	scgi_temp_path %[1]s/scgi;
	map $http_upgrade $connection_upgrade {
		default upgrade;
		''      close;
	}
	server {
		listen %[2]s;
		location / {
			proxy_pass http://%[3]s;
			proxy_http_version 1.1;
			proxy_set_header Upgrade $http_upgrade;
			proxy_set_header Connection $connection_upgrade;
			proxy_set_header Host $http_host;
			proxy_set_header X-Forwarded-For $remote_addr;
			proxy_read_timeout %[4]ds;
			proxy_send_timeout %[4]ds;
		}
	}
}
`

// nginxBinary finds nginx, or skips the test (fails it when
// WSROOM_REQUIRE_NGINX=1).
func nginxBinary(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"nginx", "/usr/sbin/nginx"} {
		if bin, err := exec.LookPath(p); err == nil {
			return bin
		}
	}
	msg := "nginx is not installed: apt-get install -y nginx-light to run the reverse-proxy tests"
	if os.Getenv("WSROOM_REQUIRE_NGINX") == "1" {
		t.Fatal(msg + " (WSROOM_REQUIRE_NGINX=1)")
	}
	t.Skip(msg)
	return ""
}

// spareAddr returns a loopback address nobody listens on (a moment ago).
func spareAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startNginx runs nginx in front of backend until the test ends.
func startNginx(t *testing.T, backend string) *nginx {
	t.Helper()
	bin := nginxBinary(t)
	dir := t.TempDir()
	var lastErr error
	for range 3 { // the spare port may be taken between the probe and nginx
		addr := spareAddr(t)
		conf := fmt.Sprintf(nginxConf, dir, addr, backend, int(proxyReadTimeout/time.Second))
		if err := os.WriteFile(filepath.Join(dir, "nginx.conf"), []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, "-p", dir, "-c", filepath.Join(dir, "nginx.conf"), "-e", filepath.Join(dir, "error.log"))
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		n := &nginx{addr: addr, cmd: cmd, dir: dir}
		exited := make(chan error, 1)
		go func() { exited <- cmd.Wait() }()
		if err := waitListening(addr, exited); err != nil {
			cmd.Process.Kill()
			lastErr = fmt.Errorf("%w\n%s", err, out.String())
			continue
		}
		t.Cleanup(func() {
			cmd.Process.Signal(os.Interrupt) // fast shutdown
			select {
			case <-exited:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				<-exited
			}
			if t.Failed() {
				log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Logf("nginx error.log:\n%s", log)
			}
		})
		return n
	}
	t.Fatalf("nginx did not start: %v", lastErr)
	return nil
}

// waitListening waits until something accepts on addr, or the process
// exits, for at most 10 seconds.
func waitListening(addr string, exited <-chan error) error {
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("nginx exited: %v", err)
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return nil
		}
		time.Sleep(20 * time.Millisecond) // polling, bounded by the deadline
	}
	return errors.New("nginx is not listening after 10s")
}

// TestBehindNginx: behind nginx with proxy_read_timeout 2s, an idle member
// stays connected for three times the timeout because the heartbeat
// (PingInterval 500ms) keeps traffic flowing; without a heartbeat, the
// same member is cut by nginx, which shows the timeout is real.
func TestBehindNginx(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		ping  time.Duration
		stays bool
	}{
		{"heartbeat under the proxy timeout", 500 * time.Millisecond, true},
		{"no heartbeat", -1, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := testContext(t, 60*time.Second)
			e := newEnv(t, wsroom.Options{PingInterval: tc.ping, PongTimeout: 5 * time.Second})
			ng := startNginx(t, e.addr())
			idle, err := joinURL(ctx, "ws://"+ng.addr+"/chat/idle", "idle", "")
			if err != nil {
				t.Fatal(err)
			}
			defer idle.close()
			start := time.Now()
			hold := 3 * proxyReadTimeout
			timer := time.NewTimer(hold)
			defer timer.Stop()
			select {
			case <-idle.done:
				took := time.Since(start)
				if tc.stays {
					t.Fatalf("the idle member was cut after %v: %v", took, idle.err)
				}
				t.Logf("without a heartbeat, nginx cut the idle member after %v", took.Round(time.Millisecond))
				// The proxy's clock started at the welcome, a little before
				// the client read it.
				if took < proxyReadTimeout/2 {
					t.Errorf("cut after %v, well before the proxy's timeout", took)
				}
				return
			case <-timer.C:
			}
			if !tc.stays {
				t.Fatalf("without a heartbeat, the idle member was not cut within %v", hold)
			}
			// Still connected, and still a member: it speaks and is heard.
			other := e.join(ctx, "idle", "other")
			if err := idle.say(ctx, "still here"); err != nil {
				t.Fatal(err)
			}
			if ev, err := other.next(ctx, "message"); err != nil || ev.Text != "still here" {
				t.Fatalf("other: %+v %v", ev, err)
			}
		})
	}
}

// TestResumeBehindNginx: a page reloaded behind nginx (its connection
// dropped, a new one resuming with since) misses nothing said meanwhile,
// whether it resumes with the join frame or the URL.
func TestResumeBehindNginx(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	e := newEnv(t, wsroom.Options{})
	ng := startNginx(t, e.addr())
	base := "ws://" + ng.addr + "/chat/reload"
	speaker := e.join(ctx, "reload", "speaker")
	var mu sync.Mutex
	said := []string{}
	say := func(n int) {
		for range n {
			mu.Lock()
			text := "m" + strconv.Itoa(len(said))
			said = append(said, text)
			mu.Unlock()
			if err := speaker.say(ctx, text); err != nil {
				t.Fatal(err)
			}
			if _, err := speaker.next(ctx, "message"); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, how := range []string{"frame", "url"} {
		reader, err := joinURL(ctx, base, "reader-"+how, "")
		if err != nil {
			t.Fatal(err)
		}
		say(5)
		var last event
		for range 5 {
			if last, err = reader.next(ctx, "message"); err != nil {
				t.Fatal(err)
			}
		}
		reader.c.CloseNow() // the page goes away: no close frame
		if ev, err := speaker.next(ctx, "leave"); err != nil || ev.Name != "reader-"+how {
			t.Fatalf("speaker: %+v %v", ev, err)
		}
		mu.Lock()
		seen := len(said)
		mu.Unlock()
		say(7) // said while the page reloads
		var back *member
		if how == "url" {
			back, err = joinURL(ctx, base+"?since="+last.ID, "reader-"+how, "")
		} else {
			back, err = joinURL(ctx, base, "reader-"+how, last.ID)
		}
		if err != nil {
			t.Fatal(err)
		}
		defer back.close()
		w := back.welcome
		if w.Gap {
			t.Errorf("%s: the resume reports a gap", how)
		}
		var got []string
		for _, m := range w.History {
			got = append(got, m.Text)
		}
		mu.Lock()
		want := append([]string(nil), said[seen:]...)
		mu.Unlock()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: resumed with %q, want %q", how, got, want)
		}
		say(1) // and it hears what follows
		if ev, err := back.next(ctx, "message"); err != nil || ev.Text != said[len(said)-1] {
			t.Errorf("%s: after the resume: %+v %v", how, ev, err)
		}
	}
}

// TestOriginBehindNginx: with the browser's Host passed through
// (proxy_set_header Host $http_host), a page served by the proxy is the
// same origin as the chat behind it, and another site's page is refused.
func TestOriginBehindNginx(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	e := newEnv(t, wsroom.Options{})
	ng := startNginx(t, e.addr())
	for _, tc := range []struct {
		origin string
		ok     bool
	}{
		{"http://" + ng.addr, true},
		{"https://evil.example", false},
		{"http://" + e.addr(), false}, // the backend's own address is another origin
	} {
		c, resp, err := websocket.Dial(ctx, "ws://"+ng.addr+"/chat/origin", &websocket.DialOptions{
			Subprotocols: []string{wsroom.Subprotocol},
			HTTPHeader:   http.Header{"Origin": {tc.origin}},
		})
		if err == nil {
			c.CloseNow()
		}
		switch {
		case tc.ok && err != nil:
			t.Errorf("Origin %s through nginx: %v, want accepted", tc.origin, err)
		case !tc.ok && (resp == nil || resp.StatusCode != http.StatusForbidden):
			t.Errorf("Origin %s through nginx: %v, want 403", tc.origin, err)
		}
	}
}
