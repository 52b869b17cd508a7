package wsroom_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestWelcomeCarriesAPageOfMembers: a join into a big room costs the same
// as into a small one: the welcome holds the count and the first page of
// members, and the rest comes with members requests.
func TestWelcomeCarriesAPageOfMembers(t *testing.T) {
	t.Parallel()
	const n, page = 23, 5
	e := newEnv(t, &wsroom.Options{MembersPage: page, PresenceThreshold: -1})
	var want []string
	for i := range n {
		name := fmt.Sprintf("m%02d", i)
		c, w := e.join("big", name)
		defer c.c.CloseNow()
		want = append(want, name)
		assert.Equal(t, "count", i+1, w.Count)
		assert.Equal(t, "first page", want[:min(len(want), page)], w.Members)
	}
	c, w := e.join("big", "zz")
	want = append(want, "zz")
	assert.Equal(t, "welcome count", n+1, w.Count)
	got := slices.Clone(w.Members)
	after := got[len(got)-1]
	for {
		c.send(map[string]any{"type": "members", "after": after, "limit": 100})
		ev := c.until("members")
		assert.True(t, "a page is at most MembersPage", len(ev.Members) <= page)
		assert.Equal(t, "count", n+1, ev.Count)
		got = append(got, ev.Members...)
		if !ev.More {
			break
		}
		after = ev.Members[len(ev.Members)-1]
	}
	assert.Equal(t, "every member once, sorted", want, got)

	// The plain-text welcome says how many there are.
	p := e.dial("/chat/big", false)
	p.sendText("login:page")
	line := p.line()
	assert.True(t, "the members line: "+line, strings.HasPrefix(line, "在线:【m00】") && strings.HasSuffix(line, fmt.Sprintf("等%d人", n+2)))

	// Asking before joining is an error.
	o := e.dial("/chat/big", true)
	o.send(map[string]any{"type": "members"})
	assert.Equal(t, "not joined", wsroom.CodeNotJoined, o.expect("error").Code)
}

// TestJoinStormBigRoom joins a few hundred members into one room at once:
// every welcome is small, and everyone ends up knowing everyone through
// presence events.
func TestJoinStormBigRoom(t *testing.T) {
	t.Parallel()
	const n = 300
	e := newEnv(t, &wsroom.Options{PresenceInterval: 20 * time.Millisecond})
	first, _ := e.join("storm", "first")
	type res struct {
		w   evt
		err error
	}
	done := make(chan res, n)
	for i := range n {
		go func() {
			c, err := e.dialErr("/chat/storm", true, nil)
			if err != nil {
				done <- res{err: err}
				return
			}
			err = c.c.Write(testContext(t), 1, fmt.Appendf(nil, `{"type":"join","name":"s%d"}`, i))
			var w evt
			if err == nil {
				w, err = c.next()
			}
			done <- res{w, err}
		}()
	}
	for range n {
		r := <-done
		assert.Success(t, r.err)
		assert.Equal(t, "a welcome", "welcome", r.w.Type)
		assert.True(t, "welcome members bounded", len(r.w.Members) <= 100)
		assert.True(t, "welcome count", r.w.Count >= 2 && r.w.Count <= n+1)
	}
	seen := map[string]bool{}
	for len(seen) < n {
		ev, err := first.next()
		assert.Success(t, err)
		switch ev.Type {
		case "join":
			seen[ev.Name] = true
		case "presence":
			for _, name := range ev.Joined {
				seen[name] = true
			}
		}
	}
	assert.Equal(t, "members", int64(n+1), e.srv.Stats().Members)
}
