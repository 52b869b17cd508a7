package wsroomredis_test

import (
	"context"
	"log"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"

	wsroomredis "wsroom.dev/adapters/redis"
	"wsroom.dev/wsroom"
)

// This example serves chat rooms that several servers share through one
// Redis: run it on each server, behind one load balancer.
func Example() {
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := wsroomredis.NewStore(client, nil) // 1000 messages per room, 30 days
	if err != nil {
		log.Fatal(err)
	}
	broker, err := wsroomredis.NewBroker(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	rooms, err := wsroom.New(&wsroom.Options{Store: store, Broker: broker})
	if err != nil {
		log.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", rooms)
	srv := &http.Server{Addr: "127.0.0.1:8080", Handler: mux}
	srv.RegisterOnShutdown(func() { rooms.Shutdown(context.Background()) })
	log.Fatal(srv.ListenAndServe())
}

// OpenStore and OpenBroker open connections of their own from a URL, and
// close them in Close.
func ExampleOpenStore() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	store, err := wsroomredis.OpenStore(ctx, "redis://127.0.0.1:6379/0", &wsroomredis.StoreOptions{
		Prefix:     "chat:",
		History:    500,
		HistoryTTL: 7 * 24 * time.Hour,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer store.Close()
	broker, err := wsroomredis.OpenBroker(ctx, "redis://127.0.0.1:6379/0", &wsroomredis.BrokerOptions{Prefix: "chat:"})
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()

	m, err := store.Append(ctx, "lobby", wsroom.Message{From: "bot", Text: "hello", Time: time.Now()})
	if err != nil {
		log.Fatal(err)
	}
	log.Printf("message %d stored", m.ID)
}

// A Redis Cluster works the same way: presence keys share one slot, each
// room's history keys share the room's slot.
func ExampleNewStore_cluster() {
	client := redis.NewClusterClient(&redis.ClusterOptions{
		Addrs:                 []string{"redis-1:6379", "redis-2:6379", "redis-3:6379"},
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	store, err := wsroomredis.NewStore(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	broker, err := wsroomredis.NewBroker(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer broker.Close()
	_, _ = wsroom.New(&wsroom.Options{Store: store, Broker: broker})
}

// With Sentinel, the failover client follows the master.
func ExampleNewStore_sentinel() {
	client := redis.NewFailoverClient(&redis.FailoverOptions{
		MasterName:            "mymaster",
		SentinelAddrs:         []string{"sentinel-1:26379", "sentinel-2:26379", "sentinel-3:26379"},
		ContextTimeoutEnabled: true,
	})
	defer client.Close()
	store, err := wsroomredis.NewStore(client, nil)
	if err != nil {
		log.Fatal(err)
	}
	_ = store
}
