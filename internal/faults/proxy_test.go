package faults_test

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// proxy is a TCP proxy on loopback whose traffic the test controls: it can
// stop forwarding either way (a blackhole: it stops reading, as a peer
// whose network vanished would, and the sockets stay open), or cut every
// connection, with a FIN or a reset.
type proxy struct {
	ln     net.Listener
	target string

	up, down atomic.Bool   // blackholed: client to server, server to client
	stop     chan struct{} // closed by close: parked copies return
	once     sync.Once
	wg       sync.WaitGroup

	mu    sync.Mutex
	pairs [][2]*net.TCPConn // client side, server side
}

// newProxy forwards a loopback port to target until the test ends.
func newProxy(t testing.TB, target string) *proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{ln: ln, target: target, stop: make(chan struct{})}
	p.wg.Add(1)
	go p.accept()
	t.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		cc, sc := c.(*net.TCPConn), s.(*net.TCPConn)
		p.mu.Lock()
		p.pairs = append(p.pairs, [2]*net.TCPConn{cc, sc})
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(sc, cc, &p.up)
		go p.pipe(cc, sc, &p.down)
	}
}

// pipe copies from src to dst until either fails, or parks without
// reading once hole is set, until the proxy closes.
func (p *proxy) pipe(dst, src *net.TCPConn, hole *atomic.Bool) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if hole.Load() {
			<-p.stop
			return
		}
		if n > 0 {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			dst.CloseWrite()
			return
		}
	}
}

// blackhole stops forwarding client to server (up) and server to client
// (down), as chosen. A copy blocked in a read forwards nothing more.
func (p *proxy) blackhole(up, down bool) {
	p.up.Store(up)
	p.down.Store(down)
}

// cut closes every connection on both sides: with a FIN, or with a reset
// (no linger) when reset is set. The server gets no close frame.
func (p *proxy) cut(reset bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, pr := range p.pairs {
		for _, c := range pr {
			if reset {
				c.SetLinger(0)
			}
			c.Close()
		}
	}
}

// close ends the proxy and waits for its goroutines.
func (p *proxy) close() {
	p.once.Do(func() {
		close(p.stop)
		p.ln.Close()
		p.cut(false)
	})
	p.wg.Wait()
}
