package wsroomnats_test

import (
	"context"
	"log"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	wsroomnats "wsroom.dev/adapters/nats"
	"wsroom.dev/wsroom"
)

// A chat server that shares its rooms with the other servers connected to
// the same NATS server. (The servers must share a Store too, for names and
// history: see the Redis and PostgreSQL adapters.)
func ExampleOpenBroker() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	dial, cancel := context.WithTimeout(ctx, 5*time.Second)
	broker, err := wsroomnats.OpenBroker(dial, "nats://127.0.0.1:4222", nil)
	cancel()
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close() // after the rooms have shut down

	rooms, err := wsroom.New(&wsroom.Options{Broker: broker})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", rooms)
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux}
	srv.RegisterOnShutdown(func() { rooms.Shutdown(context.Background()) })
	go func() {
		<-ctx.Done()
		srv.Shutdown(context.Background())
	}()
	if err := srv.ListenAndServe(); err != http.ErrServerClosed {
		log.Fatal(err)
	}
	rooms.Shutdown(context.Background()) // waits for the connections
}

// A Broker on the application's own connection, with its own options; the
// application closes the connection after the Broker.
func ExampleNewBroker() {
	nc, err := nats.Connect("nats://127.0.0.1:4222",
		nats.Name("chat"),
		nats.MaxReconnects(-1),
		nats.UserCredentials("chat.creds"),
	)
	if err != nil {
		log.Fatal(err)
	}
	defer nc.Close()

	broker, err := wsroomnats.NewBroker(nc, &wsroomnats.Options{Prefix: "chat.rooms."})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	rooms, err := wsroom.New(&wsroom.Options{Broker: broker})
	if err != nil {
		log.Fatal(err)
	}
	defer rooms.Shutdown(context.Background())
	http.Handle("/chat/{room}", rooms)
}
