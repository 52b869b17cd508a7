package browser

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"wsroom.dev/wsroom"
)

// event is one event of the JSON protocol as a Go member receives it.
type event struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	ID      string   `json:"id"`
	From    string   `json:"from"`
	Text    string   `json:"text"`
	Code    string   `json:"code"`
	Members []string `json:"members"`
	Joined  []string `json:"joined"`
	Left    []string `json:"left"`
}

// member is a JSON member of a room driven by the test, beside the pages.
type member struct {
	t      *testing.T
	name   string
	conn   *websocket.Conn
	events chan event
	done   chan struct{}
}

// joinRoom connects to the server's /chat/{room} (directly, never through
// a proxy) with the wsroom.v1 subprotocol and joins as name.
func joinRoom(t *testing.T, baseWS, room, name string) *member {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	c, _, err := websocket.Dial(ctx, baseWS+"/chat/"+room, &websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		t.Fatalf("%s: dial: %v", name, err)
	}
	c.SetReadLimit(4 << 20)
	m := &member{t: t, name: name, conn: c, events: make(chan event, 4096), done: make(chan struct{})}
	go m.read()
	t.Cleanup(m.leave)
	join, _ := json.Marshal(map[string]string{"type": "join", "name": name})
	if err := c.Write(ctx, websocket.MessageText, join); err != nil {
		t.Fatalf("%s: join: %v", name, err)
	}
	if ev := m.await(func(e event) bool { return e.Type == "welcome" || e.Type == "error" }); ev.Type != "welcome" {
		t.Fatalf("%s: join refused: %s", name, ev.Code)
	}
	return m
}

// read splits the server's frames into events until the connection ends.
func (m *member) read() {
	defer close(m.done)
	defer close(m.events)
	for {
		typ, b, err := m.conn.Read(context.Background())
		if err != nil {
			return
		}
		if typ != websocket.MessageText {
			continue
		}
		for _, line := range strings.Split(string(b), "\n") {
			var ev event
			if json.Unmarshal([]byte(line), &ev) == nil {
				select {
				case m.events <- ev:
				default:
					m.t.Errorf("%s: more than %d events unread", m.name, cap(m.events))
					return
				}
			}
		}
	}
}

// await returns the first event (from now on) for which ok is true.
func (m *member) await(ok func(event) bool) event {
	m.t.Helper()
	timeout := time.NewTimer(step)
	defer timeout.Stop()
	for {
		select {
		case ev, open := <-m.events:
			if !open {
				m.t.Fatalf("%s: connection ended while waiting", m.name)
			}
			if ok(ev) {
				return ev
			}
		case <-timeout.C:
			m.t.Fatalf("%s: no such event within %v", m.name, step)
		}
	}
}

// say sends a chat message.
func (m *member) say(text string) {
	m.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), step)
	defer cancel()
	b, _ := json.Marshal(map[string]string{"type": "message", "text": text})
	if err := m.conn.Write(ctx, websocket.MessageText, b); err != nil {
		m.t.Fatalf("%s: say: %v", m.name, err)
	}
}

// sayAndSee sends a message and waits until it comes back from the
// server: the server has stored and broadcast it.
func (m *member) sayAndSee(text string) event {
	m.t.Helper()
	m.say(text)
	return m.await(func(e event) bool { return e.Type == "message" && e.From == m.name && e.Text == text })
}

// leave closes the connection and waits for its reader.
func (m *member) leave() {
	m.conn.Close(websocket.StatusNormalClosure, "")
	m.conn.CloseNow()
	<-m.done
}
