package main

import (
	"context"
	"io"
	"net/http"
	"testing"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/internal/wstest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestRun starts the program as `go run . -addr 127.0.0.1:0` would and uses
// it as people would (see wstest.CheckExample): its pages answer; in room
// test, alice, logged in by her cookie, and bob, who asks to join, see each
// other arrive and talk, and carol comes and goes; echo sends text and
// binary back; and stopped as SIGINT would, the program closes every
// WebSocket with 1001.
func TestRun(t *testing.T) {
	wstest.CheckExample(t, wstest.Example{
		Run:   run,
		Pages: map[string]string{"/": "/ws/chat/{room}", "/health": "ok", "/api/time": `"time":"`},
		Chat:  "/ws/chat/test",
		Login: http.Header{"Cookie": {"user=alice"}},
		Echo:  "/ws/echo",
	})
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-addr"}, {"extra"}, {"-addr", "256.0.0.1:x"}} {
		if err := run(context.Background(), args, io.Discard); err == nil {
			t.Errorf("run %q: no error", args)
		}
	}
}
