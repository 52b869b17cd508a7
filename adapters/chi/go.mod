module wsroom.dev/adapters/chi

go 1.24

replace wsroom.dev => ../..

require (
	github.com/go-chi/chi/v5 v5.5.0
	wsroom.dev v0.0.0-00010101000000-000000000000
)

require github.com/coder/websocket v1.8.15
