module wsroom.dev/examples/chi

go 1.24

replace (
	wsroom.dev => ../..
	wsroom.dev/adapters/chi => ../../adapters/chi
)

require (
	github.com/coder/websocket v1.8.15
	github.com/go-chi/chi/v5 v5.5.0
	wsroom.dev v0.0.0-00010101000000-000000000000
	wsroom.dev/adapters/chi v0.0.0-00010101000000-000000000000
)
