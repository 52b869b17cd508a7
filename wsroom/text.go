package wsroom

import (
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
	// recent history, the members present (the first 20) and its own join
	// line.
	Welcome func(room, name string, members []string, history []Message) []string

	// Error renders an error event. Default: a short line per code, in the
	// language of the original page; the English message for other codes.
	Error func(code, message string) string
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
		f.Welcome = func(room, name string, members []string, history []Message) []string {
			return seedWelcome(join, message, name, members, history)
		}
	}
	if f.Error == nil {
		f.Error = seedError
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

func seedWelcome(join func(string) string, message func(Message) string, name string, members []string, history []Message) []string {
	lines := make([]string, 0, len(history)+2)
	for _, m := range history {
		if l := message(m); l != "" {
			lines = append(lines, l)
		}
	}
	const shown = 20
	if len(members) > shown {
		lines = append(lines, "在线:"+bracketed(members[:shown])+"等"+strconv.Itoa(len(members))+"人")
	} else {
		lines = append(lines, "在线:"+bracketed(members))
	}
	return append(lines, join(name))
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
}

func seedError(code, message string) string {
	if s, ok := seedErrors[code]; ok {
		return "错误:" + s
	}
	return "错误:" + message
}
