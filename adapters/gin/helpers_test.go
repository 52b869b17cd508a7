package wsroomgin_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/gin-gonic/gin"

	wsroomgin "wsroom.dev/adapters/gin"
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) {
	gin.SetMode(gin.TestMode)
	leakcheck.Main(m)
}

// auth is an application's authentication middleware: the user named by
// the X-User header is stored with c.Set("user", …); without one, 401.
func auth(c *gin.Context) {
	user := c.GetHeader("X-User")
	if user == "" {
		c.AbortWithStatus(http.StatusUnauthorized)
		return
	}
	c.Set("user", user)
	c.Next()
}

// identify names the member after the user the auth middleware stored.
func identify(_ context.Context, e wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
	user, _ := wsroomgin.Value(e.Request, "user")
	name, _ := user.(string)
	return wsroom.IdentifyReply{Name: name}, nil
}

// newRooms returns a Server that names members with identify, shut down
// when the test ends (after the test's servers and clients, whose
// cleanups are registered later).
func newRooms(t *testing.T, opts *wsroom.Options) *wsroom.Server {
	t.Helper()
	var o wsroom.Options
	if opts != nil {
		o = *opts
	}
	if o.Hooks.Identify == nil {
		o.Hooks.Identify = identify
	}
	rooms, err := wsroom.New(&o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rooms.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rooms
}

func serve(t *testing.T, h http.Handler) (httpURL, wsURL string) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL, "ws" + strings.TrimPrefix(ts.URL, "http")
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// event is what the tests read of a server event.
type event struct {
	Type    string   `json:"type"`
	Room    string   `json:"room"`
	Name    string   `json:"name"`
	Members []string `json:"members"`
	From    string   `json:"from"`
	Text    string   `json:"text"`
}

// client is a client of the JSON protocol; a frame may hold several
// events, one per line.
type client struct {
	c       *websocket.Conn
	pending []event
}

func dial(ctx context.Context, t *testing.T, url string, h http.Header) (*client, *http.Response) {
	t.Helper()
	c, resp, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}, HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.CloseNow() })
	return &client{c: c}, resp
}

// dialAs connects as the user, whom the Identify hook joins at once, and
// returns the welcome.
func dialAs(ctx context.Context, t *testing.T, url, user string) (*client, event) {
	t.Helper()
	c, _ := dial(ctx, t, url, http.Header{"X-User": {user}})
	w := c.next(ctx, t)
	if w.Type != "welcome" || w.Name != user {
		t.Fatalf("%s: got %+v, want a welcome", user, w)
	}
	return c, w
}

func (c *client) say(ctx context.Context, t *testing.T, text string) {
	t.Helper()
	if err := c.c.Write(ctx, websocket.MessageText, fmt.Appendf(nil, `{"type":"message","text":%q}`, text)); err != nil {
		t.Fatal(err)
	}
}

func (c *client) next(ctx context.Context, t *testing.T) event {
	t.Helper()
	for len(c.pending) == 0 {
		_, b, err := c.c.Read(ctx)
		if err != nil {
			t.Fatalf("read: %v", err)
		}
		for line := range bytes.SplitSeq(b, []byte("\n")) {
			var e event
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

// expect fails unless the next event is of type typ and about name (the
// member who joined or left, or the sender of a message).
func (c *client) expect(ctx context.Context, t *testing.T, typ, name string) event {
	t.Helper()
	e := c.next(ctx, t)
	if e.Type != typ || e.Name+e.From != name {
		t.Fatalf("got %+v, want %s of %s", e, typ, name)
	}
	return e
}

// chat has two users talk in the room at url: each sees the other arrive,
// speak and leave.
func chat(ctx context.Context, t *testing.T, url string) {
	t.Helper()
	alice, _ := dialAs(ctx, t, url, "alice")
	bob, w := dialAs(ctx, t, url, "bob")
	if got := strings.Join(w.Members, ","); got != "alice,bob" {
		t.Fatalf("bob's welcome lists %q", got)
	}
	alice.expect(ctx, t, "join", "bob")
	bob.say(ctx, t, "hi alice")
	if e := alice.expect(ctx, t, "message", "bob"); e.Text != "hi alice" {
		t.Fatalf("alice got %+v", e)
	}
	alice.say(ctx, t, "hi bob")
	bob.expect(ctx, t, "message", "bob") // a sender gets its own message too
	bob.expect(ctx, t, "message", "alice")
	alice.expect(ctx, t, "message", "alice")
	bob.c.Close(websocket.StatusNormalClosure, "")
	alice.expect(ctx, t, "leave", "bob")
	alice.c.Close(websocket.StatusNormalClosure, "")
}

// echo checks that the echo endpoint at url sends text and binary
// messages back with their type.
func echo(ctx context.Context, t *testing.T, url string, h http.Header) {
	t.Helper()
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	defer c.CloseNow()
	for _, m := range []struct {
		typ  websocket.MessageType
		data []byte
	}{{websocket.MessageText, []byte("ping")}, {websocket.MessageBinary, []byte{0, 1, 2, 0xff}}} {
		if err := c.Write(ctx, m.typ, m.data); err != nil {
			t.Fatal(err)
		}
		typ, b, err := c.Read(ctx)
		if err != nil || typ != m.typ || !bytes.Equal(b, m.data) {
			t.Fatalf("echo of %v %q: %v %q %v", m.typ, m.data, typ, b, err)
		}
	}
	c.Close(websocket.StatusNormalClosure, "")
}

// lines is an io.Writer that hands each line written to it to a channel,
// for loggers whose output a test waits for. Make it with room for every
// line the test may log: a line that does not fit is dropped, so that a
// logger never blocks.
type lines chan string

func (l lines) Write(p []byte) (int, error) {
	for line := range strings.SplitSeq(strings.TrimRight(string(p), "\n"), "\n") {
		select {
		case l <- line:
		default:
		}
	}
	return len(p), nil
}

// waitLine waits for a line that contains every one of subs.
func (l lines) waitLine(ctx context.Context, t *testing.T, subs ...string) string {
	t.Helper()
	for {
		select {
		case line := <-l:
			ok := true
			for _, s := range subs {
				ok = ok && strings.Contains(line, s)
			}
			if ok {
				return line
			}
		case <-ctx.Done():
			t.Fatalf("no log line with %q", subs)
		}
	}
}
