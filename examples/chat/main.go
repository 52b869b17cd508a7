// Command chat is a runnable chat server built on wsroom: a chat page at /,
// the chat endpoint at /chat and /chat/{room}, an echo endpoint at /echo,
// an echo page at /echo.html, the original chat page at /original.html, and
// the browser client at /wsroom.js. Names and history are kept in memory,
// or in Redis or PostgreSQL; several instances sharing a store and a broker
// (Redis or NATS) form one chat.
//
//	go run -C examples/chat .                 # http://127.0.0.1:8080 (or: make chat)
//	go run -C examples/chat . -addr :9000 -rate 50
//	go run -C examples/chat . -store redis://127.0.0.1:6379/0 -broker redis://127.0.0.1:6379/0
//	go run -C examples/chat . -store postgres://postgres@127.0.0.1:5432/test -broker nats://127.0.0.1:4222
//	go run -C examples/chat . -unlimited      # every limit off, for load tests
//	go run -C examples/chat . -fallback=false  # WebSocket only: no SSE+POST fallback
//
// Every limit of wsroom.Options has a flag; -h lists them with their
// defaults.
package main

import (
	"context"
	"embed"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	wsroomprom "wsroom.dev/adapters/prometheus"
	"wsroom.dev/internal/debugmem"
	"wsroom.dev/wsroom"
)

//go:embed static
var static embed.FS

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Fatal(err)
	}
}

// config is what the flags set.
type config struct {
	addr    string
	opts    wsroom.Options
	history int
	rooms   int
	metrics bool   // -metrics: serve /metrics
	store   string // -store: memory or a URL
	broker  string // -broker: memory or a URL
	origins string
	level   slog.Level
	debug   bool
}

func parseFlags(args []string, out io.Writer) (*config, error) {
	c := &config{}
	o := &c.opts
	fs := flag.NewFlagSet("chat", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.DefaultRoom, "room", "lobby", "room served at /chat")
	fs.StringVar(&c.origins, "origins", "", "comma-separated origin patterns allowed besides the same origin (e.g. *.example.com)")
	fs.BoolVar(&o.InsecureSkipVerify, "insecure-skip-verify", false, "accept every Origin (unsafe)")
	fs.Int64Var(&o.MaxMessageBytes, "max-message-bytes", 32<<10, "largest text message a client may send; -1: no limit")
	fs.Int64Var(&o.MaxBinaryBytes, "max-binary-bytes", 1<<20, "largest binary message a client may send; -1: no limit")
	fs.IntVar(&o.MaxConnections, "max-conns", 10000, "connections this server holds; -1: no limit")
	fs.IntVar(&o.MaxConnectionsPerIP, "max-conns-per-ip", 1000, "connections one client address holds; -1: no limit")
	fs.IntVar(&o.MaxRooms, "server-rooms", 10000, "rooms with members on this server; -1: no limit")
	fs.IntVar(&o.MaxNameLength, "max-name", 32, "longest member name, in characters; -1: no limit")
	fs.Float64Var(&o.RateLimit, "rate", 20, "frames per second per connection; -1: no limit")
	fs.IntVar(&o.RateBurst, "burst", 0, "frames a connection may send at once (default 2×rate)")
	fs.IntVar(&o.MaxMembers, "max-members", 1000, "members per room; -1: no limit")
	fs.IntVar(&o.SendQueue, "queue", 1024, "events queued per member before it is dropped as too slow; -1: unbounded")
	fs.Int64Var(&o.SendQueueBytes, "queue-bytes", 4<<20, "bytes queued per member before it is dropped as too slow; -1: unbounded")
	fs.DurationVar(&o.PingInterval, "ping", 25*time.Second, "heartbeat interval; -1s: no heartbeat")
	fs.DurationVar(&o.PongTimeout, "pong-timeout", 15*time.Second, "how long a ping waits for its pong")
	fs.DurationVar(&o.WriteTimeout, "write-timeout", 10*time.Second, "bound on each write; -1s: none")
	fs.DurationVar(&o.JoinTimeout, "join-timeout", 30*time.Second, "how long a connection may stay without joining; -1s: no limit")
	fs.IntVar(&o.WelcomeHistory, "welcome-history", 50, "messages in a welcome; -1: none")
	fs.IntVar(&o.ResumeLimit, "resume-limit", 500, "most missed messages sent on resume")
	fs.IntVar(&o.HistoryPage, "history-page", 100, "largest history page")
	fs.IntVar(&o.PresenceThreshold, "presence-threshold", 100, "room size from which arrivals and departures are coalesced; -1: never")
	fs.DurationVar(&o.PresenceInterval, "presence-interval", 100*time.Millisecond, "how long coalesced arrivals and departures are collected")
	fs.BoolVar(&o.NoBinary, "no-binary", false, "refuse binary messages in rooms")
	fallback := fs.Bool("fallback", true, "serve the HTTP fallback (Server-Sent Events down, POST up) to clients whose network blocks WebSocket; -fallback=false: WebSocket only")
	fs.IntVar(&c.history, "history", 1000, "messages kept per room")
	fs.StringVar(&c.store, "store", "memory", "where names and history live: memory (this process), redis://host:port/db, or postgres://user@host:port/db")
	fs.DurationVar(&o.LeaseTime, "lease", 15*time.Second, "how long the names of this server's members outlive it, in a shared store")
	fs.DurationVar(&o.LeaseRefresh, "lease-refresh", 5*time.Second, "how often this server refreshes its lease")
	fs.StringVar(&c.broker, "broker", "memory", "how events reach the other servers: memory (this process), redis://host:port/db, or nats://host:port")
	fs.IntVar(&c.rooms, "max-rooms", 10000, "rooms whose history is kept")
	fs.BoolVar(&c.metrics, "metrics", false, "serve Prometheus metrics at /metrics")
	fs.BoolVar(&c.debug, "debug", false, "serve /debug/pprof/ and /debug/mem (memory after a GC, as JSON); for local diagnostics only")
	unlimited := fs.Bool("unlimited", false, "switch every limit off (sizes, rate, members, rooms, connections, queues, name, timeouts), for load tests on loopback")
	fs.TextVar(&c.level, "log-level", slog.LevelInfo, "log level: DEBUG, INFO, WARN or ERROR")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	o.NoFallback = !*fallback
	if c.origins != "" {
		o.OriginPatterns = strings.Split(c.origins, ",")
	}
	if *unlimited {
		o.MaxMessageBytes, o.MaxBinaryBytes, o.MaxNameLength, o.RateLimit, o.MaxMembers = -1, -1, -1, -1, -1
		o.SendQueue, o.SendQueueBytes, o.MaxRooms, o.MaxConnections, o.MaxConnectionsPerIP = -1, -1, -1, -1, -1
		o.JoinTimeout, o.WriteTimeout = -1, -1
	}
	return c, nil
}

