// Command gin is an existing gin application (a home page, a health check
// and a JSON API, behind gin's Logger and Recovery) to which wsroom adds
// chat rooms and an echo endpoint, through the adapter
// wsroom.dev/adapters/gin:
//
//	ws := r.Group("/ws")
//	wsroomgin.ChatRoutes(ws, "/chat/:room", rooms)
//	ws.GET("/echo", wsroomgin.Echo(rooms))
//
//	cd examples/gin && go run .             # http://127.0.0.1:8080
//	cd examples/gin && go run . -addr :9000
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

	"github.com/gin-gonic/gin"

	wsroomgin "wsroom.dev/adapters/gin"
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

// session stands in for the application's session middleware: it stores
// the user named by the "user" cookie with c.Set.
func session(c *gin.Context) {
	if user, err := c.Cookie("user"); err == nil && user != "" {
		c.Set("user", user)
	}
	c.Next()
}

// newApp returns the application's engine and the wsroom Server served
// under /ws.
func newApp(log *slog.Logger, requestLog io.Writer) (http.Handler, *wsroom.Server, error) {
	rooms, err := wsroom.New(&wsroom.Options{
		Logger: log,
		Hooks: wsroom.Hooks{
			// A logged-in user joins at once under its name; anyone else
			// picks a name with a join message.
			Identify: func(ctx context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
				user, _ := wsroomgin.Value(e.Request, "user")
				name, _ := user.(string)
				return wsroom.IdentifyReply{Name: name}, nil
			},
		},
	})
	if err != nil {
		return nil, nil, err
	}
	r := gin.New()
	r.Use(gin.LoggerWithWriter(requestLog), gin.Recovery(), session)
	r.GET("/", func(c *gin.Context) {
		c.String(http.StatusOK, "An existing gin application, now with chat:\n"+
			"  ws://"+c.Request.Host+"/ws/chat/{room}  (subprotocol wsroom.v1 for JSON, none for plain text)\n"+
			"  ws://"+c.Request.Host+"/ws/echo\n")
	})
	r.GET("/health", func(c *gin.Context) { c.String(http.StatusOK, "ok\n") })
	r.GET("/api/time", func(c *gin.Context) {
		c.JSON(http.StatusOK, gin.H{"time": time.Now().UTC().Format(time.RFC3339)})
	})
	ws := r.Group("/ws")
	wsroomgin.ChatRoutes(ws, "/chat/:room", rooms)
	wsroomgin.ChatRoutes(ws, "/chat", rooms) // the default room
	ws.GET("/echo", wsroomgin.Echo(rooms))
	return r, rooms, nil
}

// run serves until ctx is done, then shuts down gracefully.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("gin", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "address to listen on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	h, rooms, err := newApp(log, stderr)
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
	log.Info("gin: listening", "url", "http://"+ln.Addr().String())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	log.Info("gin: shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	// Shut the HTTP server down, then wait for the rooms to close.
	err = errors.Join(srv.Shutdown(sctx), rooms.Shutdown(sctx))
	if serr := <-served; !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, serr)
	}
	return err
}
