package wsroom_test

import (
	"context"
	"encoding/json"
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

// TestConcurrentJoinsAllTold: members joining at once, with welcomes that
// list only a page of the members, still all learn of each other: for
// every pair, the one whose welcome does not list the other is told of it
// by a join event, so that no name escapes a member that does not page
// through the list.
func TestConcurrentJoinsAllTold(t *testing.T) {
	t.Parallel()
	const n = 60
	e := newEnv(t, &wsroom.Options{MembersPage: 5, PresenceThreshold: -1})
	clients := make([]*client, n)
	for i := range n {
		c, err := e.dialErr("/chat/race", true, nil)
		assert.Success(t, err)
		clients[i] = c
	}
	start := make(chan struct{})
	errs := make(chan error, n)
	for i, c := range clients {
		go func() {
			<-start
			errs <- c.c.Write(testContext(t), 1, fmt.Appendf(nil, `{"type":"join","name":"m%02d"}`, i))
		}()
	}
	close(start)
	for range n {
		assert.Success(t, <-errs)
	}
	listed := make([]map[string]bool, n) // names in each welcome
	told := make([]map[string]bool, n)   // names each was told of by join events
	for i, c := range clients {
		w := c.expect("welcome")
		listed[i] = map[string]bool{}
		for _, name := range w.Members {
			listed[i][name] = true
		}
		told[i] = map[string]bool{}
		for _, ev := range c.pending { // batched with the welcome
			if ev.Type == "join" {
				told[i][ev.Name] = true
			}
		}
		c.pending = nil
	}
	// Read until quiet: every member's join events.
	name := func(i int) string { return fmt.Sprintf("m%02d", i) }
	for quiet := false; !quiet; {
		quiet = true
		for i, c := range clients {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
				_, b, err := c.readFrame(ctx)
				cancel()
				if err != nil {
					break
				}
				quiet = false
				for _, line := range strings.Split(string(b), "\n") {
					var ev evt
					assert.Success(t, json.Unmarshal([]byte(line), &ev))
					if ev.Type == "join" {
						told[i][ev.Name] = true
					}
				}
			}
		}
	}
	// For every pair, whoever was told of the other came first; if the
	// later one's welcome lists the earlier, the earlier was told of the
	// later. (Before the fix, a member that reserved its name first but
	// was announced last missed the other's join, and a welcome of one
	// page did not list it.)
	for i := range n {
		for j := i + 1; j < n; j++ {
			tij, tji := told[i][name(j)], told[j][name(i)]
			lij, lji := listed[i][name(j)], listed[j][name(i)]
			switch {
			case !tij && !tji:
				t.Errorf("%s and %s: neither was told of the other (welcomes list each other: %v, %v)", name(i), name(j), lij, lji)
			case lji && !tij:
				t.Errorf("%s is in %s's welcome but was not told of %s", name(i), name(j), name(j))
			case lij && !tji:
				t.Errorf("%s is in %s's welcome but was not told of %s", name(j), name(i), name(i))
			}
		}
	}
}
