package browser

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// nginx is Debian's nginx running as a subprocess of the test with a
// configuration of its own, in front of one chat server, on two loopback
// ports: plain, a reverse proxy without WebSocket support (as nginx is
// unless told to pass Upgrade on), and buffering, which also holds the
// event stream back (it ignores the server's X-Accel-Buffering: no).
type nginx struct {
	plain, buffering string // base URLs
}

// nginxConf is the test's configuration: one process, no daemon, every
// path in the test's directory. Neither server passes Upgrade and
// Connection on, and both talk HTTP/1.0 to the upstream (nginx's
// defaults): a WebSocket handshake reaches the chat server as a plain GET.
// Both pass the Host on, as an application behind nginx does, so that the
// server's Origin check sees the host the browser used.
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
	server {
		listen %[2]s;
		location / {
			proxy_pass http://%[4]s;
			proxy_set_header Host $http_host;
			proxy_read_timeout 60s;
		}
	}
	server {
		listen %[3]s;
		location / {
			proxy_pass http://%[4]s;
			proxy_set_header Host $http_host;
			proxy_buffering on;
			proxy_ignore_headers X-Accel-Buffering;
		}
	}
}
`

// nginxPath finds nginx: $WSROOM_NGINX, else nginx on the PATH or in
// /usr/sbin. Without it the test skips, or fails when
// WSROOM_REQUIRE_NGINX=1.
func nginxPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WSROOM_NGINX"); p != "" {
		return p
	}
	if p, err := exec.LookPath("nginx"); err == nil {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err == nil {
		return "/usr/sbin/nginx"
	}
	if os.Getenv("WSROOM_REQUIRE_NGINX") == "1" {
		t.Fatal("nginx not found and WSROOM_REQUIRE_NGINX=1: apt-get install -y nginx-light (or set WSROOM_NGINX)")
	}
	t.Skip("nginx not found: apt-get install -y nginx-light (or set WSROOM_NGINX) to run the nginx tests")
	return ""
}

// startNginx starts nginx in front of the chat server at upstream
// (host:port) and stops it when the test ends.
func startNginx(t *testing.T, upstream string) *nginx {
	t.Helper()
	bin := nginxPath(t)
	dir := t.TempDir()
	plain, buffering := freeAddr(t), freeAddr(t)
	conf := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(nginxConf, dir, plain, buffering, upstream)), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-p", dir, "-c", conf, "-e", filepath.Join(dir, "error.log"))
	logs := &lineLog{ready: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting nginx: %v", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt) // nginx: fast shutdown
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{plain, buffering} {
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-exited:
				b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx exited:\n%s%s", logs, b)
			case <-time.After(20 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx did not listen on %s within 10s:\n%s%s", addr, logs, b)
			}
		}
	}
	return &nginx{plain: "http://" + plain, buffering: "http://" + buffering}
}

// freeAddr returns a loopback address with a port free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return strings.TrimSpace(l.Addr().String())
}
