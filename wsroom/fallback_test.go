package wsroom_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestFallbackChatsWithWebSocket: a fallback member and a WebSocket member
// share a room: each sees the other arrive, messages go both ways, binary
// both ways (base64 for the stream), history and members pages answer,
// and the fallback member's departure is announced once.
func TestFallbackChatsWithWebSocket(t *testing.T) {
	t.Parallel()
	lv := newLeaves()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{OnLeave: lv.hook}})
	ws, _ := e.join("mixed", "wendy")
	ws.say("before")
	ws.until("message")

	sse, w := e.sseJoin("mixed", "sam")
	assert.Equal(t, "members", "[sam wendy]", fmt.Sprint(w.Members))
	assert.Equal(t, "history", 1, len(w.History))
	assert.Equal(t, "arrival", "sam", ws.expect("join").Name)

	sse.say("hi from the fallback")
	m := ws.expect("message")
	assert.Equal(t, "from", "sam", m.From)
	assert.Equal(t, "text", "hi from the fallback", m.Text)
	assert.Equal(t, "echo", "hi from the fallback", sse.expect("message").Text)

	ws.say("hi from the socket")
	m = sse.expect("message")
	assert.Equal(t, "from", "wendy", m.From)
	assert.Equal(t, "SSE id is the message id", m.ID, sse.lastID)

	// Several frames in one POST, one a line.
	assert.Equal(t, "batched POST", http.StatusAccepted, sse.postTo("", "application/json",
		[]byte(`{"type":"history","limit":10}`+"\r\n"+`{"type":"members"}`), nil))
	h := sse.until("history")
	assert.Equal(t, "history page", 3, len(h.Messages))
	assert.Equal(t, "members page", "[sam wendy]", fmt.Sprint(sse.expect("members").Members))

	pic := bytes.Repeat([]byte{0, 1, 2, 0xff}, 300)
	assert.Success(t, ws.c.Write(testContext(t), websocket.MessageBinary, pic))
	ws.say("after the picture")
	sse.until("message")
	assert.Equal(t, "binary as base64", true, len(sse.bins) == 1 && bytes.Equal(sse.bins[0], pic))
	assert.Equal(t, "binary POST", http.StatusAccepted, sse.postTo("", "application/octet-stream", pic[:7], nil))
	sse.say("after mine")
	for ws.until("message").Text != "after mine" {
	}
	assert.Equal(t, "relayed", true, len(ws.bins) == 1 && string(ws.bins[0]) == string(pic[:7]))

	st := e.srv.Stats()
	assert.Equal(t, "streams", int64(1), st.Streams)
	assert.Equal(t, "connections", int64(2), st.Connections)

	sse.close()
	assert.Equal(t, "departure", "sam", ws.until("leave").Name)
	ev := lv.wait(t)
	assert.Equal(t, "reason", wsroom.ReasonClosed, ev.Reason)
	assert.Equal(t, "code", 1006, ev.Code)
	ws.say("still here")
	ws.until("message")
	assert.Equal(t, "one OnLeave", 1, len(lv.all()))
	waitFor(t, "stream gone", func() bool { return e.srv.Stats().Streams == 0 })
}

// TestFallbackThroughProxyWithoutUpgrade: behind a reverse proxy that
// strips Upgrade, a WebSocket cannot connect but the fallback works, and
// chats with a WebSocket member connected directly.
func TestFallbackThroughProxyWithoutUpgrade(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	target, _ := url.Parse(e.ts.URL)
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.FlushInterval = -1 // as a well-configured proxy streams
	proxy := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Header.Del("Upgrade") // the proxy does not do WebSocket
		r.Header.Del("Connection")
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(proxy.Close) // after the streams' cleanups

	ctx := testContext(t)
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(proxy.URL, "http")+"/chat/p", nil)
	assert.True(t, "no WebSocket through the proxy", err != nil && resp != nil && resp.StatusCode == http.StatusUpgradeRequired)

	ws, _ := e.join("p", "direct")
	c, resp := openStream(t, proxy.URL, "/chat/p", nil)
	assert.True(t, "stream through the proxy", c != nil && resp.StatusCode == 200)
	c.postJSON(map[string]any{"type": "join", "name": "proxied"})
	c.expect("welcome")
	ws.expect("join")
	c.say("through the proxy")
	assert.Equal(t, "message", "through the proxy", ws.expect("message").Text)
	assert.Equal(t, "own echo", "through the proxy", c.until("message").Text)
	ws.say("back")
	assert.Equal(t, "reply", "back", c.until("message").Text)
	c.close()
	assert.Equal(t, "leave", "proxied", ws.until("leave").Name)
}

