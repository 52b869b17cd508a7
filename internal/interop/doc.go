// Package interop checks wsroom against independent, strict WebSocket
// clients: Debian's python3-websockets (python/client.py) and the npm ws
// package (node/client.mjs). Its test builds and runs the example chat
// server, drives each client through echo, both chat protocols and a flood
// ended by SIGTERM, and fails on anything a client reports. The package
// has no code of its own: see interop_test.go.
//
// Setup (skipped, with one line saying so, when missing; WSROOM_REQUIRE_INTEROP=1
// makes it fail instead):
//
//	apt-get install -y python3-websockets   # for /usr/bin/python3
//	(cd internal/interop/node && npm ci)
package interop
