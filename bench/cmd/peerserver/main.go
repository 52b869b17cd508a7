// Command peerserver serves the benchmark protocol (bench/PROTOCOL.md) with
// one of the WebSocket libraries wsroom is compared against:
//
//	peerserver -impl gws -addr 127.0.0.1:9001
//
// Each implementation lives in the file named for it and is written the
// way that library's own documentation and examples write a chat room and
// an echo server, with the message size limit raised to 1 MiB.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
	"time"

	"wsroom.dev/internal/debugmem"
)

// maxMessageSize is the largest message every peer accepts.
const maxMessageSize = 1 << 20

// sendBuffer is the number of events queued per member, in the peers that
// have such a queue (melody's default, the gorilla example's, coder's
// room).
const sendBuffer = 256

// peer returns an implementation's chat and echo handlers and a function
// that waits for its connections to end and then stops its own goroutines.
type peer func() (chat, echo http.Handler, stop func())

var peers = map[string]peer{
	"melody":  newMelody,
	"gorilla": newGorilla,
	"gws":     newGWS,
	"coder":   newCoder,
	"bare":    newBare,
}

func peerNames() string {
	names := make([]string, 0, len(peers))
	for name := range peers {
		names = append(names, name)
	}
	sort.Strings(names)
	return strings.Join(names, ", ")
}

// newHandler returns the routes of PROTOCOL.md served by impl, and a
// function to call once every connection has ended, which stops impl's
// background goroutines (melody's hubs).
func newHandler(impl string) (http.Handler, func(), error) {
	newPeer, ok := peers[impl]
	if !ok {
		return nil, nil, fmt.Errorf("peerserver: unknown -impl %q (want one of %s)", impl, peerNames())
	}
	chat, echo, stop := newPeer()
	mux := http.NewServeMux()
	mux.Handle("GET /chat/{room}", chat)
	mux.Handle("GET /echo", echo)
	mux.Handle("GET /debug/mem", debugmem.Handler())
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile) // loopback only, like every route here
	return mux, stop, nil
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, err)
		}
		stop()
		os.Exit(2)
	}
}

// run serves until ctx is done, then closes the listener and returns. It
// does not wait for the WebSocket connections: they end with the process.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("peerserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	impl := fs.String("impl", "", "peer to serve: "+peerNames())
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("peerserver: unexpected arguments: %q", fs.Args())
	}
	h, _, err := newHandler(*impl)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("peerserver: %w", err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	fmt.Fprintf(stderr, "peerserver: %s listening on http://%s\n", *impl, ln.Addr())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return fmt.Errorf("peerserver: serve: %w", err)
	case <-ctx.Done():
	}
	// Close stops the listener and the plain HTTP connections; hijacked
	// WebSocket connections are the handlers' and end with the process.
	err = srv.Close()
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	if err != nil {
		return fmt.Errorf("peerserver: close: %w", err)
	}
	return nil
}