// TestFallbackResume: a dropped stream comes back with Last-Event-ID (as
// EventSource does) or since, and gets exactly what it missed.
func TestFallbackResume(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	ws, _ := e.join("r", "talker")
	for i := range 3 {
		ws.say(fmt.Sprint("m", i))
		ws.until("message")
	}
	c, w := e.sseJoin("r", "listener")
	assert.Equal(t, "history", 3, len(w.History))
	assert.Equal(t, "the welcome's id is its last message's", w.History[2].ID, c.lastID)
	ws.say("m3")
	c.until("message")
	last := c.lastID
	c.close()
	ws.until("leave")
	for i := 4; i < 7; i++ {
		ws.say(fmt.Sprint("m", i))
		ws.until("message")
	}

	c2, resp := openStream(t, e.ts.URL, "/chat/r", http.Header{"Last-Event-ID": {last}})
	assert.Equal(t, "status", 200, resp.StatusCode)
	c2.postJSON(map[string]any{"type": "join", "name": "listener"})
	w = c2.expect("welcome")
	var got []string
	for _, m := range w.History {
		got = append(got, m.Text)
	}
	assert.Equal(t, "missed, once", "[m4 m5 m6]", fmt.Sprint(got))
	assert.Equal(t, "no gap", false, w.Gap)
	ws.say("m7")
	assert.Equal(t, "live again", "m7", c2.until("message").Text)

	// since in the URL wins over Last-Event-ID.
	c2.close()
	ws.until("leave")
	c3, _ := openStream(t, e.ts.URL, "/chat/r?since="+w.History[1].ID, http.Header{"Last-Event-ID": {"1"}})
	c3.postJSON(map[string]any{"type": "join", "name": "listener"})
	w = c3.expect("welcome")
	assert.Equal(t, "since", 2, len(w.History))
	assert.Equal(t, "no since in the POST URL", false, strings.Contains(c3.hello.Post, "since"))
}

// TestFallbackPostFlood: frames over the rate limit are refused with
// rate_limited and, sustained, close the stream with 1008; POSTs beyond
// the small queue are refused with 429.
func TestFallbackPostFlood(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: 5, RateBurst: 5})
	c, _ := e.sseJoin("flood", "f")
	limited := 0
	for range 30 {
		if st := c.postTo("", "text/plain", []byte(`{"type":"message","text":"x"}`), nil); st != http.StatusAccepted {
			break
		}
	}
	for {
		ev, err := c.next()
		if err != nil {
			break
		}
		if ev.Type == "error" && ev.Code == "rate_limited" {
			limited++
		}
	}
	assert.True(t, "rate_limited errors", limited >= 1)
	code, reason := c.closed()
	assert.Equal(t, "close", 1008, code)
	assert.Equal(t, "reason", "rate limit exceeded", reason)

	// A member whose goroutine is busy (a slow hook) lets POSTs pile up:
	// past the queue, 429.
	release := make(chan struct{})
	var once sync.Once
	g := newEnv(t, &wsroom.Options{RateLimit: -1, Hooks: wsroom.Hooks{
		OnMessage: func(ctx context.Context, ev wsroom.MessageEvent) (wsroom.MessageReply, error) {
			if ev.Text == "block" {
				select {
				case <-release:
				case <-ctx.Done():
				}
			}
			return wsroom.MessageReply{}, nil
		},
	}})
	b, _ := g.sseJoin("busy", "b")
	defer once.Do(func() { close(release) })
	b.say("block")
	statuses := map[int]int{}
	for range 20 {
		statuses[b.postTo("", "text/plain", []byte(`{"type":"message","text":"queued"}`), nil)]++
	}
	assert.True(t, "429 past the queue", statuses[http.StatusTooManyRequests] > 0 && statuses[http.StatusAccepted] >= 7)
	once.Do(func() { close(release) })
	b.until("message")
}

