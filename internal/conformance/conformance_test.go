package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"wsroom.dev/internal/conformance"
	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/wsroom"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// knownFailures lists the rows that fail against the current core, keyed
// "endpoint/id", with the reason. Such a row still runs: while it fails it
// is skipped with the reason and what the server did; once it passes, the
// test fails until its entry is removed. The goal is an empty map.
var knownFailures = map[string]string{}

const (
	// rowTimeout bounds a whole row.
	rowTimeout = 30 * time.Second
	// closeGrace bounds the wait for the server to close the TCP
	// connection after its close frame (its own close handshake waits
	// up to 5s for a peer that does not answer).
	closeGrace = 7 * time.Second
)

var quiet = slog.New(slog.DiscardHandler)

// confOptions is the server most rows run against: messages up to 1 MiB,
// no rate limit (Autobahn measures the protocol, not the policy).
func confOptions() *wsroom.Options {
	return &wsroom.Options{MaxMessageBytes: confLimit, RateLimit: -1, Logger: quiet}
}

// startServer serves a wsroom Server on 127.0.0.1 (httptest) with the
// echo endpoint on /echo and rooms on /chat/{room}, and returns its
// address.
func startServer(t testing.TB, opts *wsroom.Options) string {
	t.Helper()
	srv, err := wsroom.New(opts)
	if err != nil {
		t.Fatalf("wsroom.New: %v", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/echo", srv.Echo())
	mux.Handle("/chat/{room}", srv)
	ts := httptest.NewServer(mux)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
		ts.Close()
	})
	return strings.TrimPrefix(ts.URL, "http://")
}

func TestRowIDsUnique(t *testing.T) {
	t.Parallel()
	seen := map[string]bool{}
	for _, r := range rows() {
		if seen[r.id] {
			t.Errorf("row %s twice", r.id)
		}
		seen[r.id] = true
	}
	for key := range knownFailures {
		ep, id, _ := strings.Cut(key, "/")
		if !seen[id] || ep != "echo" && ep != "chat" {
			t.Errorf("knownFailures: %q names no row (want endpoint/id)", key)
		}
	}
}

// TestConformance runs every row against the echo endpoint and, where it
// makes sense, the chat endpoint.
func TestConformance(t *testing.T) {
	addrs := map[string]string{
		"":         startServer(t, confOptions()),
		"defaults": startServer(t, &wsroom.Options{Logger: quiet}),
	}
	var (
		mu      sync.Mutex
		results []conformance.Result
	)
	t.Run("rows", func(t *testing.T) {
		for i, r := range rows() {
			for _, ep := range []string{"echo", "chat"} {
				if r.only != "" && r.only != ep {
					continue
				}
				t.Run(ep+"/"+r.id, func(t *testing.T) {
					t.Parallel()
					got, problems := runRow(addrs[r.cfg], ep, r, i)
					key := ep + "/" + r.id
					res := conformance.Result{ID: r.id, Endpoint: ep, Desc: r.desc, Expected: r.want.describe(ep), Got: got, Status: conformance.Pass}
					reason, known := knownFailures[key]
					switch {
					case len(problems) > 0 && known:
						res.Status = conformance.Known
					case len(problems) > 0:
						res.Status = conformance.Fail
					case known:
						res.Status = conformance.Fixed
					}
					mu.Lock()
					results = append(results, res)
					mu.Unlock()
					switch res.Status {
					case conformance.Known:
						t.Skipf("known failure (%s): %s; got: %s", reason, strings.Join(problems, "; "), got)
					case conformance.Fail:
						t.Errorf("%s\nexpected: %s\ngot:      %s\n%s", r.desc, res.Expected, got, strings.Join(problems, "\n"))
					case conformance.Fixed:
						t.Errorf("%s passes now: remove it from knownFailures", key)
					}
				})
			}
		}
	})
	report(t, results)
}

// report prints the table with -v, and writes it to the file named by
// WSROOM_CONFORMANCE_REPORT.
func report(t *testing.T, results []conformance.Result) {
	var b bytes.Buffer
	if err := conformance.WriteTable(&b, results); err != nil {
		t.Fatal(err)
	}
	if testing.Verbose() {
		t.Log("\n" + b.String())
	}
	if path := os.Getenv("WSROOM_CONFORMANCE_REPORT"); path != "" {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Errorf("WSROOM_CONFORMANCE_REPORT: %v", err)
		}
	}
}

// runRow runs r against the endpoint ep ("echo" or "chat") of the server
// at addr and returns what happened and what was wrong with it.
func runRow(addr, ep string, r row, i int) (got string, problems []string) {
	ctx, cancel := context.WithTimeout(context.Background(), rowTimeout)
	defer cancel()
	path, o := "/echo", r.dial
	if ep == "chat" {
		path, o.subprotocol = "/chat/row"+strconv.Itoa(i), wsroom.Subprotocol
	}
	w, err := dialWire(ctx, addr, path, o)
	if err != nil {
		return "no connection", []string{err.Error()}
	}
	defer w.close()
	x := &rowRun{w: w, ep: ep, ctx: ctx, probe: fmt.Sprintf("probe %d", i)}
	x.run(r)
	return summarize(x.got), append(x.problems, w.problems()...)
}

