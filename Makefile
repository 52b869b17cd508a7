# wsroom: every target loops over every Go module of the repository.
MODULES     := $(shell find . -name go.mod -not -path './.git/*' -not -path '*/testdata/*' -exec dirname {} \; | sort)
FUZZTIME    ?= 10s
# a new input is shrunk for at most this long (Go's default, 60s, would eat
# a short run: a 1 KiB input takes over 15s on 2 cores)
FUZZMINTIME ?= 2s
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2

.PHONY: test fuzz lint chat bench conformance interop soak

## test: every test of every module with the race detector, the allocation
## tests (which the race detector would distort), then a short fuzz
test:
	@set -e; for m in $(MODULES); do echo "== go test $$m"; (cd $$m && go test -race -count=1 ./...); done
	go test -count=1 -run 'Allocs|MemberStack|BurstSlows' ./wsroom
	cd internal/thirdparty && go test -count=1 -run 'MemberStack' ./...
	cd adapters/gin && go test -count=1 -run 'MemberStack' ./...
	@$(MAKE) --no-print-directory fuzz

## fuzz: the protocol fuzz targets, FUZZTIME each
fuzz:
	go test -run='^$$' -fuzz='^FuzzDecodeClientFrame$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./wsroom
	go test -run='^$$' -fuzz='^FuzzAppendString$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./wsroom
	go test -run='^$$' -fuzz='^FuzzEchoFrames$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/conformance
	go test -run='^$$' -fuzz='^FuzzChatFrames$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/conformance
	go test -run='^$$' -fuzz='^FuzzPlainText$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/faults
	go test -run='^$$' -fuzz='^FuzzJoinName$$' -fuzztime=$(FUZZTIME) -fuzzminimizetime=$(FUZZMINTIME) ./internal/faults

## conformance: the RFC 6455 table (Autobahn's server cases as raw frames)
## against echo and chat, printed
conformance:
	@r=$$(mktemp); WSROOM_CONFORMANCE_REPORT=$$r go test -race -count=1 -run '^TestConformance$$' ./internal/conformance; s=$$?; cat $$r; rm -f $$r; exit $$s

## soak: 10,000 connections in 100 rooms of examples/chat for 3 minutes
## (SOAKFLAGS: -duration 10m, -conns, -rooms, -rate); not part of make test
soak:
	go run ./internal/soak $(SOAKFLAGS)

## interop: examples/chat against python3-websockets and npm ws
interop:
	go test -race -count=1 -v -run '^TestInterop$$' ./internal/interop

## lint: gofmt, go vet and staticcheck on every module
lint:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do echo "== vet+staticcheck $$m"; (cd $$m && go vet ./... && go run $(STATICCHECK) ./...); done

## bench: the core's micro-benchmarks, then the suite against the peers
## (bench/README.md); BENCHFLAGS are passed to the suite, e.g. -quick
bench:
	go test -run='^$$' -bench=. -benchmem ./wsroom
	cd bench && go run ./cmd/wsbench $(BENCHFLAGS)

## chat: run the example chat server on http://127.0.0.1:8080
chat:
	go run -C examples/chat . $(CHATFLAGS)
