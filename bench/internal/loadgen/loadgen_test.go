package loadgen

import (
	"sync/atomic"
	"testing"
	"time"

	"wsroom.dev/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

func TestParseEvent(t *testing.T) {
	t.Parallel()
	tests := []struct {
		line    string
		kind    kind
		name    string
		text    string
		members []string
		joined  []string
	}{
		{line: `{"type":"join","name":"u12"}`, kind: kindJoin, name: "u12"},
		{line: `{"type": "leave", "name" : "u3"}`, kind: kindLeave, name: "u3"},
		{line: `{"type":"message","from":"u0","text":"b:7:1700000000000000000"}`, kind: kindMessage, text: "b:7:1700000000000000000"},
		{line: `{"type":"message","id":"42","from":"u0","text":"b:1:2","ts":1700000000000}`, kind: kindMessage, text: "b:1:2"},
		{line: `{"type":"message","from":"u0","text":"say \"hi\""}`, kind: kindMessage, text: `say "hi"`},
		{line: `{"type":"presence","joined":["u1","u2"],"left":[]}`, kind: kindPresence, joined: []string{"u1", "u2"}},
		{line: `{"type":"welcome","room":"r0","name":"u2","members":["u0","u1","u2"],"history":[{"id":"1","from":"u0","text":"b:0:1","ts":1}]}`, kind: kindWelcome, name: "u2", members: []string{"u0", "u1", "u2"}},
		{line: `{"type":"error","code":"rate_limited","message":"slow down"}`, kind: kindError},
		{line: `{"type":"history","messages":[],"more":false}`, kind: kindOther},
	}
	for _, tt := range tests {
		e, ok := parseEvent([]byte(tt.line))
		if !ok {
			t.Errorf("parseEvent(%s): not ok", tt.line)
			continue
		}
		if e.kind != tt.kind || string(e.name) != tt.name || string(e.text) != tt.text ||
			len(e.members) != len(tt.members) || len(e.joined) != len(tt.joined) {
			t.Errorf("parseEvent(%s) = %+v", tt.line, e)
		}
	}
	for _, bad := range []string{``, `not json`, `{"type":`} {
		if _, ok := parseEvent([]byte(bad)); ok {
			t.Errorf("parseEvent(%q) ok", bad)
		}
	}
}

func TestNextLine(t *testing.T) {
	t.Parallel()
	frame := []byte("{\"a\":1}\n{\"b\":2}\n\n{\"c\":3}")
	var got []string
	for p := frame; len(p) > 0; {
		var line []byte
		line, p = nextLine(p)
		got = append(got, string(line))
	}
	want := []string{`{"a":1}`, `{"b":2}`, ``, `{"c":3}`}
	if len(got) != len(want) {
		t.Fatalf("got %q, want %q", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestParseText(t *testing.T) {
	t.Parallel()
	b := appendText(nil, 42, 1700000000123456789)
	seq, sent, ok := parseText(b)
	if !ok || seq != 42 || sent != 1700000000123456789 {
		t.Fatalf("parseText(%s) = %d %d %v", b, seq, sent, ok)
	}
	for _, bad := range []string{"", "b:", "b:1", "b:x:1", "a:1:2", "b:1:2x", "b:-1:2"} {
		if _, _, ok := parseText([]byte(bad)); ok {
			t.Errorf("parseText(%q) ok", bad)
		}
	}
	if n, ok := parseName([]byte("u1999")); !ok || n != 1999 {
		t.Errorf("parseName(u1999) = %d %v", n, ok)
	}
	for _, bad := range []string{"", "u", "x1", "u1a", "u99999999999999999999"} {
		if _, ok := parseName([]byte(bad)); ok {
			t.Errorf("parseName(%q) ok", bad)
		}
	}
}

func TestPercentile(t *testing.T) {
	t.Parallel()
	s := make([]int64, 100)
	for i := range s {
		s[i] = int64(i + 1)
	}
	if p := percentile(s, 0.5); p != 50 {
		t.Errorf("p50 = %d", p)
	}
	if p := percentile(s, 0.99); p != 99 {
		t.Errorf("p99 = %d", p)
	}
	if p := percentile(s[:1], 0.99); p != 1 {
		t.Errorf("p99 of one = %d", p)
	}
	if p := percentile(nil, 0.5); p != 0 {
		t.Errorf("p50 of none = %d", p)
	}
}

// trackerRun feeds events to a tracker and reports whether it completed.
func trackerRun(n int, feed func(t *tracker)) bool {
	var done atomic.Bool
	t := newTracker(n, func(time.Time) { done.Store(true) })
	feed(t)
	return done.Load()
}

func TestTrackerPeer(t *testing.T) {
	t.Parallel()
	// Members join in order 0..3; each is sent its own join and the joins
	// of the later ones (a peer: no member list).
	full := func(tr *tracker, skipI, skipJ int) {
		for j := range 4 {
			for i := 0; i <= j; i++ {
				if i == skipI && j == skipJ {
					continue
				}
				if i == j {
					tr.markIn(i)
				} else {
					tr.announced(i, j)
				}
			}
		}
	}
	if !trackerRun(4, func(tr *tracker) { full(tr, -1, -1) }) {
		t.Error("complete peer joins: not complete")
	}
	if trackerRun(4, func(tr *tracker) { full(tr, 1, 3) }) {
		t.Error("member 1 missed the join of 3: complete")
	}
	if trackerRun(4, func(tr *tracker) { full(tr, 2, 2) }) {
		t.Error("member 2 never in: complete")
	}
	if !trackerRun(1, func(tr *tracker) { tr.markIn(0) }) {
		t.Error("a room of one: not complete")
	}
}

func TestTrackerWsroom(t *testing.T) {
	t.Parallel()
	// Members join in order 0..3: a welcome lists the earlier members, an
	// announcement tells the earlier members of the later one.
	run := func(skipI, skipJ int) bool {
		return trackerRun(4, func(tr *tracker) {
			for j := range 4 {
				for i := range j {
					tr.welcomed(j, i)
				}
				tr.markIn(j)
				for i := range j {
					if i != skipI || j != skipJ {
						tr.announced(i, j)
					}
				}
			}
		})
	}
	if !run(-1, -1) {
		t.Error("complete wsroom joins: not complete")
	}
	// The later member's welcome lists the earlier one: that alone must
	// not hide the earlier one's missing announcement.
	if run(0, 2) {
		t.Error("member 0 missed the arrival of 2: complete")
	}
	// A slow welcome: 1 joins after 0, whose welcome, read after that,
	// lists 1 too; 1 was announced to 0; 0 is not on the first page of
	// 1's welcome, and its arrival was announced before 1 could hear it.
	if !trackerRun(2, func(tr *tracker) {
		tr.welcomed(0, 1)
		tr.announced(0, 1)
		tr.markIn(0)
		tr.markIn(1)
	}) {
		t.Error("a slow welcome: not complete")
	}
	// Without the announcement, 0's welcome says that 1 joined first: 1
	// must have been told of 0.
	if trackerRun(2, func(tr *tracker) {
		tr.welcomed(0, 1)
		tr.markIn(0)
		tr.markIn(1)
	}) {
		t.Error("1 missed the arrival of 0: complete")
	}
	// Simultaneous joins: both welcomes list each other, no announcement.
	if !trackerRun(2, func(tr *tracker) {
		tr.welcomed(0, 1)
		tr.welcomed(1, 0)
		tr.markIn(0)
		tr.markIn(1)
	}) {
		t.Error("mutual welcomes: not complete")
	}
}

func TestTogether(t *testing.T) {
	t.Parallel()
	var stopped atomic.Int64
	server := func(url string, cpu time.Duration) Target {
		return Target{URL: url, CPU: func() (time.Duration, error) { return cpu, nil }, Stop: func() { stopped.Add(1) }}
	}
	all := together([]Target{server("http://127.0.0.1:1", time.Second), server("http://127.0.0.1:2", 2*time.Second)})
	for i, want := range []string{"ws://127.0.0.1:1/chat/x", "ws://127.0.0.1:2/chat/x", "ws://127.0.0.1:1/chat/x"} {
		if got := all.memberURL(i, "/chat/x"); got != want {
			t.Errorf("member %d dials %s, want %s", i, got, want)
		}
	}
	if cpu, ok := all.cpu(); !ok || cpu != 3*time.Second {
		t.Errorf("cpu %v %v, want 3s", cpu, ok)
	}
	all.stop()
	if n := stopped.Load(); n != 2 {
		t.Errorf("%d servers stopped, want 2", n)
	}
	one := server("http://127.0.0.1:3", 0)
	if got := one.memberURL(5, "/e"); got != "ws://127.0.0.1:3/e" {
		t.Errorf("one server: member 5 dials %s", got)
	}
	if _, ok := together([]Target{one, {URL: "http://127.0.0.1:4"}}).cpu(); ok {
		t.Error("cpu measured with a server whose CPU is not")
	}
}

func TestScenarioColumnOfVariant(t *testing.T) {
	t.Parallel()
	s := Scenario{Columns: []Column{{Key: "p99_ms", Better: -1}}, Variants: []Variant{{Key: "two"}}}
	if c, ok := s.Column("two_p99_ms"); !ok || c.Key != "p99_ms" {
		t.Errorf("two_p99_ms: %+v %v", c, ok)
	}
	if _, ok := s.Column("three_p99_ms"); ok {
		t.Error("three_p99_ms found")
	}
}
