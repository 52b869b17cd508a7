module wsroom.dev/adapters/redis

go 1.24

require (
	github.com/coder/websocket v1.8.15
	github.com/redis/go-redis/v9 v9.22.0
	wsroom.dev v0.0.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	go.uber.org/atomic v1.11.0 // indirect
	golang.org/x/sys v0.30.0 // indirect
)

replace wsroom.dev => ../..
