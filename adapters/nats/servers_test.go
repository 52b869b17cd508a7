package wsroomnats

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"wsroom.dev/wsroom"
)

// TestTwoServers runs two wsroom Servers, each with its own NATS broker and
// a shared store, the way two processes behind a load balancer would: a
// member on one hears a member on the other.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	requireNATS(t)
	store := wsroom.NewMemoryStore(nil)
	serve := func(b *Broker) string {
		rooms, err := wsroom.New(&wsroom.Options{Store: store, Broker: b, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/chat/{room}", rooms)
		ts := httptest.NewServer(mux)
		t.Cleanup(ts.Close)
		t.Cleanup(func() { rooms.Shutdown(context.Background()) })
		return "ws" + strings.TrimPrefix(ts.URL, "http") + "/chat/"
	}
	b1, _ := open(t, natsURL(), nil)
	b2, _ := open(t, natsURL(), nil)
	room := fmt.Sprintf("two servers %d a.b*>", time.Now().UnixNano())
	ctx := testCtx(t)
	join := func(base, name string) *websocket.Conn {
		c, _, err := websocket.Dial(ctx, base+url.PathEscape(room), &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.CloseNow() })
		if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","name":%q}`, name)); err != nil {
			t.Fatal(err)
		}
		expect(t, ctx, c, `"type":"welcome"`)
		return c
	}
	alice := join(serve(b1), "alice")
	bob := join(serve(b2), "bob")
	expect(t, ctx, alice, `{"type":"join","name":"bob"}`)
	if err := bob.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hello from server 2"}`)); err != nil {
		t.Fatal(err)
	}
	expect(t, ctx, alice, `"text":"hello from server 2"`)
	bob.Close(websocket.StatusNormalClosure, "")
	expect(t, ctx, alice, `{"type":"leave","name":"bob"}`)
}

// expect reads frames until one holds want.
func expect(t *testing.T, ctx context.Context, c *websocket.Conn, want string) {
	t.Helper()
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if strings.Contains(string(b), want) {
			return
		}
	}
}
