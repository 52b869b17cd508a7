// Command soak holds 10,000 chat connections across 100 rooms of the
// example chat server for several minutes with chat traffic, and reports
// at the end the server's goroutines and resident memory over time, and
// for the healthy members (every one, unless the server dropped some) the
// messages lost and duplicated. The server is measured after a full
// garbage collection (its -debug endpoint /debug/mem): live heap and
// stacks, and resident memory. It exits non-zero when a member lost a
// message, heard one twice, or was dropped, or when the server grew while
// the load stayed the same.
//
//	go run ./internal/soak                          # 10,000 connections, 100 rooms, 3 minutes
//	go run ./internal/soak -duration 10m -rate 5    # longer, busier
//	go run ./internal/soak -conns 1000 -rooms 10 -duration 30s
//
// It builds examples/chat (or runs -chat) as a subprocess on a spare
// loopback port and talks to it only there. The example allows 1,000
// connections per client address (Options.MaxConnectionsPerIP), so the
// connections are spread over that many loopback source addresses
// (127.0.0.1, 127.0.0.2, ...; -sources).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coder/websocket"
)

type config struct {
	conns, rooms, sources int
	duration, sample      time.Duration
	rate                  float64 // messages per second per room
	chat                  string
	growth                float64 // RSS growth tolerated between the first sample under load and the last
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Fatal(err)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	c := &config{}
	fs := flag.NewFlagSet("soak", flag.ContinueOnError)
	fs.IntVar(&c.conns, "conns", 10000, "connections (members)")
	fs.IntVar(&c.rooms, "rooms", 100, "rooms they are spread over")
	fs.DurationVar(&c.duration, "duration", 3*time.Minute, "how long the traffic runs")
	fs.Float64Var(&c.rate, "rate", 2, "messages per second in each room")
	fs.DurationVar(&c.sample, "sample", 15*time.Second, "how often the server is measured")
	fs.IntVar(&c.sources, "sources", 0, "loopback source addresses to spread the connections over (default: one per 1,000)")
	fs.StringVar(&c.chat, "chat", "", "the example chat server's binary (default: built from examples/chat)")
	fs.Float64Var(&c.growth, "max-growth", 0.10, "largest growth of the live heap and stacks, as a fraction, allowed between the first sample under load and the end, besides 256 bytes of history a message")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.conns < c.rooms || c.rooms < 1 || c.duration <= 0 || c.rate <= 0 {
		return errors.New("soak: need conns >= rooms >= 1, a positive duration and rate")
	}
	if c.sources == 0 {
		c.sources = (c.conns + 999) / 1000
	}
	if c.sources > 250 {
		return errors.New("soak: at most 250 source addresses")
	}
	r := &report{out: out}
	err := soak(ctx, c, r)
	r.print()
	return errors.Join(err, r.verdict(c))
}

// server is the example chat server as a subprocess.
type server struct {
	cmd    *exec.Cmd
	addr   string
	exited chan struct{}
	err    error
	stderr *tail
}

func startServer(ctx context.Context, c *config, dir string) (*server, error) {
	bin := c.chat
	if bin == "" {
		bin = filepath.Join(dir, "chat")
		bctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
		defer cancel()
		src, err := chatDir()
		if err != nil {
			return nil, err
		}
		cmd := exec.CommandContext(bctx, "go", "build", "-o", bin, ".")
		cmd.Dir = src // examples/chat is a module of its own
		if b, err := cmd.CombinedOutput(); err != nil {
			return nil, fmt.Errorf("go build examples/chat: %w\n%s", err, b)
		}
	}
	// At DEBUG the server logs every departure, also those it did not
	// decide (a connection that ended): the report counts them by reason.
	cmd := exec.Command(bin, "-addr", "127.0.0.1:0", "-debug", "-log-level", "DEBUG")
	t := &tail{url: make(chan string, 1)}
	cmd.Stderr = t
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	s := &server{cmd: cmd, exited: make(chan struct{}), stderr: t}
	go func() { s.err = cmd.Wait(); close(s.exited) }()
	select {
	case u := <-t.url:
		s.addr = strings.TrimPrefix(u, "http://")
		return s, nil
	case <-s.exited:
		return nil, fmt.Errorf("the chat server exited: %v\n%s", s.err, t)
	case <-time.After(time.Minute):
		cmd.Process.Kill()
		return nil, errors.New("the chat server did not start within a minute")
	}
}

// tail keeps the last 64 KiB of the server's log, finds its URL, and
// counts the departures it logs by reason (those the server decided).
type tail struct {
	mu       sync.Mutex
	b        []byte
	partial  []byte
	url      chan string
	sent     bool
	left     map[string]int
	firstErr []string // the error of the first departure of each reason
}

