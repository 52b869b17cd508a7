package wsroompg_test

import (
	"context"
	"log"
	"net/http"

	"github.com/jackc/pgx/v5/pgxpool"

	wsroompg "wsroom.dev/adapters/postgres"
	"wsroom.dev/wsroom"
)

// A chat server whose names and history live in PostgreSQL: every server
// started with the same URL serves the same rooms.
func ExampleOpenStore() {
	ctx := context.Background()
	store, err := wsroompg.OpenStore(ctx, "postgres://chat@127.0.0.1:5432/chat", &wsroompg.Options{History: 500})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	rooms, err := wsroom.New(&wsroom.Options{Store: store}) // and a shared Broker, with several servers
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", rooms)
	log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
}

// The application's own pool, with the schema migrated as a deployment
// step rather than by every server at start.
func ExampleNewStore() {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, "postgres://chat@127.0.0.1:5432/chat")
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	store, err := wsroompg.NewStore(pool, &wsroompg.Options{Schema: "chat", SkipMigrate: true})
	if err != nil {
		log.Fatal(err)
	}
	if err := store.Migrate(ctx); err != nil { // idempotent; safe from several servers at once
		log.Fatal(err)
	}
	m, err := store.Append(ctx, "lobby", wsroom.Message{From: "bot", Text: "hello"})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("stored as %d", m.ID)
}