// TestFallbackTokens: a POST acts for its own stream only; a token that
// was never issued, whose stream ended, or that comes from a cross-site
// page is refused.
func TestFallbackTokens(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	a, _ := e.sseJoin("tok", "a")
	b, _ := e.sseJoin("tok", "b")
	a.until("join")
	a.say("from a")
	assert.Equal(t, "a's POST speaks as a", "a", b.until("message").From)

	base := e.ts.URL + "/chat/tok"
	body := `{"type":"message","text":"forged"}`
	forged := a.hello.Token[:len(a.hello.Token)-4] + "AAAA"
	assert.Equal(t, "forged secret", http.StatusNotFound, rawPost(t, base, forged, "", body, nil))
	assert.Equal(t, "malformed", http.StatusNotFound, rawPost(t, base, "nonsense", "", body, nil))
	assert.Equal(t, "no token: not the fallback's", http.StatusMethodNotAllowed, rawPost(t, base, "", "", body, nil))
	assert.Equal(t, "cross-site", http.StatusForbidden, rawPost(t, base, a.hello.Token, "", body, http.Header{"Origin": {"https://evil.example"}}))
	assert.Equal(t, "form post", http.StatusUnsupportedMediaType, rawPost(t, base, a.hello.Token, "application/x-www-form-urlencoded", "a=b", nil))
	assert.Equal(t, "same origin", http.StatusAccepted, rawPost(t, base, a.hello.Token, "", body, http.Header{"Origin": {e.ts.URL}}))
	assert.Equal(t, "posted", "forged", b.until("message").Text)

	tok := a.hello.Token
	a.close()
	b.until("leave")
	assert.Equal(t, "expired with its stream", http.StatusNotFound, rawPost(t, base, tok, "", body, nil))

	// The stream itself: a cross-site Origin, or a cross-site request
	// without one (a no-cors fetch), is refused.
	_, resp := openStream(t, e.ts.URL, "/chat/tok", http.Header{"Origin": {"https://evil.example"}})
	assert.Equal(t, "cross-site stream", http.StatusForbidden, resp.StatusCode)
	_, resp = openStream(t, e.ts.URL, "/chat/tok", http.Header{"Sec-Fetch-Site": {"cross-site"}})
	assert.Equal(t, "no-cors stream", http.StatusForbidden, resp.StatusCode)
	_, resp = openStream(t, e.ts.URL, "/chat/bad%00room", nil)
	assert.Equal(t, "bad room", http.StatusBadRequest, resp.StatusCode)
}

// TestFallbackCORS: a page of an allowed origin may read the stream and
// POST, after a preflight; others may not.
func TestFallbackCORS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{OriginPatterns: []string{"app.example"}})
	c, resp := openStream(t, e.ts.URL, "/chat/cors", http.Header{"Origin": {"https://app.example"}})
	assert.Equal(t, "allowed origin", "https://app.example", resp.Header.Get("Access-Control-Allow-Origin"))
	assert.Equal(t, "credentials", "true", resp.Header.Get("Access-Control-Allow-Credentials"))

	pre := func(origin string) *http.Response {
		req, _ := http.NewRequest(http.MethodOptions, e.ts.URL+"/chat/cors", nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "wsroom-token")
		resp, err := sseHTTP.Do(req)
		assert.Success(t, err)
		resp.Body.Close()
		return resp
	}
	ok := pre("https://app.example")
	assert.Equal(t, "preflight", http.StatusNoContent, ok.StatusCode)
	assert.True(t, "token header allowed", strings.Contains(ok.Header.Get("Access-Control-Allow-Headers"), wsroom.TokenHeader))
	assert.Equal(t, "preflight refused", http.StatusForbidden, pre("https://evil.example").StatusCode)
	assert.Equal(t, "POST", http.StatusAccepted, c.postTo("", "text/plain", []byte(`{"type":"join","name":"x"}`), http.Header{"Origin": {"https://app.example"}}))
	c.expect("welcome")
}

