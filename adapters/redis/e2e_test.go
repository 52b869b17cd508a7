package wsroomredis

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// TestTwoServers runs two wsroom Servers on one Redis, as two processes of
// a cluster would: members of one room on different servers see each other
// arrive, speak and leave.
func TestTwoServers(t *testing.T) {
	t.Parallel()
	store, _ := newTestStore(t, StoreOptions{})
	ctx := testContext(t)
	room := "e2e-" + random()
	var urls []string
	for range 2 {
		srv, err := wsroom.New(&wsroom.Options{Store: store, Broker: newTestBroker(t, BrokerOptions{})})
		if err != nil {
			t.Fatal(err)
		}
		mux := http.NewServeMux()
		mux.Handle("/chat/{room}", srv)
		ts := httptest.NewServer(mux)
		t.Cleanup(func() {
			srv.Shutdown(ctx)
			ts.Close()
		})
		urls = append(urls, "ws"+strings.TrimPrefix(ts.URL, "http")+"/chat/"+room)
	}
	alice := join(ctx, t, urls[0], "alice")
	next(ctx, t, alice, "welcome")
	bob := join(ctx, t, urls[1], "bob")
	if w := next(ctx, t, bob, "welcome"); !slices.Equal(w.Members, []string{"alice", "bob"}) {
		t.Fatalf("bob's welcome lists %v", w.Members)
	}
	if e := next(ctx, t, alice, "join"); e.Name != "bob" {
		t.Fatalf("alice saw %q join", e.Name)
	}
	if err := bob.c.Write(ctx, websocket.MessageText, []byte(`{"type":"message","text":"hello from the other server"}`)); err != nil {
		t.Fatal(err)
	}
	if e := next(ctx, t, alice, "message"); e.From != "bob" || e.Text != "hello from the other server" {
		t.Fatalf("alice got %+v", e)
	}
	// A third member, on the first server, sees bob's message in its welcome:
	// the history is shared too.
	carol := join(ctx, t, urls[0], "carol")
	if w := next(ctx, t, carol, "welcome"); len(w.History) != 1 || w.History[0].Text != "hello from the other server" {
		t.Fatalf("carol's welcome has history %+v", w.History)
	}
	carol.c.CloseNow()
	alice.c.Close(websocket.StatusNormalClosure, "")
	left := []string{next(ctx, t, bob, "leave").Name, next(ctx, t, bob, "leave").Name}
	slices.Sort(left)
	if !slices.Equal(left, []string{"alice", "carol"}) {
		t.Fatalf("bob saw %v leave", left)
	}
	bob.c.Close(websocket.StatusNormalClosure, "")
}

// event is what the tests read of a server event.
type event struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	From    string   `json:"from"`
	Text    string   `json:"text"`
	Members []string `json:"members"`
	History []struct {
		Text string `json:"text"`
	} `json:"history"`
}

// client is a member of the JSON protocol; pending holds the events of a
// frame not read yet.
type client struct {
	c       *websocket.Conn
	pending []event
}

func join(ctx context.Context, t *testing.T, url, name string) *client {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.CloseNow() })
	if err := c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"join","name":%q}`, name)); err != nil {
		t.Fatal(err)
	}
	return &client{c: c}
}

// next returns the next event of type typ, skipping the others (a frame
// may hold several events, one per line).
func next(ctx context.Context, t *testing.T, c *client, typ string) event {
	t.Helper()
	for {
		for len(c.pending) > 0 {
			e := c.pending[0]
			c.pending = c.pending[1:]
			if e.Type == "error" {
				t.Fatalf("waiting for %s: error %+v", typ, e)
			}
			if e.Type == typ {
				return e
			}
		}
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", typ, err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			var e event
			if err := json.Unmarshal([]byte(line), &e); err != nil {
				t.Fatalf("bad event %q: %v", line, err)
			}
			c.pending = append(c.pending, e)
		}
	}
}