// newHandler returns the example's routes and the wsroom Server behind
// them.
func newHandler(c *config, b *backends, log *slog.Logger) (http.Handler, *wsroom.Server, error) {
	if b == nil { // in memory
		b = &backends{store: wsroom.NewMemoryStore(&wsroom.MemoryStoreOptions{History: c.history, MaxRooms: c.rooms}), broker: wsroom.NewMemoryBroker()}
	}
	opts := c.opts
	opts.Logger = log
	opts.Store, opts.Broker = b.store, b.broker
	var exp *wsroomprom.Exporter
	if c.metrics {
		exp = wsroomprom.New(nil)
		opts.Metrics = exp
	}
	rooms, err := wsroom.New(&opts)
	if err != nil {
		return nil, nil, err
	}
	page, err := fs.Sub(static, "static")
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	// The pages: chat (/), echo (/echo.html) and the original chat page of
	// the plain-text protocol (/original.html); the browser client they
	// import is the core's.
	files := http.FileServerFS(page)
	for _, p := range []string{"/{$}", "/chat.js", "/echo.html", "/echo.js", "/original.html", "/style.css", "/vendor/"} {
		mux.Handle("GET "+p, files)
	}
	mux.Handle("GET /wsroom.js", wsroom.ClientHandler())
	mux.Handle("GET /wsroom.d.ts", wsroom.ClientHandler())
	mux.Handle("/chat", rooms)
	mux.Handle("/chat/{room}", rooms)
	mux.Handle("/echo", rooms.Echo())
	if exp != nil {
		exp.Watch(rooms)
		reg := prometheus.NewRegistry()
		reg.MustRegister(exp, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	}
	if c.debug {
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mux.Handle("/debug/mem", debugmem.Handler())
	}
	return mux, rooms, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: c.level}))
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	b, err := openBackends(octx, c)
	ocancel()
	if err != nil {
		return err
	}
	h, rooms, err := newHandler(c, b, log)
	if err != nil {
		return errors.Join(err, b.close())
	}
	ln, err := net.Listen("tcp", c.addr)
	if err != nil {
		return errors.Join(err, b.close())
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	srv.RegisterOnShutdown(func() { rooms.Shutdown(context.Background()) })
	log.Info("chat: listening", "url", "http://"+ln.Addr().String(), "store", redact(c.store), "broker", redact(c.broker))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("chat: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	err = errors.Join(srv.Shutdown(sctx), rooms.Shutdown(sctx))
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return errors.Join(err, b.close())
}

// redact hides a password in a backend URL, for the log.
func redact(s string) string {
	if u, err := url.Parse(s); err == nil && u.User != nil {
		return u.Redacted()
	}
	return s
}