// TestFallbackLimits: a body over its limit is refused with 413 and closes
// the stream with 1009, as the WebSocket does; binary refused with
// NoBinary closes with 1003; invalid UTF-8 with 1007.
func TestFallbackLimits(t *testing.T) {
	t.Parallel()
	lv := newLeaves()
	e := newEnv(t, &wsroom.Options{MaxMessageBytes: 100, MaxBinaryBytes: 50, Hooks: wsroom.Hooks{OnLeave: lv.hook}})
	c, _ := e.sseJoin("lim", "l")
	assert.Equal(t, "limits announced", int64(100), c.hello.MaxText)
	assert.Equal(t, "binary limit", int64(50), c.hello.MaxBinary)
	assert.Equal(t, "binary within", http.StatusAccepted, c.postTo("", "application/octet-stream", make([]byte, 50), nil))
	assert.Equal(t, "binary over", http.StatusRequestEntityTooLarge, c.postTo("", "application/octet-stream", make([]byte, 51), nil))
	code, reason := c.closed()
	assert.Equal(t, "close", 1009, code)
	assert.Equal(t, "reason", "message too big", reason)
	assert.Equal(t, "leave", wsroom.ReasonPolicy, lv.wait(t).Reason)

	c, _ = e.sseJoin("lim", "m")
	text := `{"type":"message","text":"` + strings.Repeat("x", 100) + `"}`
	assert.Equal(t, "text over", http.StatusRequestEntityTooLarge, c.postTo("", "", []byte(text), nil))
	code, _ = c.closed()
	assert.Equal(t, "close", 1009, code)

	c, _ = e.sseJoin("lim", "n")
	assert.Equal(t, "bad UTF-8 accepted for the member to refuse", http.StatusAccepted, c.postTo("", "", []byte("\xff\xfe"), nil))
	code, _ = c.closed()
	assert.Equal(t, "close", 1007, code)

	g := newEnv(t, &wsroom.Options{NoBinary: true})
	c, _ = g.sseJoin("nb", "n")
	c.postTo("", "application/octet-stream", []byte{1}, nil)
	code, _ = c.closed()
	assert.Equal(t, "close", 1003, code)
}

// TestFallbackShutdown: the stream ends with a final event saying why, and
// the member leaves once, with ReasonShutdown.
func TestFallbackShutdown(t *testing.T) {
	t.Parallel()
	lv := newLeaves()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{OnLeave: lv.hook}})
	c, _ := e.sseJoin("down", "d")
	unjoined := e.stream("/chat/down")
	ctx := testContext(t)
	assert.Success(t, e.srv.Shutdown(ctx))
	code, reason := c.closed()
	assert.Equal(t, "close", 1001, code)
	assert.Equal(t, "reason", "server shutting down", reason)
	code, _ = unjoined.closed()
	assert.Equal(t, "unjoined too", 1001, code)
	assert.Equal(t, "leave", wsroom.ReasonShutdown, lv.wait(t).Reason)
	assert.Equal(t, "once", 1, len(lv.all()))
	_, resp := openStream(t, e.ts.URL, "/chat/down", nil)
	assert.Equal(t, "after shutdown", http.StatusServiceUnavailable, resp.StatusCode)
	assert.Equal(t, "POST after shutdown", http.StatusServiceUnavailable, rawPost(t, e.ts.URL+"/chat/down", c.hello.Token, "", "{}", nil))
}

// TestFallbackRemovedAndReplaced: Room.Remove and a newer connection of an
// identified member close the stream with the WebSocket's codes.
func TestFallbackRemovedAndReplaced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, ev wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			return wsroom.IdentifyReply{Name: ev.Request.Header.Get("X-User")}, nil
		},
	}})
	c, _ := e.sseJoin("rm", "anon")
	assert.Success(t, e.srv.Room("rm").Remove(testContext(t), "anon", "spam"))
	code, reason := c.closed()
	assert.Equal(t, "removed", 1008, code)
	assert.Equal(t, "reason", "spam", reason)

	// Identify sees the stream's request and names the member: it is in
	// the room at once, without a join.
	first, _ := openStream(t, e.ts.URL, "/chat/rm", http.Header{"X-User": {"ida"}})
	w := first.expect("welcome")
	assert.Equal(t, "identified", "ida", w.Name)
	second, _ := openStream(t, e.ts.URL, "/chat/rm", http.Header{"X-User": {"ida"}})
	second.expect("welcome")
	code, _ = first.closed()
	assert.Equal(t, "replaced", int(wsroom.StatusReplaced), code)
}

