package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"wsroom.dev/bench/internal/loadgen"
	"wsroom.dev/internal/debugmem"
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// wsroomServer serves wsroom with every limit off, as examples/chat
// -unlimited does, but with presence coalescing from 4 members so that the
// tiny rooms of the tests exercise it.
func wsroomServer(t *testing.T) loadgen.Target {
	t.Helper()
	rooms, err := wsroom.New(&wsroom.Options{
		MaxMessageBytes: -1, MaxNameLength: -1, RateLimit: -1, MaxMembers: -1, SendQueue: -1,
		JoinTimeout: -1, WriteTimeout: -1,
		PresenceThreshold: 4, PresenceInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", rooms)
	mux.Handle("/echo", rooms.Echo())
	mux.Handle("/debug/mem", debugmem.Handler())
	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Close()
		if err := rooms.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
	})
	return loadgen.Target{Impl: "wsroom", URL: srv.URL, Protocol: loadgen.Wsroom, CPU: selfCPU, PID: os.Getpid()}
}

// selfCPU is the test process's CPU time: the in-process server's, and the
// client's with it.
func selfCPU() (time.Duration, error) { return loadgen.ProcessCPU(os.Getpid()) }

// TestScenariosWsroom runs the whole suite, tiny, against wsroom in
// process, a fresh server per scenario as the runner does: everything must
// arrive, once, to members that all stay.
func TestScenariosWsroom(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var results []loadgen.Result
	for _, s := range loadgen.Scenarios(loadgen.Tiny) {
		if s.OwnServers {
			continue // TestOwnServers: they start examples/chat themselves
		}
		r := s.Run(ctx, wsroomServer(t))
		r.Scenario, r.Impl, r.Run = s.Name, "wsroom", 1
		results = append(results, r)
		if r.Err != "" || len(r.Problems) > 0 {
			t.Errorf("%s: error %q, problems %q", s.Name, r.Err, r.Problems)
			continue
		}
		if _, ok := r.Metrics[s.Headline]; !ok {
			t.Errorf("%s: no %s in %v", s.Name, s.Headline, r.Metrics)
		}
		for _, key := range []string{"loss", "duplicates", "dropped"} {
			if v, ok := r.Metrics[key]; ok && v != 0 {
				t.Errorf("%s: %s = %v", s.Name, key, v)
			}
		}
	}
	checkReport(t, results)
}

// fakePeer is a peer server (PROTOCOL.md) written for the tests, with
// faults to check the accounting: it can batch events into frames as
// gorilla does, skip one delivery, repeat one, hold one back until the
// sender's next, send one to a member of another room, and close a
// member. A delivery names the member it goes to, the message's number
// and, optionally, its sender.
type fakePeer struct {
	batch  bool
	skip   delivery // not delivered
	repeat delivery // delivered twice
	hold   delivery // delivered after the sender's next message
	leak   delivery // also delivered to this member, of another room
	kick   delivery // the member is closed instead of receiving it
	// kickOnJoin names a member closed right after its join event.
	kickOnJoin string

	mu      sync.Mutex
	members map[*fakeMember]bool
	wg      sync.WaitGroup
}

type delivery struct {
	to   string
	seq  int
	from string // "": any sender
}

func (d delivery) is(to, from string, seq int) bool {
	return d.to != "" && d.to == to && d.seq == seq && (d.from == "" || d.from == from)
}

type fakeMember struct {
	name, room string
	conn       *websocket.Conn
	out        chan []byte
	kicked     bool   // set before out is closed
	held       []byte // an event held back until the next of heldFrom
	heldFrom   string
}

