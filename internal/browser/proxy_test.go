package browser

import (
	"bytes"
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// proxy is a TCP proxy on 127.0.0.1 between the browser and the server,
// controlled by the test: it can stop passing the server's bytes on
// (freeze: what the server sends is lost in flight, as on a dying
// network), cut every connection, and refuse new ones until up again.
type proxy struct {
	ln     net.Listener
	target string

	frozen atomic.Bool
	down   atomic.Bool

	mu     sync.Mutex
	closed bool
	conns  map[net.Conn]struct{}
	lost   bytes.Buffer  // server bytes dropped while frozen
	news   chan struct{} // a signal for each change of lost
	wg     sync.WaitGroup
}

func newProxy(t *testing.T, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}, news: make(chan struct{}, 1)}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.closeAll()
		p.wg.Wait()
	})
	return p
}

// URL is the proxy's base URL: pages loaded from it talk to the server
// through it.
func (p *proxy) URL() string { return "http://" + p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.down.Load() {
			c.Close()
			continue
		}
		s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		if !p.track(c, s) {
			c.Close()
			s.Close()
			return
		}
		p.wg.Add(2)
		go p.pipe(s, c, false) // browser to server
		go p.pipe(c, s, true)  // server to browser
	}
}

// track registers a connection pair; false once the proxy is closed.
func (p *proxy) track(conns ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	for _, c := range conns {
		p.conns[c] = struct{}{}
	}
	return true
}

// pipe copies src to dst until either ends, then closes both. From the
// server (fromServer), bytes are dropped while the proxy is frozen.
func (p *proxy) pipe(dst, src net.Conn, fromServer bool) {
	defer p.wg.Done()
	defer func() {
		dst.Close()
		src.Close()
		p.mu.Lock()
		delete(p.conns, dst)
		delete(p.conns, src)
		p.mu.Unlock()
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromServer && p.frozen.Load() {
				p.mu.Lock()
				p.lost.Write(buf[:n])
				p.mu.Unlock()
				select {
				case p.news <- struct{}{}:
				default:
				}
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF or closed: the pair ends
		}
	}
}

// freeze drops everything the server sends from now on, on the open
// connections and new ones, until cut.
func (p *proxy) freeze() { p.frozen.Store(true) }

// cut closes every connection and refuses new ones until up.
func (p *proxy) cut() {
	p.down.Store(true)
	p.closeAll()
	p.frozen.Store(false)
}

// up lets connections through again.
func (p *proxy) up() { p.down.Store(false) }

func (p *proxy) closeAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.conns {
		c.Close()
	}
}

// waitLost waits until the server bytes dropped while frozen contain s:
// the server has written it, and the browser will never see it.
func (p *proxy) waitLost(t *testing.T, s string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	for {
		p.mu.Lock()
		ok := bytes.Contains(p.lost.Bytes(), []byte(s))
		p.mu.Unlock()
		if ok {
			return
		}
		select {
		case <-p.news:
		case <-ctx.Done():
			t.Fatalf("the server never sent %q through the frozen proxy", s)
		}
	}
}