// TestFallbackLeaveOnce: a client that stops POSTing (not even its
// keepalive) is dropped within PingInterval+PongTimeout and leaves once;
// meanwhile comments keep the stream busy.
func TestFallbackLeaveOnce(t *testing.T) {
	t.Parallel()
	lv := newLeaves()
	e := newEnv(t, &wsroom.Options{PingInterval: 400 * time.Millisecond, PongTimeout: 1600 * time.Millisecond, Hooks: wsroom.Hooks{OnLeave: lv.hook}})
	ws, _ := e.join("alive", "watcher")
	c, _ := e.sseJoin("alive", "quiet")
	assert.Equal(t, "heartbeat announced", int64(400), c.hello.Heartbeat)
	assert.Equal(t, "timeout announced", int64(2000), c.hello.Timeout)
	ws.expect("join")
	// Keepalives (empty POSTs) hold it for a while.
	tick := time.NewTicker(200 * time.Millisecond) // faster than the client's keepalive pace
	defer tick.Stop()
	for range 5 {
		<-tick.C
		assert.Equal(t, "keepalive", http.StatusAccepted, c.postTo("", "", nil, nil))
	}
	assert.Equal(t, "still in", 0, len(lv.all()))
	assert.True(t, "heartbeat comments", c.commentsSeen() >= 2)
	code, _ := c.closed()
	assert.Equal(t, "dropped without a close event", -1, code)
	ev := lv.wait(t)
	assert.Equal(t, "reason", wsroom.ReasonTimeout, ev.Reason)
	assert.Equal(t, "leave announced", "quiet", ws.until("leave").Name)
	ws.say("after")
	for ev, err := ws.next(); err == nil && ev.Type != "message"; ev, err = ws.next() {
		if ev.Type == "leave" {
			t.Fatalf("a second leave: %+v", ev)
		}
	}
	assert.Equal(t, "OnLeave once", 1, len(lv.all()))
}

// TestFallbackOff: with NoFallback the endpoint is WebSocket only.
func TestFallbackOff(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{NoFallback: true})
	_, resp := openStream(t, e.ts.URL, "/chat/off", nil)
	assert.Equal(t, "stream", http.StatusUpgradeRequired, resp.StatusCode)
	assert.Equal(t, "POST", http.StatusMethodNotAllowed, rawPost(t, e.ts.URL+"/chat/off", "X.Y", "", "{}", nil))
	e.join("off", "still works")
}

// TestFallbackRoomHandler: Room.ServeHTTP serves the fallback too.
func TestFallbackRoomHandler(t *testing.T) {
	t.Parallel()
	srv, err := wsroom.New(&wsroom.Options{Logger: quiet})
	assert.Success(t, err)
	ts := httptest.NewServer(srv.Room("fixed"))
	t.Cleanup(ts.Close)
	t.Cleanup(func() { srv.Shutdown(context.Background()) })
	c, _ := openStream(t, ts.URL, "/anything", nil)
	c.postJSON(map[string]any{"type": "join", "name": "f"})
	assert.Equal(t, "room", "fixed", c.expect("welcome").Room)
}

// TestFallbackSlowConsumer: a stream whose client reads nothing is closed
// as too slow (its queue overflows, or a write times out) and leaves,
// without holding up the room.
func TestFallbackSlowConsumer(t *testing.T) {
	t.Parallel()
	lv := newLeaves()
	e := newEnv(t, &wsroom.Options{
		SendQueueBytes: 64 << 10, WriteTimeout: 200 * time.Millisecond,
		Hooks: wsroom.Hooks{
			OnLeave: lv.hook,
			// The mute client cannot read its token to POST a join: it is
			// named from its request instead, and in the room at once.
			Identify: func(ctx context.Context, ev wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
				return wsroom.IdentifyReply{Name: ev.Request.Header.Get("X-User")}, nil
			},
		},
	})
	ws, _ := e.join("slow", "fast")
	addr := strings.TrimPrefix(e.ts.URL, "http://")
	nc, err := net.Dial("tcp", addr)
	assert.Success(t, err)
	defer nc.Close()
	assert.Success(t, nc.(*net.TCPConn).SetReadBuffer(4096))
	_, err = fmt.Fprintf(nc, "GET /chat/slow HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\nX-User: sloth\r\n\r\n", addr)
	assert.Success(t, err)
	assert.Equal(t, "arrival", "sloth", ws.expect("join").Name)
	big := strings.Repeat("x", 16<<10)
	var ev wsroom.LeaveEvent
	for i := 0; ; i++ {
		if i == 2000 {
			t.Fatal("the mute stream was never dropped")
		}
		_, err := e.srv.Room("slow").Broadcast(context.Background(), wsroom.Message{Text: big})
		assert.Success(t, err)
		ws.until("message") // the healthy member keeps up, and is never dropped
		if l := lv.all(); len(l) > 0 {
			ev = l[0]
			break
		}
	}
	assert.Equal(t, "reason", wsroom.ReasonSlow, ev.Reason)
	assert.Equal(t, "code", 1013, ev.Code)
	assert.True(t, "counted", e.srv.Stats().Slow >= 1)
	assert.Equal(t, "departure", "sloth", ws.until("leave").Name)
}
