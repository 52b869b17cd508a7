// Package faults puts wsroom through what a chat server meets on the
// internet, on loopback only and bounded in count and time: peers that
// vanish or go half-open, a reverse proxy (Debian's nginx) with a short
// read timeout, SIGTERM to the example server with hundreds of members,
// floods (messages, connections, a dribbled handshake, pings, rooms), and
// fuzzing of the plain-text protocol and of member names through a real
// server. The package has no code of its own: see its tests.
//
//	go test -race -count=1 ./internal/faults
//	go test -run='^$' -fuzz='^FuzzPlainText$' -fuzztime=1m ./internal/faults
//	go test -run='^$' -fuzz='^FuzzJoinName$' -fuzztime=1m ./internal/faults
//
// The nginx test runs Debian's nginx (apt-get install -y nginx-light) as a
// subprocess with a private configuration on a spare port; without it the
// test skips with one line, or fails when WSROOM_REQUIRE_NGINX=1. The
// SIGTERM and handshake tests build and run examples/chat, as
// internal/interop does. WSROOM_FAULTS_HEAPPROFILE=/tmp/heap.prof writes
// the heap profile of TestRoomsCreatedAndAbandoned after its first round,
// for finding what stays.
package faults
