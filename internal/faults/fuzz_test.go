package faults_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// The fuzz targets go through a real server, as a client would: names in
// join frames (FuzzJoinName) and lines of the plain-text protocol with the
// default TextFormat (FuzzPlainText). The server must never panic (a
// panic fails the target), and what it accepts must follow the documented
// rules, which the targets write down independently of the code:
//
//	go test -run='^$' -fuzz='^FuzzJoinName$' -fuzztime=1m ./internal/faults
//	go test -run='^$' -fuzz='^FuzzPlainText$' -fuzztime=1m ./internal/faults

// maxName is the default Options.MaxNameLength.
const maxName = 32

// documentedName applies the naming rules of the documentation
// (Options.MaxNameLength, the README): white space around the name is
// trimmed; what is left is 1 to 32 characters, each a letter, mark,
// number, punctuation, symbol or space; control, format (bidi overrides,
// zero-width), line and paragraph separator, private-use and unassigned
// characters are refused.
func documentedName(s string) (string, bool) {
	s = strings.TrimFunc(s, unicode.IsSpace)
	if s == "" || !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxName {
		return s, false
	}
	for _, r := range s {
		if !unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs) {
			return s, false
		}
	}
	return s, true
}

var nameSeeds = []string{
	"alice", "  bob  ", "", " ", "名字", "Zoë", "e\u0301", "alice smith", "<img src=x onerror=alert(1)>",
	"a\u202eb", "\u200bzero", "tab\there", "\u3000wide\u3000", "line\u2028sep", "para\u2029sep",
	"\U000F0000", "\u0378", "\x00", "\x7f", "\xff", "\xed\xa0\x80", strings.Repeat("x", 32), strings.Repeat("x", 33),
	strings.Repeat("é", 32), strings.Repeat("😀", 33), "login:x", "a\u00a0b", "\u0085nel\u0085", "\ufeffbom",
}

var fuzzRooms atomic.Int64

// fuzzServer is the server a fuzz target's inputs share.
func fuzzServer(f *testing.F) *env {
	return newEnv(f, wsroom.Options{RateLimit: -1, MaxConnectionsPerIP: -1})
}

// FuzzJoinName: a join frame with any name gets a welcome under the
// trimmed name if the documented rules allow it, and bad_name otherwise.
func FuzzJoinName(f *testing.F) {
	for _, s := range nameSeeds {
		f.Add(s)
	}
	e := fuzzServer(f)
	f.Fuzz(func(t *testing.T, name string) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		frame, _ := json.Marshal(map[string]string{"type": "join", "name": name})
		var sent struct{ Name string } // what the server reads: invalid UTF-8 became U+FFFD
		if err := json.Unmarshal(frame, &sent); err != nil {
			t.Fatal(err)
		}
		want, ok := documentedName(sent.Name)
		m, err := dialMember(ctx, e.ws+fmt.Sprintf("/chat/n%d", fuzzRooms.Add(1)), nil)
		if err != nil {
			t.Fatal(err)
		}
		defer m.close()
		if err := m.c.Write(ctx, websocket.MessageText, frame); err != nil {
			t.Fatal(err)
		}
		ev, err := m.next(ctx, "welcome", "error")
		switch {
		case err != nil:
			t.Fatalf("join %q: %v", sent.Name, err)
		case ok && (ev.Type != "welcome" || ev.Name != want):
			t.Fatalf("join %q: got %s %q %s, want a welcome as %q", sent.Name, ev.Type, ev.Name, ev.Code, want)
		case !ok && (ev.Type != "error" || ev.Code != wsroom.CodeBadName):
			t.Fatalf("join %q: got %s %q, want bad_name", sent.Name, ev.Type, ev.Name)
		}
	})
}

// plainModel is what the documentation says a plain-text client's lines
// do, with the default TextFormat: "login:NAME" joins; after that, a line
// is a message, the text inside `NAME说 :"…"` when it has that form; an
// empty message is not sent; text that is not valid UTF-8 closes with 1007.
type plainModel struct {
	joined bool
	name   string
	events []string // what the observer should see, in order
	closed bool     // 1007
}