func (p *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch r.URL.Path {
	case "/echo":
		http.Error(w, "no echo", http.StatusNotFound)
		return
	case "/debug/mem":
		debugmem.Handler().ServeHTTP(w, r)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	m := &fakeMember{name: r.URL.Query().Get("name"), room: strings.TrimPrefix(r.URL.Path, "/chat/"), conn: c, out: make(chan []byte, 1<<14)}
	p.wg.Add(1)
	go p.write(r.Context(), m)
	p.mu.Lock()
	p.members[m] = true
	join := fmt.Appendf(nil, `{"type":"join","name":%q}`, m.name)
	if m.name == p.kickOnJoin {
		// Dropped during its join: its own join event only, so that no
		// other member knows of it and the room cannot look complete
		// before the client has seen the close.
		m.out <- join
		delete(p.members, m)
		m.kicked = true
		close(m.out)
	} else {
		p.broadcastLocked(m, join, -1)
	}
	p.mu.Unlock()
	for {
		_, b, err := c.Read(r.Context())
		if err != nil {
			break
		}
		var f struct{ Text string }
		json.Unmarshal(b, &f)
		var seq int
		fmt.Sscanf(f.Text, "b:%d:", &seq)
		p.mu.Lock()
		p.broadcastLocked(m, fmt.Appendf(nil, `{"type":"message","from":%q,"text":%q}`, m.name, f.Text), seq)
		p.mu.Unlock()
	}
	p.mu.Lock()
	if p.members[m] {
		delete(p.members, m)
		close(m.out)
		p.broadcastLocked(m, fmt.Appendf(nil, `{"type":"leave","name":%q}`, m.name), -1)
	}
	p.mu.Unlock()
}

// broadcastLocked sends ev, from member from, to from's room; seq is the
// message's number, -1 for a join or leave.
func (p *fakePeer) broadcastLocked(from *fakeMember, ev []byte, seq int) {
	msg := seq >= 0
	for m := range p.members {
		if m.room != from.room {
			if msg && p.leak.is(m.name, from.name, seq) {
				m.out <- ev
			}
			continue
		}
		switch {
		case msg && p.skip.is(m.name, from.name, seq):
		case msg && p.kick.is(m.name, from.name, seq):
			delete(p.members, m)
			m.kicked = true // the writer closes it once the queue is out
			close(m.out)
		case msg && p.repeat.is(m.name, from.name, seq):
			m.out <- ev
			m.out <- ev
		case msg && p.hold.is(m.name, from.name, seq):
			m.held, m.heldFrom = ev, from.name
		default:
			m.out <- ev
			if m.held != nil && msg && m.heldFrom == from.name {
				m.out <- m.held
				m.held = nil
			}
		}
	}
}

// write sends m's events, joining what is queued with '\n' if batch.
func (p *fakePeer) write(ctx context.Context, m *fakeMember) {
	defer p.wg.Done()
	for ev := range m.out {
		if p.batch {
			buf := bytes.Clone(ev)
		more:
			for {
				select {
				case next, ok := <-m.out:
					if !ok {
						break more
					}
					buf = append(append(buf, '\n'), next...)
				default:
					break more
				}
			}
			ev = buf
		}
		if err := m.conn.Write(ctx, websocket.MessageText, ev); err != nil {
			return
		}
	}
	if m.kicked {
		m.conn.Close(websocket.StatusPolicyViolation, "kicked")
	}
}

func fakeServer(t *testing.T, p *fakePeer) loadgen.Target {
	t.Helper()
	p.members = make(map[*fakeMember]bool)
	srv := httptest.NewServer(p)
	t.Cleanup(func() {
		srv.Close()
		p.wg.Wait()
	})
	return loadgen.Target{Impl: "fake", URL: srv.URL, Protocol: loadgen.Peer}
}

func TestAccountingPeer(t *testing.T) {
	t.Parallel()
	cfg := loadgen.RoomConfig{Members: 6, Messages: 10, Settle: 5 * time.Second, Timeout: 10 * time.Second, Stall: time.Second}
	tests := []struct {
		name                           string
		peer                           *fakePeer
		loss, dups, reordered, dropped float64
		sender                         float64
		problems                       bool
		wantProblemSubstrings          []string
	}{
		{name: "clean", peer: &fakePeer{}},
		{name: "batched", peer: &fakePeer{batch: true}},
		{
			name: "faults", peer: &fakePeer{batch: true, skip: delivery{to: "u3", seq: 4}, repeat: delivery{to: "u0", seq: 2}},
			loss: 1, dups: 1, problems: true,
			wantProblemSubstrings: []string{"loss: 1 of 60", "1 duplicate"},
		},
		{
			name: "held back", peer: &fakePeer{hold: delivery{to: "u2", seq: 3}},
			reordered: 1, problems: true,
			wantProblemSubstrings: []string{"1 deliveries out of their sender's order"},
		},
		{
			name: "kicked", peer: &fakePeer{kick: delivery{to: "u5", seq: 6}},
			loss: 4, dropped: 1, problems: true, // u5 misses 6..9
			wantProblemSubstrings: []string{"1 members dropped", "1008 kicked"},
		},
		{
			name: "sender dropped", peer: &fakePeer{kickOnJoin: "u0"},
			loss: 10, dropped: 1, sender: 1, problems: true,
			wantProblemSubstrings: []string{"loss: 10 of 60", "1 members dropped"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := fakeServer(t, tt.peer)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := loadgen.RunRoom(ctx, target, cfg)
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			m := r.Metrics
			if m["loss"] != tt.loss || m["duplicates"] != tt.dups || m["reordered"] != tt.reordered || m["dropped"] != tt.dropped {
				t.Errorf("loss %v dups %v reordered %v dropped %v, want %v %v %v %v (problems %q)",
					m["loss"], m["duplicates"], m["reordered"], m["dropped"], tt.loss, tt.dups, tt.reordered, tt.dropped, r.Problems)
			}
			if m["sender"] != tt.sender {
				t.Errorf("sender u%v, want u%v", m["sender"], tt.sender)
			}
			if got := m["delivered"]; got != 60-tt.loss {
				t.Errorf("delivered %v, want %v", got, 60-tt.loss)
			}
			if (len(r.Problems) > 0) != tt.problems {
				t.Errorf("problems %q", r.Problems)
			}
			all := strings.Join(r.Problems, "\n")
			for _, s := range tt.wantProblemSubstrings {
				if !strings.Contains(all, s) {
					t.Errorf("problems %q lack %q", r.Problems, s)
				}
			}
		})
	}
}

func TestJoinPeer(t *testing.T) {
	t.Parallel()
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			t.Parallel()
			target := fakeServer(t, &fakePeer{batch: batch})
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := loadgen.RunJoin(ctx, target, loadgen.JoinConfig{Members: 20, InFlight: 5, Timeout: 10 * time.Second, Quiet: 2 * time.Second})
			if r.Err != "" || len(r.Problems) > 0 {
				t.Fatalf("error %q, problems %q", r.Err, r.Problems)
			}
			if r.Metrics["join_s"] <= 0 || r.Metrics["frames"] < 20 {
				t.Errorf("metrics %v", r.Metrics)
			}
		})
	}
}

