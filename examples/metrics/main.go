// Command metrics is a chat server that exports its metrics to Prometheus:
// the chat endpoint at /chat/{room} (and /chat, the default room), echo at
// /echo, and the metrics at /metrics, through wsroom.dev/adapters/prometheus.
//
//	go run .                               # http://127.0.0.1:8080/metrics
//	go run . -metrics-addr 127.0.0.1:9090  # /metrics on its own listener
//	go run . -room-sizes                   # and a gauge per room
//
// The wiring is three lines besides the registration: wsroomprom.New, the
// Exporter in Options.Metrics, and Exporter.Watch once the Server exists.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	wsroomprom "wsroom.dev/adapters/prometheus"
	"wsroom.dev/wsroom"
)

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
	addr, metricsAddr string
	roomSizes         bool
}

func parseFlags(args []string, out io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("metrics", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.addr, "addr", "127.0.0.1:8080", "address of the chat, echo and (without -metrics-addr) /metrics")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "serve /metrics on this address instead, away from the public listener")
	fs.BoolVar(&c.roomSizes, "room-sizes", false, "export a gauge per room (one series per room: beware of the number of rooms)")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return c, nil
}

// newServer returns the wsroom Server and the registry its metrics are
// exported through, with the Go runtime's and the process's.
func newServer(c *config, log *slog.Logger) (*wsroom.Server, *prometheus.Registry, error) {
	metrics := wsroomprom.New(&wsroomprom.Options{RoomSizes: c.roomSizes})
	rooms, err := wsroom.New(&wsroom.Options{Logger: log, Metrics: metrics})
	if err != nil {
		return nil, nil, err
	}
	metrics.Watch(rooms)
	reg := prometheus.NewRegistry()
	reg.MustRegister(metrics, collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return rooms, reg, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	rooms, reg, err := newServer(c, log)
	if err != nil {
		return err
	}
	metricsHandler := promhttp.HandlerFor(reg, promhttp.HandlerOpts{})

	mux := http.NewServeMux()
	mux.Handle("/chat", rooms)
	mux.Handle("/chat/{room}", rooms)
	mux.Handle("/echo", rooms.Echo())
	servers := []*http.Server{newHTTPServer(mux)}
	addrs := []string{c.addr}
	if c.metricsAddr == "" {
		mux.Handle("GET /metrics", metricsHandler)
	} else {
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", metricsHandler)
		servers = append(servers, newHTTPServer(mm))
		addrs = append(addrs, c.metricsAddr)
	}
	servers[0].RegisterOnShutdown(func() { rooms.Shutdown(context.Background()) })

	served := make(chan error, len(servers))
	for i, srv := range servers {
		ln, err := net.Listen("tcp", addrs[i])
		if err != nil {
			for _, s := range servers[:i] {
				s.Close()
			}
			return errors.Join(err, rooms.Shutdown(ctx))
		}
		what := "chat"
		if i == 1 {
			what = "metrics"
		}
		log.Info("metrics: listening", "what", what, "url", "http://"+ln.Addr().String())
		go func() { served <- srv.Serve(ln) }()
	}

	pending := len(servers)
	select {
	case err = <-served: // a listener failed
		pending--
	case <-ctx.Done():
	}
	log.Info("metrics: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	for _, srv := range servers {
		err = errors.Join(err, srv.Shutdown(sctx))
	}
	// The HTTP servers have stopped; wait for the WebSockets to close.
	err = errors.Join(err, rooms.Shutdown(sctx))
	for range pending {
		if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
			err = errors.Join(err, serr)
		}
	}
	return err
}

// newHTTPServer bounds what a client can hold before its handler runs: the
// request's header (a client dribbling it byte by byte) and an idle
// keep-alive connection. WebSocket connections are hijacked, and wsroom
// bounds them itself.
func newHTTPServer(h http.Handler) *http.Server {
	return &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
}