var leftReason = regexp.MustCompile(`msg="wsroom: member left".* reason=(\w+) code=(-?\d+)(?: err="?([^"]*))?`)

var listening = regexp.MustCompile(`url=(http://\S+)`)

func (t *tail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	t.partial = append(t.partial, p...)
	for {
		i := strings.IndexByte(string(t.partial), '\n')
		if i < 0 {
			break
		}
		if m := leftReason.FindSubmatch(t.partial[:i]); m != nil {
			if t.left == nil {
				t.left = map[string]int{}
			}
			key := string(m[1]) + " " + string(m[2])
			if t.left[key] == 0 {
				t.firstErr = append(t.firstErr, key+": "+string(m[3]))
			}
			t.left[key]++
		}
		t.partial = t.partial[i+1:]
	}
	if !t.sent {
		if m := listening.FindSubmatch(t.b); m != nil {
			t.sent = true
			t.url <- string(m[1])
		}
	}
	if len(t.b) > 64<<10 {
		t.b = t.b[len(t.b)-64<<10:]
	}
	return len(p), nil
}

// departures returns the departures the server logged, by reason and code.
func (t *tail) departures() (map[string]int, []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return maps.Clone(t.left), slices.Clone(t.firstErr)
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// sample is the server measured at a moment, after a full garbage
// collection (examples/chat -debug serves /debug/mem).
type sample struct {
	at         time.Duration // since the traffic started
	goroutines int
	live       int64 // heap and stacks in use after the collection, bytes
	rss        int64 // resident memory after returning what is free to the OS
}

func (s *server) measure(ctx context.Context) (sample, error) {
	var sm sample
	mctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req, _ := http.NewRequestWithContext(mctx, "GET", "http://"+s.addr+"/debug/mem", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return sm, err
	}
	defer resp.Body.Close()
	var m struct {
		HeapInuse  int64 `json:"heap_inuse"`
		StackInuse int64 `json:"stack_inuse"`
		RSS        int64 `json:"rss"`
		Goroutines int   `json:"goroutines"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil {
		return sm, fmt.Errorf("/debug/mem: %w", err)
	}
	sm.goroutines, sm.live, sm.rss = m.Goroutines, m.HeapInuse+m.StackInuse, m.RSS
	return sm, nil
}

// member is one connection, joined to a room, recording the message IDs
// it hears: the example's store numbers a room's messages one by one, so
// a member that hears every message once sees each ID one more than the
// one before.
type member struct {
	room, name string
	c          *websocket.Conn
	last       atomic.Uint64 // last message ID heard
	heard      atomic.Int64
	lost       atomic.Int64 // IDs skipped
	dups       atomic.Int64 // IDs heard again or out of order
	ended      atomic.Bool  // its connection ended before the soak did
	endErr     atomic.Value
	first      uint64
	done       chan struct{}
}

type event struct {
	Type string `json:"type"`
	ID   string `json:"id"`
	From string `json:"from"`
}

func (m *member) read(soakOver *atomic.Bool) {
	defer close(m.done)
	for {
		_, b, err := m.c.Read(context.Background())
		if err != nil {
			if !soakOver.Load() {
				m.ended.Store(true)
				m.endErr.Store(err.Error())
			}
			return
		}
		for line := range strings.SplitSeq(string(b), "\n") {
			if !strings.Contains(line, `"type":"message"`) {
				continue
			}
			var ev event
			if json.Unmarshal([]byte(line), &ev) != nil || ev.Type != "message" {
				continue
			}
			id, _ := strconv.ParseUint(ev.ID, 10, 64)
			m.heard.Add(1)
			switch last := m.last.Load(); {
			case last == 0:
				m.first = id
			case id <= last:
				m.dups.Add(1)
				continue
			case id > last+1:
				m.lost.Add(int64(id - last - 1))
			}
			m.last.Store(id)
		}
	}
}

func soak(ctx context.Context, c *config, r *report) error {
	dir, err := os.MkdirTemp("", "wsroom-soak-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	srv, err := startServer(ctx, c, dir)
	if err != nil {
		return err
	}
	defer func() {
		srv.cmd.Process.Kill()
		<-srv.exited
	}()
	r.printf("soak: %d connections in %d rooms of examples/chat at %s, %.1f messages/s per room for %v, from %d source addresses",
		c.conns, c.rooms, srv.addr, c.rate, c.duration, c.sources)
	idle, err := srv.measure(ctx)
	if err != nil {
		return err
	}
	r.printf("idle server: %d goroutines, heap+stacks %s, RSS %s", idle.goroutines, mib(idle.live), mib(idle.rss))

	// Join everyone, 200 at a time.
	members := make([]*member, c.conns)
	var soakOver atomic.Bool
	start := time.Now()
	sem := make(chan struct{}, 200)
	var wg sync.WaitGroup
	var joinErr atomic.Value
	for i := range members {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			m, err := join(ctx, srv.addr, i, c)
			if err != nil {
				joinErr.CompareAndSwap(nil, err)
				return
			}
			members[i] = m
			go m.read(&soakOver)
		}()
	}
	wg.Wait()
	defer func() {
		for _, m := range members {
			if m != nil {
				m.c.CloseNow()
			}
		}
	}()
	if err, _ := joinErr.Load().(error); err != nil {
		return fmt.Errorf("join: %w", err)
	}
	r.printf("joined %d members in %v", c.conns, time.Since(start).Round(time.Millisecond))
	joined, err := srv.measure(ctx)
	if err != nil {
		return err
	}
	r.printf("all joined: %d goroutines, heap+stacks %s (%s per connection), RSS %s (%s per connection)", joined.goroutines,
		mib(joined.live), kib((joined.live-idle.live)/int64(c.conns)), mib(joined.rss), kib((joined.rss-idle.rss)/int64(c.conns)))

	// Traffic: in each room, a random member says something, rate times a
	// second on average.
	byRoom := make([][]*member, c.rooms)
	for _, m := range members {
		i, _ := strconv.Atoi(strings.TrimPrefix(m.room, "soak"))
		byRoom[i] = append(byRoom[i], m)
	}
	tctx, cancel := context.WithTimeout(ctx, c.duration)
	defer cancel()
	var sent, sendErrs atomic.Int64
	var twg sync.WaitGroup
	for _, ms := range byRoom {
		twg.Add(1)
		go func() {
			defer twg.Done()
			seq := 0
			for {
				timer := time.NewTimer(time.Duration(rand.ExpFloat64() / c.rate * float64(time.Second)))
				select {
				case <-tctx.Done():
					timer.Stop()
					return
				case <-timer.C:
				}
				m := ms[rand.N(len(ms))]
				seq++
				msg := fmt.Sprintf(`{"type":"message","text":"%s #%d"}`, m.name, seq)
				wctx, wcancel := context.WithTimeout(ctx, 10*time.Second)
				if err := m.c.Write(wctx, websocket.MessageText, []byte(msg)); err != nil {
					sendErrs.Add(1)
				} else {
					sent.Add(1)
				}
				wcancel()
			}
		}()
	}
	traffic := time.Now()
	tick := time.NewTicker(c.sample)
	defer tick.Stop()
	for loop := true; loop; {
		select {
		case <-tctx.Done():
			loop = false
		case <-tick.C:
			s, err := srv.measure(ctx)
			if err != nil {
				return err
			}
			s.at = time.Since(traffic)
			r.samples = append(r.samples, s)
			r.printf("  %6v: %d goroutines, heap+stacks %s, RSS %s, %d messages sent", s.at.Round(time.Second), s.goroutines, mib(s.live), mib(s.rss), sent.Load())
		}
	}
	twg.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// Let the last messages arrive: every member's last ID is its room's.
	dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
	defer dcancel()
	for dctx.Err() == nil && !drained(byRoom) {
		time.Sleep(100 * time.Millisecond) // polling, bounded by dctx
	}
	end, err := srv.measure(ctx)
	if err != nil {
		return err
	}
	end.at = time.Since(traffic)
	r.end = end
	r.sent, r.sendErrs = sent.Load(), sendErrs.Load()
	for _, ms := range byRoom {
		final := uint64(0)
		for _, m := range ms {
			final = max(final, m.last.Load())
		}
		for _, m := range ms {
			if m.ended.Load() {
				r.dropped++
				if e, ok := m.endErr.Load().(string); ok && r.dropReason == "" {
					r.dropReason = e
				}
				continue
			}
			r.heard += m.heard.Load()
			r.lost += m.lost.Load() + int64(final-m.last.Load())
			r.dups += m.dups.Load()
		}
	}

	if d, first := srv.stderr.departures(); len(d) > 0 {
		r.printf("departures the server logged, by reason and code, during the traffic: %v; the first of each: %q", d, first)
	}

	// SIGTERM: every member gets 1001 and the server exits cleanly.
	soakOver.Store(true)
	stopAt := time.Now()
	srv.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-srv.exited:
	case <-time.After(30 * time.Second):
		return errors.New("the server did not exit within 30s of SIGTERM")
	}
	r.printf("SIGTERM: the server exited (%v) after %v", exitStatus(srv.err), time.Since(stopAt).Round(time.Millisecond))
	if srv.err != nil {
		return fmt.Errorf("the server exited with %v:\n%s", srv.err, srv.stderr)
	}
	if logs := srv.stderr.String(); strings.Contains(logs, "level=ERROR") {
		r.printf("the server logged errors:\n%s", logs)
		return errors.New("the server logged errors")
	}
	return nil
}

func exitStatus(err error) string {
	if err == nil {
		return "status 0"
	}
	return err.Error()
}

// drained reports whether every member heard its room's last message.
func drained(byRoom [][]*member) bool {
	for _, ms := range byRoom {
		final := uint64(0)
		for _, m := range ms {
			final = max(final, m.last.Load())
		}
		for _, m := range ms {
			if !m.ended.Load() && m.last.Load() != final {
				return false
			}
		}
	}
	return true
}

// join connects member i from its source address and joins its room.
func join(ctx context.Context, addr string, i int, c *config) (*member, error) {
	src := &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(1+i%c.sources))}
	d := &net.Dialer{LocalAddr: src, Timeout: 10 * time.Second}
	client := &http.Client{Transport: &http.Transport{DialContext: d.DialContext}}
	m := &member{room: fmt.Sprintf("soak%d", i%c.rooms), name: fmt.Sprintf("m%d", i), done: make(chan struct{})}
	jctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var err error
	m.c, _, err = websocket.Dial(jctx, "ws://"+addr+"/chat/"+m.room, &websocket.DialOptions{
		HTTPClient: client, Subprotocols: []string{"wsroom.v1"},
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", m.name, err)
	}
	m.c.SetReadLimit(-1)
	if err := m.c.Write(jctx, websocket.MessageText, []byte(`{"type":"join","name":"`+m.name+`"}`)); err != nil {
		m.c.CloseNow()
		return nil, err
	}
	for {
		_, b, err := m.c.Read(jctx)
		if err != nil {
			m.c.CloseNow()
			return nil, fmt.Errorf("%s: waiting for the welcome: %w", m.name, err)
		}
		if strings.Contains(string(b), `"type":"welcome"`) {
			return m, nil
		}
		if strings.Contains(string(b), `"type":"error"`) {
			m.c.CloseNow()
			return nil, fmt.Errorf("%s: %s", m.name, b)
		}
	}
}

// report is what the soak found.
type report struct {
	out                        io.Writer
	samples                    []sample
	end                        sample
	sent, sendErrs             int64
	heard, lost, dups, dropped int64
	dropReason                 string
}

func (r *report) printf(format string, args ...any) { fmt.Fprintf(r.out, format+"\n", args...) }

func (r *report) print() {
	if r.end.live == 0 {
		return
	}
	r.printf("end of traffic: %d goroutines, heap+stacks %s, RSS %s", r.end.goroutines, mib(r.end.live), mib(r.end.rss))
	r.printf("messages: %d sent (%d sends failed), %d deliveries heard; healthy members lost %d and heard %d twice; %d members dropped%s",
		r.sent, r.sendErrs, r.heard, r.lost, r.dups, r.dropped, reason(r.dropReason))
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return " (first: " + s + ")"
}

// verdict fails the soak on loss, duplicates, drops, failed sends or
// growth between the first sample under load and the end.
func (r *report) verdict(c *config) error {
	var errs []error
	if r.end.live == 0 {
		return nil // the soak itself failed
	}
	if r.lost > 0 || r.dups > 0 || r.dropped > 0 || r.sendErrs > 0 {
		errs = append(errs, fmt.Errorf("soak: %d lost, %d duplicated, %d members dropped, %d sends failed", r.lost, r.dups, r.dropped, r.sendErrs))
	}
	if len(r.samples) > 0 {
		first := r.samples[0]
		// The history the store keeps grows with every message (up to
		// 1,000 a room): 256 bytes a message is allowed for it.
		limit := int64(float64(first.live)*(1+c.growth)) + 256*r.sent
		if r.end.live > limit {
			errs = append(errs, fmt.Errorf("soak: heap and stacks grew from %s at %v to %s at the end, past %s (%.0f%% more, and the history)",
				mib(first.live), first.at.Round(time.Second), mib(r.end.live), mib(limit), 100*c.growth))
		}
		if r.end.goroutines > first.goroutines+c.rooms {
			errs = append(errs, fmt.Errorf("soak: goroutines grew from %d to %d under the same load", first.goroutines, r.end.goroutines))
		}
	}
	if len(errs) == 0 {
		r.printf("PASS: no loss, no duplicates, no drops, no growth")
	}
	return errors.Join(errs...)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
func kib(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/(1<<10)) }

// chatDir finds examples/chat, the module of the example chat server, from
// the working directory up.
func chatDir() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		p := filepath.Join(dir, "examples", "chat")
		if _, err := os.Stat(filepath.Join(p, "go.mod")); err == nil {
			return p, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("examples/chat not found above the working directory: run the soak from the repository, or give -chat")
		}
		dir = parent
	}
}