// checkReport renders the tables, the markdown and the chart of results.
func checkReport(t *testing.T, results []loadgen.Result) {
	t.Helper()
	ss := loadgen.Scenarios(loadgen.Tiny)
	// A second, failed impl, to draw a ratio and a failure.
	for _, r := range append([]loadgen.Result(nil), results...) {
		r.Impl = "other"
		if r.Scenario == "burst-1k" {
			r.Err = "boom"
		}
		results = append(results, r)
	}
	// A second run of each, a little slower, for the spread.
	for _, r := range append([]loadgen.Result(nil), results...) {
		r.Run = 2
		m := make(map[string]float64)
		for k, v := range r.Metrics {
			m[k] = v * 1.1
		}
		r.Metrics = m
		results = append(results, r)
	}
	rep := &report{Machine: machineInfo(), Command: "go test", Started: "now", Repeat: 2, Impls: []string{"wsroom", "other"}, Results: results}
	rep.Settings = rep.scenarioInfo(ss)
	implsFor := func(s loadgen.Scenario) []string { return []string{"wsroom", "other"} }
	var out strings.Builder
	for _, s := range ss {
		writeTable(&out, s, implsFor(s), rep.pick(s, implsFor(s)))
	}
	if !strings.Contains(out.String(), "FAILED") || !strings.Contains(out.String(), "1.00") {
		t.Errorf("tables:\n%s", out.String())
	}
	var md, svg strings.Builder
	rep.markdown(&md, ss, implsFor)
	if !strings.Contains(md.String(), "| impl |") || !strings.Contains(md.String(), "Run-to-run spread") || !strings.Contains(md.String(), "(±") {
		t.Errorf("markdown:\n%s", md.String())
	}
	rep.chart(&svg, ss, implsFor)
	d := xml.NewDecoder(strings.NewReader(svg.String()))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("chart is not well-formed XML: %v", err)
		}
	}
}

