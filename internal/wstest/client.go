package wstest

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// UserHeader is the request header in which the tests' auth middleware
// (each router's own) finds the user; DialAs and User set it.
const UserHeader = "X-User"

// User returns a header that names the user in UserHeader, or nil when
// user is empty.
func User(user string) http.Header {
	if user == "" {
		return nil
	}
	return http.Header{UserHeader: {user}}
}

// Event is what the tests read of a server event. A field the event does
// not carry is empty.
type Event struct {
	Type    string   `json:"type"`
	Room    string   `json:"room"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
	From    string   `json:"from"`
	Text    string   `json:"text"`
}

// Client is a client of the JSON protocol (wsroom.Subprotocol). A frame
// may hold several events, one per line; Next hands them out one at a
// time. A Client belongs to one goroutine.
type Client struct {
	// Conn is the connection, for what the methods do not cover.
	Conn    *websocket.Conn
	pending []Event
}

// Dial connects to url offering wsroom.Subprotocol, with the request
// header h (nil for none), and fails the test if it cannot. The
// connection is closed when the test ends.
func Dial(ctx context.Context, t testing.TB, url string, h http.Header) (*Client, *http.Response) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}, HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &Client{Conn: c}, resp
}

// DialAs connects as user, named in UserHeader, whom the server's Identify
// hook joins at once, and returns the welcome. It fails unless the first
// event is user's welcome.
func DialAs(ctx context.Context, t testing.TB, url, user string) (*Client, Event) {
	t.Helper()
	c, _ := Dial(ctx, t, url, User(user))
	return c, c.welcome(ctx, t, user)
}

// Join connects with no header, asks to join as name, and returns the
// welcome. It fails unless the first event is name's welcome.
func Join(ctx context.Context, t testing.TB, url, name string) (*Client, Event) {
	t.Helper()
	c, _ := Dial(ctx, t, url, nil)
	c.send(ctx, t, Event{Type: "join", Name: name})
	return c, c.welcome(ctx, t, name)
}

func (c *Client) welcome(ctx context.Context, t testing.TB, name string) Event {
	t.Helper()
	w := c.Next(ctx, t)
	if w.Type != "welcome" || w.Name != name {
		t.Fatalf("%s: got %+v, want a welcome", name, w)
	}
	return w
}

// Say sends a message with text to the client's room.
func (c *Client) Say(ctx context.Context, t testing.TB, text string) {
	t.Helper()
	c.send(ctx, t, Event{Type: "message", Text: text})
}

// send writes the request r, with only its non-empty fields.
func (c *Client) send(ctx context.Context, t testing.TB, r Event) {
	t.Helper()
	b, err := json.Marshal(struct {
		Type string `json:"type"`
		Name string `json:"name,omitempty"`
		Text string `json:"text,omitempty"`
	}{r.Type, r.Name, r.Text})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Conn.Write(ctx, websocket.MessageText, b); err != nil {
		t.Fatal(err)
	}
}

// Next returns the next event, reading a frame when none is left of the
// last one. It fails if the connection ends or ctx is done first.
func (c *Client) Next(ctx context.Context, t testing.TB) Event {
	t.Helper()
	for len(c.pending) == 0 {
		_, b, err := c.Conn.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			var e Event
			if err := json.Unmarshal(line, &e); err != nil {
				t.Fatalf("event %q: %v", line, err)
			}
			c.pending = append(c.pending, e)
		}
	}
	e := c.pending[0]
	c.pending = c.pending[1:]
	return e
}

// Expect returns the next event and fails unless it is of type typ and
// about name: the member welcomed, who joined or who left (Name), or the
// sender of a message (From).
func (c *Client) Expect(ctx context.Context, t testing.TB, typ, name string) Event {
	t.Helper()
	e := c.Next(ctx, t)
	if e.Type != typ || e.Name+e.From != name {
		t.Fatalf("got %+v, want %s of %s", e, typ, name)
	}
	return e
}

// Until skips events until one of type typ, and returns it.
func (c *Client) Until(ctx context.Context, t testing.TB, typ string) Event {
	t.Helper()
	for {
		if e := c.Next(ctx, t); e.Type == typ {
			return e
		}
	}
}

// Close closes the connection normally (1000), as a person leaving the
// page does.
func (c *Client) Close() {
	c.Conn.Close(websocket.StatusNormalClosure, "")
}
