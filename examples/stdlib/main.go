// Command stdlib is an existing net/http application (a home page, a
// health check and a JSON API) to which wsroom adds chat rooms and an echo
// endpoint with one line:
//
//	mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
//
// which serves /ws/chat/{room}, /ws/chat (the default room) and /ws/echo.
//
//	go run ./examples/stdlib             # http://127.0.0.1:8080
//	go run ./examples/stdlib -addr :9000
package main

import (
	"context"
	"encoding/json"
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

// userKey is where the session middleware puts the user.
type userKey struct{}

// session stands in for the application's session middleware: it puts the
// user named by the "user" cookie in the request's context.
func session(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c, err := r.Cookie("user"); err == nil && c.Value != "" {
			r = r.WithContext(context.WithValue(r.Context(), userKey{}, c.Value))
		}
		next.ServeHTTP(w, r)
	})
}

// newApp returns the application's routes and the wsroom Server behind
// /ws/.
func newApp(log *slog.Logger) (http.Handler, *wsroom.Server, error) {
	rooms, err := wsroom.New(&wsroom.Options{
		Logger: log,
		Hooks: wsroom.Hooks{
			// A logged-in user joins at once under its name; anyone else
			// picks a name with a join message.
			Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
				user, _ := e.Request.Context().Value(userKey{}).(string)
				return wsroom.IdentifyReply{Name: user}, nil
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "An existing application, now with chat:\n"+
			"  ws://"+r.Host+"/ws/chat/{room}  (subprotocol wsroom.v1 for JSON, none for plain text)\n"+
			"  ws://"+r.Host+"/ws/echo\n")
	})
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.HandleFunc("GET /api/time", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]string{"time": time.Now().UTC().Format(time.RFC3339)})
	})
	mux.Handle("/ws/", http.StripPrefix("/ws", rooms.Handler()))
	return session(mux), rooms, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("stdlib", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	h, rooms, err := newApp(log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	// http.Server.Shutdown does not close hijacked (WebSocket)
	// connections: this starts closing them (1001) when it begins.
	srv.RegisterOnShutdown(func() { rooms.Shutdown(context.Background()) })
	log.Info("stdlib: listening", "url", "http://"+ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("stdlib: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Shutdown the HTTP server, then wait for the rooms to close.
	err = errors.Join(srv.Shutdown(sctx), rooms.Shutdown(sctx))
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
