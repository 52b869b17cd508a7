// Package conformance checks wsroom's WebSocket endpoints against RFC 6455
// the way the Autobahn TestSuite's fuzzing client checks a server, without
// Python 2 or Docker: its tests write raw client frames after a hand-written
// handshake and grade what comes back as Autobahn would (an exact echo, a
// close with a given code, or, where Autobahn accepts it, a dropped
// connection). The package itself only formats their results as a table
// (WriteTable); the suite and the raw-frame fuzz targets are its tests:
//
//	go test -race -count=1 ./internal/conformance                 # the table, pass or fail
//	go test -count=1 -v -run '^TestConformance$' ./internal/conformance   # and print it
//	WSROOM_CONFORMANCE_REPORT=/tmp/report.txt go test ./internal/conformance  # write it to a file
//	go test -run='^$' -fuzz=FuzzEchoFrames -fuzztime=10s ./internal/conformance
package conformance