// summarize joins what happened, writing a run of the same thing once
// with a count: "pong[9] ×10".
func summarize(items []string) string {
	var out []string
	for i := 0; i < len(items); {
		j := i + 1
		for j < len(items) && items[j] == items[i] {
			j++
		}
		if j-i > 1 {
			out = append(out, fmt.Sprintf("%s ×%d", items[i], j-i))
		} else {
			out = append(out, items[i])
		}
		i = j
	}
	return strings.Join(out, ", ")
}

// rowRun is one row on one connection.
type rowRun struct {
	w        *wire
	ep       string
	ctx      context.Context
	probe    string
	got      []string
	problems []string
}

func (x *rowRun) note(s string) { x.got = append(x.got, s) }
func (x *rowRun) fail(format string, args ...any) {
	x.problems = append(x.problems, fmt.Sprintf(format, args...))
}
func (x *rowRun) chat() bool                { return x.ep == "chat" }
func (x *rowRun) writeFrame(b []byte) error { return x.w.write(b, 0, 5*time.Second) }

// next returns the next event that is not a ping from the server (the
// reader answered it).
func (x *rowRun) next(ctx context.Context) (event, error) {
	for {
		e, err := x.w.next(ctx)
		if err != nil || e.op != opPing || e.err != nil {
			return e, err
		}
	}
}

func (x *rowRun) run(r row) {
	if x.chat() && !x.join() {
		return
	}
	early := false
	var werr error
steps:
	for _, s := range r.steps {
		if s.pause {
			t := time.NewTimer(pauseFor)
			select {
			case <-x.w.ended:
				early = true
			case <-t.C:
			}
			t.Stop()
			if early {
				break steps
			}
			continue
		}
		if s.close {
			x.w.markCloseSent()
		}
		if werr = x.w.write(s.b, s.chop, 10*time.Second); werr != nil {
			break
		}
	}
	sent := time.Now()
	if werr != nil {
		x.note("(write: " + endString(werr) + ")")
	}
	if !x.replies(r.want.replies) {
		x.drain()
		return
	}
	if r.want.close == nil {
		x.stayOpen()
		return
	}
	x.closed(r.want, sent, early)
}

// join joins the chat connection to its room.
func (x *rowRun) join() bool {
	if err := x.writeFrame(fr(opText, []byte(`{"type":"join","name":"conformance"}`))); err != nil {
		x.fail("join: %v", err)
		return false
	}
	for {
		e, err := x.next(x.ctx)
		if err != nil || e.op != opText {
			x.fail("join: no welcome (%v %v)", e, err)
			return false
		}
		for _, ce := range chatEvents(e.payload) {
			if ce.Type == "welcome" {
				return true
			}
		}
	}
}

// chatEvent is a server event of the JSON protocol.
type chatEvent struct {
	Type string `json:"type"`
	Text string `json:"text"`
	Code string `json:"code"`
}

// chatEvents splits a text frame of the JSON protocol into its events.
func chatEvents(b []byte) []chatEvent {
	var es []chatEvent
	for line := range bytes.SplitSeq(b, []byte("\n")) {
		var e chatEvent
		if err := json.Unmarshal(line, &e); err != nil {
			e.Type = fmt.Sprintf("not JSON (%d bytes)", len(line))
		}
		es = append(es, e)
	}
	return es
}

func (e chatEvent) String() string {
	switch e.Type {
	case "error":
		return "error " + e.Code
	case "message":
		return fmt.Sprintf("message %.12q", e.Text)
	}
	return e.Type
}

// noteChat notes the events of a chat frame and returns them.
func (x *rowRun) noteChat(e event) []chatEvent {
	if e.op != opText {
		x.note(e.String())
		return nil
	}
	es := chatEvents(e.payload)
	for _, ce := range es {
		x.note(ce.String())
	}
	return es
}

// forEndpoint keeps the replies that the endpoint sends: on chat, pongs
// and chat messages; on echo, everything but chat messages.
func forEndpoint(rs []reply, ep string) []reply {
	return slices.DeleteFunc(slices.Clone(rs), func(r reply) bool {
		if ep == "chat" {
			return r.op != opPong && r.chat == ""
		}
		return r.chat != ""
	})
}

// replies checks the replies the row expects, in order.
func (x *rowRun) replies(want []reply) bool {
	want = forEndpoint(want, x.ep)
	for len(want) > 0 {
		e, err := x.next(x.ctx)
		if err != nil {
			x.note("timeout")
			x.fail("no %s within %v", want[0], rowTimeout)
			return false
		}
		if e.err != nil || e.op == opClose {
			x.note(e.String())
			x.fail("%s instead of %s", e, want[0])
			return false
		}
		if x.chat() && e.op != opPong {
			for _, ce := range x.noteChat(e) {
				if len(want) > 0 && want[0].chat != "" && ce.Type == "message" && ce.Text == want[0].chat {
					want = want[1:]
				}
			}
			continue
		}
		x.note(e.String())
		if e.op != want[0].op || want[0].chat == "" && !bytes.Equal(e.payload, want[0].payload) {
			x.fail("%s %.40q instead of %s", e, e.payload, want[0])
			return false
		}
		want = want[1:]
	}
	return true
}

