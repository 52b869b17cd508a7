// Package cluster holds the tests that run several examples/chat servers,
// each its own process, as one chat over shared backends: Redis (store and
// broker), or PostgreSQL (store) and NATS (broker). It has no code of its
// own; README.md shows the same setup step by step, and what members see
// when a server crashes or a backend goes down.
//
//	go test -race ./...                            # skips what has no backend
//	WSROOM_REQUIRE_BACKENDS=1 go test -race ./...  # fails instead
package cluster