// roomsCfg is a tiny rooms scenario: two rooms of three (u0-u2 in r0,
// u3-u5 in r1), each member sending 8 messages, 0 to 7, 50 ms apart.
var roomsCfg = loadgen.RoomsConfig{
	Rooms: 2, PerRoom: 3, Rate: 20, Warmup: 100 * time.Millisecond, Duration: 300 * time.Millisecond,
	Settle: 5 * time.Second, Drain: 5 * time.Second, Stall: time.Second, MaxLag: 5 * time.Second,
}

func TestRoomsAccountingPeer(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                          string
		peer                          *fakePeer
		loss, dups, reordered, leaked float64
		dropped                       float64
		maxLag                        time.Duration
		want                          []string // in the problems
	}{
		{name: "clean", peer: &fakePeer{}},
		{name: "late", peer: &fakePeer{}, maxLag: time.Nanosecond, want: []string{"the load generator fell behind its schedule"}},
		{name: "batched", peer: &fakePeer{batch: true}},
		{
			name: "faults",
			peer: &fakePeer{
				batch:  true,
				skip:   delivery{to: "u1", from: "u0", seq: 2},
				repeat: delivery{to: "u2", from: "u0", seq: 3},
				hold:   delivery{to: "u4", from: "u3", seq: 1},
				leak:   delivery{to: "u5", from: "u0", seq: 2},
			},
			loss: 1, dups: 1, reordered: 1, leaked: 1,
			want: []string{"loss: 1 of", "1 duplicate", "1 deliveries out of their sender's order", "1 deliveries from another room"},
		},
		{
			name:    "kicked",
			peer:    &fakePeer{kick: delivery{to: "u2", from: "u1", seq: 3}},
			dropped: 1,
			want:    []string{"1 members dropped", "1008 kicked"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := fakeServer(t, tt.peer)
			target.CPU = selfCPU
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cfg := roomsCfg
			if tt.maxLag > 0 {
				cfg.MaxLag = tt.maxLag
			}
			r := loadgen.RunRooms(ctx, target, cfg)
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			m := r.Metrics
			// A kicked member's writes may fail.
			if m["sent"] != 6*8 && (tt.dropped == 0 || m["sent"] < 5*8) {
				t.Errorf("sent %v, want 48", m["sent"])
			}
			if m["expected"] != 2*m["sent"] {
				t.Errorf("expected %v, want 2 × %v", m["expected"], m["sent"])
			}
			if m["duplicates"] != tt.dups || m["reordered"] != tt.reordered || m["misrouted"] != tt.leaked || m["dropped"] != tt.dropped {
				t.Errorf("dups %v reordered %v misrouted %v dropped %v, want %v %v %v %v (problems %q)",
					m["duplicates"], m["reordered"], m["misrouted"], m["dropped"], tt.dups, tt.reordered, tt.leaked, tt.dropped, r.Problems)
			}
			switch {
			case tt.dropped > 0 && m["loss"] == 0:
				t.Errorf("a member dropped, nothing lost (problems %q)", r.Problems)
			case tt.dropped == 0 && m["loss"] != tt.loss:
				t.Errorf("loss %v, want %v (problems %q)", m["loss"], tt.loss, r.Problems)
			}
			if m["delivered"] != m["expected"]-m["loss"] {
				t.Errorf("delivered %v, expected %v, loss %v", m["delivered"], m["expected"], m["loss"])
			}
			if m["own"] == 0 {
				t.Error("no member got its own messages back")
			}
			if m["window_deliveries"] <= 0 || m["window_deliveries"] > m["delivered"] || m["cpu_us_per_delivery"] <= 0 || m["p99_ms"] <= 0 {
				t.Errorf("metrics %v", m)
			}
			all := strings.Join(r.Problems, "\n")
			if len(tt.want) == 0 && len(r.Problems) > 0 {
				t.Errorf("problems %q", r.Problems)
			}
			for _, s := range tt.want {
				if !strings.Contains(all, s) {
					t.Errorf("problems %q lack %q", r.Problems, s)
				}
			}
		})
	}
}

