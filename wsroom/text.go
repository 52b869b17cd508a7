package wsroom

import (
	"html"
	"strconv"
	"strings"
)

// TextFormat is the plain-text protocol: how a client without the wsroom.v1
// subprotocol joins and speaks, and how events read as lines of text for it.
// Every text frame such a client receives is one line. A nil field keeps its
// default; the defaults reproduce the original chat server, so its page
// works unchanged: the client sends "login:NAME" first, then its messages
// as `NAME说 :"text"`, and sees `欢迎【NAME】来到聊天室!` and
// `【NAME】离开了聊天室!` as members come and go.
//
// A function that returns "" (or no lines) sends nothing for that event.
//
// The original page shows each line it receives as HTML (it appends it
// with innerHTML), so what members typed must not reach it as markup:
// every name and message text is passed through Escape before it is given
// to the functions below, HTML-escaping by default, so that a member
// called <img src=x onerror=…> is shown as typed and runs nothing. Set
// Escape to RawText for clients that show lines as text.
type TextFormat struct {
	// Login parses a client's first lines; ok reports a join request.
	// Default: "login:NAME".
	Login func(line string) (name string, ok bool)

	// Inbound turns a joined client's line into message text. Default:
	// the text inside `NAME说 :"…"` when the line has that form (how the
	// original page sends), else the line as it is.
	Inbound func(name, line string) string

	// Message renders a message. Default: `FROM说 :"TEXT"`, or the bare
	// text of a message from the server.
	Message func(m Message) string

	// Join and Leave render a member's arrival and departure.
	Join  func(name string) string
	Leave func(name string) string

	// Presence renders coalesced arrivals and departures in a big room.
	// Default: one line for those who joined, one for those who left.
	Presence func(joined, left []string) []string

	// Welcome renders what a member sees when it joins: by default the
	// recent history, the members present (the first 20, and how many in
	// all) and its own join line.
	Welcome func(w WelcomeInfo) []string

	// Error renders an error event. Default: a short line per code, in the
	// language of the original page; the English message for other codes.
	Error func(code, message string) string

	// Escape is applied to every name and message text (never to what the
	// server's own formats add) before the functions above see it.
	// Default: HTML escaping (html.EscapeString); RawText: none.
	Escape func(string) string
}

// RawText is a TextFormat.Escape that leaves names and texts as they are,
// for plain-text clients that do not render HTML.
func RawText(s string) string { return s }

// WelcomeInfo is what TextFormat.Welcome renders, its names and texts
// escaped.
type WelcomeInfo struct {
	Room    string
	Name    string
	Members []string  // the first page of members, sorted
	Count   int       // how many members the room has
	History []Message // oldest first
}

// escapeMessage returns m with its sender and text escaped.
func (f TextFormat) escapeMessage(m Message) Message {
	m.From, m.Text = f.Escape(m.From), f.Escape(m.Text)
	return m
}

// escapeAll returns the names escaped.
func (f TextFormat) escapeAll(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = f.Escape(n)
	}
	return out
}

// welcome renders a welcome, escaping it first.
func (f TextFormat) welcome(w WelcomeInfo) []string {
	w.Room, w.Name, w.Members = f.Escape(w.Room), f.Escape(w.Name), f.escapeAll(w.Members)
	h := make([]Message, len(w.History))
	for i, m := range w.History {
		h[i] = f.escapeMessage(m)
	}
	w.History = h
	return f.Welcome(w)
}

// error renders an error event, escaping its message (a hook's RejectError
// may quote what a member typed).
func (f TextFormat) error(code, message string) string {
	return f.Error(code, f.Escape(message))
}

func (f TextFormat) withDefaults() TextFormat {
	if f.Login == nil {
		f.Login = func(line string) (string, bool) { return strings.CutPrefix(line, "login:") }
	}
	if f.Inbound == nil {
		f.Inbound = seedInbound
	}
	if f.Message == nil {
		f.Message = seedMessage
	}
	if f.Join == nil {
		f.Join = func(name string) string { return "欢迎【" + name + "】来到聊天室!" }
	}
	if f.Leave == nil {
		f.Leave = func(name string) string { return "【" + name + "】离开了聊天室!" }
	}
	if f.Presence == nil {
		f.Presence = seedPresence
	}
	if f.Welcome == nil {
		join := f.Join
		message := f.Message
		f.Welcome = func(w WelcomeInfo) []string {
			return seedWelcome(join, message, w)
		}
	}
	if f.Error == nil {
		f.Error = seedError
	}
	if f.Escape == nil {
		f.Escape = html.EscapeString
	}
	return f
}

func seedInbound(name, line string) string {
	if rest, ok := strings.CutPrefix(line, name+`说 :"`); ok && strings.HasSuffix(rest, `"`) {
		return rest[:len(rest)-1]
	}
	return line
}

func seedMessage(m Message) string {
	if m.From == "" {
		return m.Text
	}
	return m.From + `说 :"` + m.Text + `"`
}

func bracketed(names []string) string {
	var b strings.Builder
	for _, n := range names {
		b.WriteString("【" + n + "】")
	}
	return b.String()
}

func seedPresence(joined, left []string) []string {
	var lines []string
	if len(joined) > 0 {
		lines = append(lines, "欢迎"+bracketed(joined)+"来到聊天室!")
	}
	if len(left) > 0 {
		lines = append(lines, bracketed(left)+"离开了聊天室!")
	}
	return lines
}

func seedWelcome(join func(string) string, message func(Message) string, w WelcomeInfo) []string {
	lines := make([]string, 0, len(w.History)+2)
	for _, m := range w.History {
		if l := message(m); l != "" {
			lines = append(lines, l)
		}
	}
	const shown = 20
	members := w.Members[:min(len(w.Members), shown)]
	if w.Count > len(members) {
		lines = append(lines, "在线:"+bracketed(members)+"等"+strconv.Itoa(w.Count)+"人")
	} else {
		lines = append(lines, "在线:"+bracketed(members))
	}
	return append(lines, join(w.Name))
}

var seedErrors = map[string]string{
	CodeBadName:        "用户名无效",
	CodeNameTaken:      "用户名已被占用,请换一个",
	CodeRoomFull:       "聊天室已满",
	CodeNotJoined:      "请先登录:login:用户名",
	CodeAlreadyJoined:  "已经登录",
	CodeRateLimited:    "发送太快,请稍后再试",
	CodeJoinRefused:    "不能进入聊天室",
	CodeMessageRefused: "消息被拒绝",
	CodeUnavailable:    "服务器暂时不可用,请稍后再试",
	CodeServerFull:     "服务器已满,请稍后再试",
}

func seedError(code, message string) string {
	if s, ok := seedErrors[code]; ok {
		return "错误:" + s
	}
	return "错误:" + message
}
