package thirdparty

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/go-chi/chi/v5"
	"github.com/go-chi/chi/v5/middleware"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// TestChi mounts the Server on chi, inside a route group with middleware:
// chi sets r.PathValue("room"), so the room comes from the path.
func TestChi(t *testing.T) {
	rooms, err := wsroom.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := chi.NewRouter()
	r.Use(middleware.RequestID, middleware.Recoverer)
	r.Route("/api", func(r chi.Router) {
		r.Handle("/chat/{room}", rooms)
		r.Handle("/chat", rooms)
		r.Handle("/echo", rooms.Echo())
	})
	ts := httptest.NewServer(r)
	defer ts.Close()
	defer rooms.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	base := "ws" + strings.TrimPrefix(ts.URL, "http") + "/api"
	for path, room := range map[string]string{"/chat/kitchen": "kitchen", "/chat": "lobby"} {
		c, _, err := websocket.Dial(ctx, base+path, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		if err != nil {
			t.Fatal(err)
		}
		c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","name":"alice"}`))
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(b), `"room":"`+room+`"`) {
			t.Fatalf("%s: welcome %s, want room %s", path, b, room)
		}
		c.Close(websocket.StatusNormalClosure, "")
	}
	c, _, err := websocket.Dial(ctx, base+"/echo", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte("via chi"))
	if _, b, err := c.Read(ctx); err != nil || string(b) != "via chi" {
		t.Fatalf("echo: %q %v", b, err)
	}
	resp, err := http.Get(ts.URL + "/api/chat/kitchen")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Fatalf("plain GET: %d", resp.StatusCode)
	}
}