// TestAckedAccountingPeer runs the closed-loop room against the test
// peer: u0 and u1 send, each as soon as it has its last message back.
func TestAckedAccountingPeer(t *testing.T) {
	t.Parallel()
	cfg := loadgen.AckedConfig{
		Members: 4, Senders: 2, Warmup: 50 * time.Millisecond, Duration: 200 * time.Millisecond,
		Settle: 5 * time.Second, AckTimeout: 5 * time.Second, Drain: 5 * time.Second, Stall: time.Second,
	}
	tests := []struct {
		name                  string
		peer                  *fakePeer
		loss, dups, reordered float64
		dropped               float64
		want                  []string
	}{
		{name: "clean", peer: &fakePeer{}},
		{name: "batched", peer: &fakePeer{batch: true}},
		{
			name: "faults",
			peer: &fakePeer{
				batch:  true,
				skip:   delivery{to: "u2", from: "u0", seq: 2},
				repeat: delivery{to: "u3", from: "u1", seq: 3},
				hold:   delivery{to: "u3", from: "u0", seq: 1},
			},
			loss: 1, dups: 1, reordered: 1,
			want: []string{"loss: 1 of", "1 duplicate", "1 deliveries out of their sender's order"},
		},
		{
			name:    "kicked",
			peer:    &fakePeer{kick: delivery{to: "u3", from: "u1", seq: 3}},
			dropped: 1,
			want:    []string{"1 members dropped", "1008 kicked"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			target := fakeServer(t, tt.peer)
			target.CPU = selfCPU
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := loadgen.RunAcked(ctx, target, cfg)
			if r.Err != "" {
				t.Fatal(r.Err)
			}
			m := r.Metrics
			if m["senders"] != 2 || m["sent"] < 10 || m["acked"] <= 0 || m["messages_per_s"] <= 0 || m["ack_p99_ms"] <= 0 {
				t.Errorf("metrics %v", m)
			}
			// Every message of a sender goes to the three others.
			if m["expected"] != 3*m["sent"] {
				t.Errorf("expected %v, want 3 × %v", m["expected"], m["sent"])
			}
			if m["duplicates"] != tt.dups || m["reordered"] != tt.reordered || m["dropped"] != tt.dropped {
				t.Errorf("dups %v reordered %v dropped %v, want %v %v %v (problems %q)",
					m["duplicates"], m["reordered"], m["dropped"], tt.dups, tt.reordered, tt.dropped, r.Problems)
			}
			switch {
			case tt.dropped > 0 && m["loss"] == 0:
				t.Errorf("a member dropped, nothing lost (problems %q)", r.Problems)
			case tt.dropped == 0 && m["loss"] != tt.loss:
				t.Errorf("loss %v, want %v (problems %q)", m["loss"], tt.loss, r.Problems)
			}
			all := strings.Join(r.Problems, "\n")
			if len(tt.want) == 0 && len(r.Problems) > 0 {
				t.Errorf("problems %q", r.Problems)
			}
			for _, s := range tt.want {
				if !strings.Contains(all, s) {
					t.Errorf("problems %q lack %q", r.Problems, s)
				}
			}
		})
	}
}

