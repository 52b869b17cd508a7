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
	return loadgen.Target{Impl: "wsroom", URL: srv.URL, Protocol: loadgen.Wsroom}
}

// TestScenariosWsroom runs the whole suite, tiny, against wsroom in
// process, a fresh server per scenario as the runner does: everything must
// arrive, once, to members that all stay.
func TestScenariosWsroom(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var results []loadgen.Result
	for _, s := range loadgen.Scenarios(loadgen.Tiny) {
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
// gorilla does, skip one delivery, repeat one, and close a member.
type fakePeer struct {
	batch  bool
	skip   delivery // not delivered
	repeat delivery // delivered twice
	kick   delivery // the member is closed instead of receiving it
	// kickOnJoin names a member closed right after its join event.
	kickOnJoin string

	mu      sync.Mutex
	members map[*fakeMember]bool
	wg      sync.WaitGroup
}

type delivery struct {
	to  string
	seq int
}

func (d delivery) is(to string, seq int) bool { return d.to != "" && d.to == to && d.seq == seq }

type fakeMember struct {
	name   string
	conn   *websocket.Conn
	out    chan []byte
	kicked bool // set before out is closed
}

func (p *fakePeer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/echo" {
		http.Error(w, "no echo", http.StatusNotFound)
		return
	}
	c, err := websocket.Accept(w, r, nil)
	if err != nil {
		return
	}
	defer c.CloseNow()
	m := &fakeMember{name: r.URL.Query().Get("name"), conn: c, out: make(chan []byte, 1<<14)}
	p.wg.Add(1)
	go p.write(r.Context(), m)
	p.mu.Lock()
	p.members[m] = true
	p.broadcastLocked(fmt.Appendf(nil, `{"type":"join","name":%q}`, m.name), -1)
	if m.name == p.kickOnJoin {
		delete(p.members, m)
		m.kicked = true
		close(m.out)
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
		p.broadcastLocked(fmt.Appendf(nil, `{"type":"message","from":%q,"text":%q}`, m.name, f.Text), seq)
		p.mu.Unlock()
	}
	p.mu.Lock()
	if p.members[m] {
		delete(p.members, m)
		close(m.out)
		p.broadcastLocked(fmt.Appendf(nil, `{"type":"leave","name":%q}`, m.name), -1)
	}
	p.mu.Unlock()
}

func (p *fakePeer) broadcastLocked(ev []byte, seq int) {
	for m := range p.members {
		switch {
		case seq >= 0 && p.skip.is(m.name, seq):
		case seq >= 0 && p.kick.is(m.name, seq):
			delete(p.members, m)
			m.kicked = true // the writer closes it once the queue is out
			close(m.out)
		case seq >= 0 && p.repeat.is(m.name, seq):
			m.out <- ev
			m.out <- ev
		default:
			m.out <- ev
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
		name                  string
		peer                  *fakePeer
		loss, dups, dropped   float64
		sender                float64
		problems              bool
		wantProblemSubstrings []string
	}{
		{name: "clean", peer: &fakePeer{}},
		{name: "batched", peer: &fakePeer{batch: true}},
		{
			name: "faults", peer: &fakePeer{batch: true, skip: delivery{"u3", 4}, repeat: delivery{"u0", 2}},
			loss: 1, dups: 1, problems: true,
			wantProblemSubstrings: []string{"loss: 1 of 60", "1 duplicate"},
		},
		{
			name: "kicked", peer: &fakePeer{kick: delivery{"u5", 6}},
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
			if m["loss"] != tt.loss || m["duplicates"] != tt.dups || m["dropped"] != tt.dropped {
				t.Errorf("loss %v dups %v dropped %v, want %v %v %v (problems %q)",
					m["loss"], m["duplicates"], m["dropped"], tt.loss, tt.dups, tt.dropped, r.Problems)
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
	rep := &report{Machine: machineInfo(), Command: "go test", Impls: []string{"wsroom", "other"}, Results: results, Settings: scenarioInfo(ss)}
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
	if !strings.Contains(md.String(), "| impl |") {
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
