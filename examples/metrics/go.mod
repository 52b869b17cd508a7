module wsroom.dev/examples/metrics

go 1.24

replace (
	wsroom.dev => ../..
	wsroom.dev/adapters/prometheus => ../../adapters/prometheus
)

require (
	github.com/coder/websocket v1.8.15
	github.com/prometheus/client_golang v1.23.2
	wsroom.dev v0.0.0
	wsroom.dev/adapters/prometheus v0.0.0
)

require (
	github.com/beorn7/perks v1.0.1 // indirect
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/munnerz/goautoneg v0.0.0-20191010083416-a7dc8b61c822 // indirect
	github.com/prometheus/client_model v0.6.2 // indirect
	github.com/prometheus/common v0.66.1 // indirect
	github.com/prometheus/procfs v0.16.1 // indirect
	go.yaml.in/yaml/v2 v2.4.2 // indirect
	golang.org/x/sys v0.35.0 // indirect
	google.golang.org/protobuf v1.36.8 // indirect
)