func TestJoinStormPeer(t *testing.T) {
	t.Parallel()
	for _, batch := range []bool{false, true} {
		t.Run(fmt.Sprint("batch=", batch), func(t *testing.T) {
			t.Parallel()
			target := fakeServer(t, &fakePeer{batch: batch})
			target.PID = os.Getpid()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			r := loadgen.RunJoinStorm(ctx, target, loadgen.StormConfig{Members: 20, InFlight: 5, Timeout: 10 * time.Second, Quiet: 100 * time.Millisecond, QuietMax: 5 * time.Second})
			if r.Err != "" || len(r.Problems) > 0 {
				t.Fatalf("error %q, problems %q", r.Err, r.Problems)
			}
			m := r.Metrics
			if m["in"] != 20 || m["join_s"] <= 0 || m["total_s"] != m["join_s"] || m["frames"] < 20 {
				t.Errorf("metrics %v", m)
			}
			// Peers join as they connect: no unjoined phase.
			for _, key := range []string{"connect_s", "rss_per_unjoined", "rss_joined_ratio"} {
				if _, ok := m[key]; ok {
					t.Errorf("peer has %s: %v", key, m)
				}
			}
			if _, ok := m["rss_per_member"]; !ok {
				t.Errorf("no rss_per_member: %v", m)
			}
		})
	}
	t.Run("kicked", func(t *testing.T) {
		t.Parallel()
		target := fakeServer(t, &fakePeer{kickOnJoin: "u3"})
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		r := loadgen.RunJoinStorm(ctx, target, loadgen.StormConfig{Members: 8, Timeout: 10 * time.Second, Quiet: 100 * time.Millisecond, QuietMax: 5 * time.Second})
		if r.Err != "" || r.Metrics["dropped"] != 1 {
			t.Fatalf("error %q, metrics %v, problems %q", r.Err, r.Metrics, r.Problems)
		}
		// u3 had its join event before it was closed: it counts as in,
		// and dropped.
		if !strings.Contains(strings.Join(r.Problems, "\n"), "1 members dropped") {
			t.Errorf("problems %q", r.Problems)
		}
	})
}