func (p *plainModel) line(l string) {
	if !utf8.ValidString(l) {
		p.closed = true
		return
	}
	rest, login := strings.CutPrefix(l, "login:")
	switch {
	case !p.joined && login:
		if name, ok := documentedName(rest); ok && name != "observer" {
			p.joined, p.name = true, name
			p.events = append(p.events, "join "+name)
		}
	case p.joined && !login:
		text := l
		if in, ok := strings.CutPrefix(l, p.name+`说 :"`); ok && strings.HasSuffix(in, `"`) {
			text = in[:len(in)-1]
		}
		if text != "" {
			p.events = append(p.events, "message "+p.name+": "+text)
		}
	}
}

// FuzzPlainText: a plain-text client sends the input's lines (one text
// frame each) to a room where a JSON member observes. The observer sees
// exactly what the model says, and every line the plain client receives is
// valid UTF-8 with no HTML markup from user data (no '<' or '>').
func FuzzPlainText(f *testing.F) {
	for _, s := range []string{
		"login:alice\nhello\nalice说 :\"quoted\"",
		"hello before login\nlogin: bob \n\nlogin:again\n<script>alert(1)</script>",
		"login:observer\nlogin:x\nbob说 :\"not mine\"",
		"login:<b>\n<img src=x onerror=alert(1)>\n&amp;",
		"login:\u202eevil\nlogin:ok\n\xff\nafter",
		"login:名字\n名字说 :\"\"\n名字说 :\"你好\"",
	} {
		f.Add([]byte(s))
	}
	e := fuzzServer(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 4<<10 {
			return
		}
		lines := strings.Split(string(data), "\n")
		if len(lines) > 16 {
			lines = lines[:16]
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		room := e.ws + fmt.Sprintf("/chat/p%d", fuzzRooms.Add(1))
		obs, err := joinURL(ctx, room, "observer", "")
		if err != nil {
			t.Fatal(err)
		}
		defer obs.close()
		c, _, err := websocket.Dial(ctx, room, nil) // no subprotocol: plain text
		if err != nil {
			t.Fatal(err)
		}
		defer c.CloseNow()
		received := make(chan []string, 1)
		go func() {
			var got []string
			for {
				typ, b, err := c.Read(ctx)
				if err != nil {
					received <- append(got, fmt.Sprintf("END %d", websocket.CloseStatus(err)))
					return
				}
				if typ != websocket.MessageText {
					got = append(got, "BINARY")
					continue
				}
				got = append(got, string(b))
			}
		}()
		var model plainModel
		for _, l := range lines {
			if err := c.Write(ctx, websocket.MessageText, []byte(l)); err != nil {
				t.Fatalf("write %q: %v", l, err)
			}
			if model.line(l); model.closed {
				break
			}
		}
		if !model.closed {
			c.Close(websocket.StatusNormalClosure, "")
		}
		got := <-received
		if end := got[len(got)-1]; model.closed && end != "END 1007" {
			t.Fatalf("invalid UTF-8: the connection ended with %s, want 1007", end)
		}
		for _, l := range got[:len(got)-1] {
			if !utf8.ValidString(l) || strings.ContainsAny(l, "<>") {
				t.Fatalf("the plain client received %q", l)
			}
		}

		// The observer's barrier: its own message comes after everything
		// the plain client caused, and its departure too when it joined.
		if err := obs.say(ctx, "barrier"); err != nil {
			t.Fatal(err)
		}
		var seen []string
		barrier, left := false, !model.joined
		for !barrier || !left {
			ev, err := obs.next(ctx, "join", "leave", "message", "presence")
			if err != nil {
				t.Fatalf("observer: %v (saw %q)", err, seen)
			}
			switch {
			case ev.Type == "message" && ev.From == "observer" && ev.Text == "barrier":
				barrier = true
			case ev.Type == "leave" && ev.Name == model.name:
				left = true
			case ev.Type == "join":
				seen = append(seen, "join "+ev.Name)
			case ev.Type == "message":
				seen = append(seen, "message "+ev.From+": "+ev.Text)
			default:
				seen = append(seen, ev.Type+" "+ev.Name)
			}
		}
		if fmt.Sprintf("%q", seen) != fmt.Sprintf("%q", model.events) {
			t.Fatalf("lines %q:\nthe observer saw %q\nthe model says  %q\nthe plain client got %q", lines, seen, model.events, got)
		}
	})
}
