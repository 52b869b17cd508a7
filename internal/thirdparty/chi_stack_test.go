//go:build !race

package thirdparty

import (
	"context"
	"fmt"
	"net/http/httptest"
	"runtime/debug"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"wsroom.dev/wsroom"
)

// TestChiMemberStackStaysSmall mounts the Server under chi and its
// middleware, whose frames sit under every connection's goroutine, and caps
// goroutine stacks at 8 KiB while members join and talk: a connection must
// not need more stack under chi than under ServeMux (see the wsroom test of
// the same name).
func TestChiMemberStackStaysSmall(t *testing.T) {
	rooms, err := wsroom.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.Logger, middleware.Recoverer)
	r.Route("/api/v1", func(r chi.Router) {
		r.Handle("/chat/{room}", rooms)
	})
	ts := httptest.NewServer(r)
	t.Cleanup(func() { // after the clients' cleanups: they close first
		rooms.Shutdown(context.Background())
		ts.Close()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/api/v1/chat/r"
	join := func(name string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","name":%q}`, name))
		c.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hi"}`))
		if _, _, err := c.Read(ctx); err != nil {
			t.Fatal(err)
		}
		return c
	}
	join("warm")
	old := debug.SetMaxStack(8 << 10)
	defer debug.SetMaxStack(old)
	for i := range 10 {
		join(fmt.Sprint("m", i))
	}
}
