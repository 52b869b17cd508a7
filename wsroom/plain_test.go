package wsroom_test

import (
	"context"
	"strings"
	"testing"

	"github.com/coder/websocket"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestSeedPage replays what the original chat page sends, byte for byte:
// "login:" + name when the socket opens, then name + `说 :"` + text + `"`
// for each message, then a close.
func TestSeedPage(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	page1 := e.dial("/chat", false) // no subprotocol: the page's new WebSocket(url)
	page1.sendText("login:黄晓安")
	assert.Equal(t, "members line", "在线:【黄晓安】", page1.line())
	assert.Equal(t, "own arrival", "欢迎【黄晓安】来到聊天室!", page1.line())

	page2 := e.dial("/chat", false)
	page2.sendText("login:小明")
	assert.Equal(t, "members line", "在线:【小明】【黄晓安】", page2.line())
	assert.Equal(t, "own arrival", "欢迎【小明】来到聊天室!", page2.line())
	assert.Equal(t, "arrival seen by the first page", "欢迎【小明】来到聊天室!", page1.line())

	// A JSON client shares the room.
	js := e.dial("/chat", true)
	js.send(map[string]any{"type": "join", "name": "alice"})
	assert.Equal(t, "members", []string{"alice", "小明", "黄晓安"}, js.expect("welcome").Members)
	assert.Equal(t, "page1 sees alice", "欢迎【alice】来到聊天室!", page1.line())
	assert.Equal(t, "page2 sees alice", "欢迎【alice】来到聊天室!", page2.line())

	page1.sendText(`黄晓安说 :"你好"`)
	assert.Equal(t, "page1 line", `黄晓安说 :"你好"`, page1.line())
	assert.Equal(t, "page2 line", `黄晓安说 :"你好"`, page2.line())
	m := js.expect("message")
	assert.Equal(t, "JSON from", "黄晓安", m.From)
	assert.Equal(t, "JSON text, without the page's framing", "你好", m.Text)

	js.say("hello")
	assert.Equal(t, "own message", "hello", js.expect("message").Text)
	assert.Equal(t, "JSON message on the page", `alice说 :"hello"`, page1.line())
	assert.Equal(t, "JSON message on the page", `alice说 :"hello"`, page2.line())

	// A line that is not in the page's form is the message text as it is,
	// and reads as said by its sender: nobody can speak for someone else.
	page2.sendText("just text")
	assert.Equal(t, "framed", `小明说 :"just text"`, page1.line())
	assert.Equal(t, "JSON text", "just text", js.until("message").Text)
	page2.sendText(`黄晓安说 :"I am not 小明"`)
	// (Quotes are HTML-escaped: the page shows them as typed.)
	assert.Equal(t, "no spoofing", `小明说 :"黄晓安说 :&#34;I am not 小明&#34;"`, page1.line())
	js.until("message")
	page2.line() // its own two lines
	page2.line()

	// ToggleConnectionClicked: ws.close().
	assert.Success(t, page1.c.Close(websocket.StatusNormalClosure, ""))
	assert.Equal(t, "departure", "【黄晓安】离开了聊天室!", page2.line())
	assert.Equal(t, "JSON leave", "黄晓安", js.until("leave").Name)

	// A later page gets the history as lines.
	page3 := e.dial("/chat", false)
	page3.sendText("login:老王")
	assert.Equal(t, "history 1", `黄晓安说 :"你好"`, page3.line())
	assert.Equal(t, "history 2", `alice说 :"hello"`, page3.line())
	assert.Equal(t, "history 3", `小明说 :"just text"`, page3.line())
	assert.Equal(t, "history 4", `小明说 :"黄晓安说 :&#34;I am not 小明&#34;"`, page3.line())
}

func TestPlainErrors(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{RateLimit: -1})
	page := e.dial("/chat", false)
	page.sendText("hello before login")
	assert.Equal(t, "not joined", "错误:请先登录:login:用户名", page.line())
	page.sendText("login:")
	assert.Contains(t, page.line(), "错误:用户名无效")
	page.sendText("login:bob")
	page.line()
	page.line()
	other := e.dial("/chat", false)
	other.sendText("login:bob")
	assert.Contains(t, other.line(), "错误:用户名已被占用")
	page.sendText("login:again")
	assert.Equal(t, "second login", "错误:已经登录", page.line())
}

func TestCustomTextFormat(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Text: wsroom.TextFormat{
		Login:   func(line string) (string, bool) { return strings.CutPrefix(line, "/nick ") },
		Inbound: func(name, line string) string { return strings.TrimSpace(line) },
		Message: func(m wsroom.Message) string { return "<" + m.From + "> " + m.Text },
		Join:    func(name string) string { return "* " + name + " joined" },
		Leave:   func(name string) string { return "* " + name + " left" },
		Welcome: func(w wsroom.WelcomeInfo) []string {
			return []string{"welcome to " + w.Room + ", " + w.Name}
		},
		Error: func(code, message string) string { return "! " + code },
	}})
	a := e.dial("/chat/irc", false)
	a.sendText("hi")
	assert.Equal(t, "error", "! not_joined", a.line())
	a.sendText("/nick ann")
	assert.Equal(t, "welcome", "welcome to irc, ann", a.line())
	b := e.dial("/chat/irc", false)
	b.sendText("/nick ben")
	b.line()
	assert.Equal(t, "join", "* ben joined", a.line())
	b.sendText("  hello  ")
	assert.Equal(t, "message", "<ben> hello", a.line())
	assert.Success(t, b.c.Close(websocket.StatusNormalClosure, ""))
	assert.Equal(t, "leave", "* ben left", a.line())
}

func TestPlainMemberWithIdentity(t *testing.T) {
	t.Parallel()
	e := newEnv(t, &wsroom.Options{Hooks: wsroom.Hooks{
		Identify: func(ctx context.Context, ev wsroom.IdentifyEvent) (wsroom.IdentifyReply, error) {
			return wsroom.IdentifyReply{Name: ev.Request.Header.Get("X-User")}, nil
		},
	}})
	c, err := e.dialErr("/chat", false, map[string][]string{"X-User": {"黄晓安"}})
	assert.Success(t, err)
	// Joined on connect; the page's own login line is swallowed.
	c.line()
	assert.Equal(t, "arrival", "欢迎【黄晓安】来到聊天室!", c.line())
	c.sendText("login:someone-else")
	c.sendText(`黄晓安说 :"hi"`)
	assert.Equal(t, "message", `黄晓安说 :"hi"`, c.line())
}