// stayOpen checks that the connection is still usable: a round trip (an
// echo, or a chat message coming back), then a normal closing handshake.
func (x *rowRun) stayOpen() {
	if x.chat() {
		b, _ := json.Marshal(map[string]string{"type": "message", "text": x.probe})
		x.writeFrame(fr(opText, b))
	} else {
		x.writeFrame(fr(opText, []byte(x.probe)))
	}
	for answered := false; !answered; {
		e, err := x.next(x.ctx)
		if err != nil {
			x.note("timeout")
			x.fail("no answer to a probe within %v", rowTimeout)
			return
		}
		switch {
		case e.err != nil || e.op == opClose:
			x.note(e.String())
			x.fail("%s instead of staying open", e)
			return
		case x.chat() && e.op == opText:
			for _, ce := range chatEvents(e.payload) {
				if ce.Type == "message" && ce.Text == x.probe {
					answered = true
				} else {
					x.note(ce.String())
				}
			}
		case !x.chat() && e.op == opText && string(e.payload) == x.probe:
			answered = true
		default:
			x.note(e.String())
			x.fail("unexpected %s before the answer to a probe", e)
			return
		}
	}
	x.note("open")
	x.w.markCloseSent()
	x.writeFrame(fr(opClose, closePayload(1000, nil)))
	x.closed(want{close: []int{1000}}, time.Now(), false)
}

// closed checks how the connection ends.
func (x *rowRun) closed(w want, sent time.Time, early bool) {
	ctx := x.ctx
	if w.within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(x.ctx, sent.Add(w.within))
		defer cancel()
	}
	var last event
	for {
		e, err := x.next(ctx)
		if err != nil {
			x.note(fmt.Sprintf("no close within %v", time.Since(sent).Round(10*time.Millisecond)))
			x.fail("no close frame within %v of the last write", time.Since(sent).Round(10*time.Millisecond))
			return
		}
		if e.err != nil {
			x.note(e.String())
			if !w.dropOK {
				x.fail("connection dropped (%s) without a close frame; want close %s", e, codes(w.close))
			}
			x.failFast(w, early)
			return
		}
		if e.op == opClose {
			last = e
			break
		}
		if x.chat() && e.op != opPong {
			x.noteChat(e)
			continue
		}
		x.note(e.String())
		x.fail("%s before the close frame", e)
	}
	s := last.String()
	if w.within > 0 {
		s += fmt.Sprintf(" after %v", last.at.Sub(sent).Round(time.Millisecond))
	}
	x.note(s)
	if !slices.Contains(w.close, last.code) {
		x.fail("close %d (%q), want %s", last.code, last.reason, codes(w.close))
	}
	x.failFast(w, early)
	ctx, cancel := context.WithTimeout(x.ctx, closeGrace)
	defer cancel()
	for {
		e, err := x.w.next(ctx)
		if err != nil {
			x.note("TCP open")
			x.fail("TCP connection still open %v after the close frame", closeGrace)
			return
		}
		if e.err != nil {
			x.note(e.String())
			return
		}
	}
}

// failFast says, for a row with a pause before its last fragment, when
// the server failed the connection.
func (x *rowRun) failFast(w want, early bool) {
	switch {
	case !w.failFast:
	case early:
		x.note("before the last fragment (fail-fast)")
	default:
		x.note("after the message (NON-STRICT)")
	}
}

// drain notes how the connection went on after a wrong reply, briefly.
func (x *rowRun) drain() {
	ctx, cancel := context.WithTimeout(x.ctx, time.Second)
	defer cancel()
	for range 5 {
		e, err := x.next(ctx)
		if err != nil {
			return
		}
		x.note(e.String())
		if e.err != nil {
			return
		}
	}
}

func codes(cs []int) string {
	var s []string
	for _, c := range slices.Compact(slices.Clone(cs)) {
		if c == 1005 {
			s = append(s, "without a code")
		} else {
			s = append(s, strconv.Itoa(c))
		}
	}
	return strings.Join(s, "|")
}

func (r reply) String() string {
	switch {
	case r.chat != "":
		return fmt.Sprintf("message %q", r.chat)
	case r.op == opPong:
		return fmt.Sprintf("pong[%d]", len(r.payload))
	case r.op == opBinary:
		return fmt.Sprintf("binary[%d] echo", len(r.payload))
	}
	return fmt.Sprintf("text[%d] echo", len(r.payload))
}

// describe states the outcome Autobahn grades OK, on the endpoint ep.
func (w want) describe(ep string) string {
	var parts []string
	for _, r := range forEndpoint(w.replies, ep) {
		parts = append(parts, r.String())
	}
	if len(parts) > 0 {
		parts = []string{summarize(parts)}
	}
	if w.close == nil {
		parts = append(parts, "stays open")
	} else {
		s := "close " + codes(w.close)
		if w.dropOK {
			s += " or drop"
		}
		if w.within > 0 {
			s += " within " + w.within.String()
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ", ")
}