func TestScaleConnsFlag(t *testing.T) {
	t.Parallel()
	c, err := parseFlags([]string{"-scale-conns", "19000", "-scenarios", "scale-19k"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(c.scenarios) != 1 || !strings.HasPrefix(c.scenarios[0].About, "19000 connections in 1900 rooms of 10 (dialled from 2 ") {
		t.Fatalf("scenarios %+v", c.scenarios)
	}
	if _, err := parseFlags([]string{"-scale-conns", "19000", "-scenarios", "scale-50k"}, io.Discard); err == nil || !strings.Contains(err.Error(), "scale-19k") {
		t.Errorf("scale-50k with -scale-conns: %v", err)
	}
	if _, i, ok := loadgen.ScenarioNamed(loadgen.Full, "scale-19k"); !ok || i != len(loadgen.Scenarios(loadgen.Full))-2 {
		t.Errorf("ScenarioNamed(scale-19k) = %d %v", i, ok)
	}
	for _, bad := range []string{"scale-", "scale-k", "scale-0k", "scale-xk", "nope"} {
		if _, _, ok := loadgen.ScenarioNamed(loadgen.Full, bad); ok {
			t.Errorf("ScenarioNamed(%q) ok", bad)
		}
	}
}

func TestMerge(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	all := loadgen.Scenarios(loadgen.Full)
	byName := func(name string) loadgen.Scenario {
		s, _, ok := loadgen.ScenarioNamed(loadgen.Full, name)
		if !ok {
			t.Fatalf("no %s", name)
		}
		return s
	}
	result := func(scenario, impl string, v float64) loadgen.Result {
		s := byName(scenario)
		return loadgen.Result{Scenario: scenario, Impl: impl, Run: 1, Metrics: map[string]float64{s.Headline: v}}
	}
	// An earlier run: echo-64 and join-2k; its file predates the settings'
	// provenance fields.
	old := &report{Command: "go run ./cmd/wsbench -repeat 5", Started: "2026-01-01T00:00:00Z", Repeat: 5,
		Results: []loadgen.Result{result("echo-64", "wsroom", 100), result("echo-64", "gws", 110), result("join-2k", "wsroom", 1), result("join-2k", "gws", 5)}}
	for _, s := range []loadgen.Scenario{byName("echo-64"), byName("join-2k")} {
		old.Settings = append(old.Settings, scenarioSetting{Name: s.Name, About: "as it was", Headline: s.Headline})
	}
	implsOf := old.implsOf([]string{"wsroom", "gws"})
	if err := old.write(dir, []loadgen.Scenario{byName("echo-64"), byName("join-2k")}, implsOf); err != nil {
		t.Fatal(err)
	}

	// This run: join-2k again, and rooms-1000x5.
	ran := []loadgen.Scenario{byName("rooms-1000x5"), byName("join-2k")}
	rep := &report{Command: "go run ./cmd/wsbench -scenarios rooms-1000x5,join-2k", Started: "2026-02-02T00:00:00Z", Repeat: 1,
		Results: []loadgen.Result{result("join-2k", "wsroom", 2), result("rooms-1000x5", "wsroom", 3)}}
	rep.Settings = rep.scenarioInfo(ran)
	ss, note, err := rep.merge(dir, ran, loadgen.Full)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range ss {
		names = append(names, s.Name)
	}
	if want := []string{"echo-64", "join-2k", "rooms-1000x5"}; fmt.Sprint(names) != fmt.Sprint(want) {
		t.Errorf("scenarios %v, want %v (suite order)", names, want)
	}
	if !strings.Contains(note, "echo-64") || strings.Contains(note, "join-2k") {
		t.Errorf("note %q", note)
	}
	if err := rep.write(dir, ss, rep.implsOf([]string{"wsroom", "gws"})); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(dir + "/results.json")
	if err != nil {
		t.Fatal(err)
	}
	var got report
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, r := range got.Results {
		count[r.Scenario+"/"+r.Impl]++
	}
	// join-2k is this run's alone: gws's earlier figure is gone with it.
	if want := map[string]int{"echo-64/wsroom": 1, "echo-64/gws": 1, "join-2k/wsroom": 1, "rooms-1000x5/wsroom": 1}; fmt.Sprint(count) != fmt.Sprint(want) {
		t.Errorf("results %v, want %v", count, want)
	}
	echo, ok := got.setting("echo-64")
	if !ok || echo.Command != old.Command || echo.Started != old.Started || echo.Repeat != 5 || echo.About != "as it was" {
		t.Errorf("echo-64 setting %+v", echo)
	}
	md, err := os.ReadFile(dir + "/RESULTS.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "Run by `go run ./cmd/wsbench -repeat 5` on 2026-01-01T00:00:00Z (median of 5).") {
		t.Errorf("RESULTS.md lacks echo-64's run:\n%s", md)
	}

	// Rendering again, from the file alone, with an order that names a
	// server twice: one row per server.
	before := string(md)
	if err := render(dir, loadgen.Full, []string{"wsroom", "gws", "wsroom", "bare"}); err != nil {
		t.Fatal(err)
	}
	md, err = os.ReadFile(dir + "/RESULTS.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(md) != before {
		t.Errorf("render changed RESULTS.md:\n%s\nwas:\n%s", md, before)
	}
	if n := strings.Count(string(md), "\n| gws | "); n != 1 {
		t.Errorf("%d rows of gws:\n%s", n, md)
	}

	// A quick run does not merge into a full run's file.
	quick := &report{Quick: true}
	ss, note, err = quick.merge(dir, all[:1], loadgen.Quick)
	if err != nil || len(ss) != 1 || !strings.Contains(note, "not merged") {
		t.Errorf("quick merge: %v %q %v", len(ss), note, err)
	}
}
