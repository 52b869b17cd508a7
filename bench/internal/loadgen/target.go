// Package loadgen is the load generator of the benchmark suite: the
// scenarios of cmd/wsbench, run against one server speaking the protocol of
// bench/PROTOCOL.md. Every server is driven by the same client code with
// the same parameters; the only differences are the two of PROTOCOL.md
// (wsroom's subprotocol, join frame and welcome; presence events), which
// the event parser handles for every server alike.
package loadgen

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"wsroom.dev/internal/debugmem"
)

// Protocol is how a server lets members into a room.
type Protocol int

const (
	// Peer servers join a connection as soon as it opens, under the name
	// of its URL, and send it its own join event.
	Peer Protocol = iota
	// Wsroom servers need subprotocol wsroom.v1 and a join frame, and
	// answer with a welcome listing the members.
	Wsroom
	// Bare servers have no rooms: a connection is in once it is open.
	Bare
)

// Subprotocol is what wsroom servers are offered.
const Subprotocol = "wsroom.v1"

// ProtocolOf returns the protocol of an implementation name.
func ProtocolOf(impl string) Protocol {
	switch impl {
	case "wsroom":
		return Wsroom
	case "bare":
		return Bare
	}
	return Peer
}

// Target is one running server, or several that form one chat.
type Target struct {
	// Impl names the server, for the results.
	Impl string
	// URL is the server's base URL, http://host:port.
	URL string
	// Also are the base URLs of more servers of the same chat (sharing a
	// store and a broker): member i of a crowd dials server i modulo
	// 1+len(Also), URL first, so that every room has members on each.
	Also []string
	// Protocol is how members join.
	Protocol Protocol
	// CPU returns the server's CPU time so far. Nil: CPU is not
	// measured.
	CPU func() (time.Duration, error)
	// PID is the server's process, for its RSS and limits from /proc; 0:
	// unknown (neither is measured nor checked).
	PID int
	// Stop, if set, is called once measuring is over and before the
	// clients close: the runner stops the server there, so that the
	// teardown does not cost a storm of leave broadcasts.
	Stop func()
	// Backends are the process names (/proc/PID/comm) of the store and
	// broker servers the server uses, if any: their CPU is reported
	// apart.
	Backends []string
	// Launch, if set, starts more wsroom servers: the scenarios that
	// measure servers of their own (Scenario.OwnServers) get it instead
	// of a server.
	Launch Launcher
}

// Launcher starts a fresh wsroom server (examples/chat, every limit off)
// with flags added to its command line, on a free loopback port, and
// returns it once it answers. Its Target's Stop stops it; the runner also
// stops every server it launched when the run ends.
type Launcher func(ctx context.Context, flags ...string) (Target, error)

func (t Target) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(t.URL, "http") + path
}

// memberURL is the WebSocket URL of path on the server of member i: one of
// URL and Also, in turn.
func (t Target) memberURL(i int, path string) string {
	if n := 1 + len(t.Also); n > 1 && i%n > 0 {
		return "ws" + strings.TrimPrefix(t.Also[i%n-1], "http") + path
	}
	return t.wsURL(path)
}

func (t Target) cpu() (time.Duration, bool) {
	if t.CPU == nil {
		return 0, false
	}
	d, err := t.CPU()
	return d, err == nil
}

func (t Target) stop() {
	if t.Stop != nil {
		t.Stop()
	}
}

// Mem fetches the server's /debug/mem report.
func (t Target) Mem(ctx context.Context) (debugmem.Report, error) {
	var r debugmem.Report
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.URL+"/debug/mem", nil)
	if err != nil {
		return r, fmt.Errorf("debug/mem: %w", err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r, fmt.Errorf("debug/mem: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return r, fmt.Errorf("debug/mem: status %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return r, fmt.Errorf("debug/mem: %w", err)
	}
	return r, nil
}

// Result is the outcome of one scenario run against one server.
type Result struct {
	Scenario string `json:"scenario"`
	Impl     string `json:"impl"`
	Run      int    `json:"run"`
	// Metrics holds the measured numbers, by the keys of the scenario's
	// columns (and a few more).
	Metrics map[string]float64 `json:"metrics"`
	// Problems lists what went wrong while measuring: timeouts, dropped
	// members, loss, errors. The metrics are still reported.
	Problems []string `json:"problems,omitempty"`
	// Err is set when the scenario could not run at all.
	Err string `json:"error,omitempty"`
	// Skipped is set, instead of Err, when the scenario did not run
	// because something it needs is missing from the machine (a backend
	// server): why, and how to run it.
	Skipped string `json:"skipped,omitempty"`
	// Seconds is the wall time of the run, setup included.
	Seconds float64 `json:"seconds"`
}

func (r *Result) set(key string, v float64) {
	if r.Metrics == nil {
		r.Metrics = make(map[string]float64)
	}
	r.Metrics[key] = v
}

func (r *Result) problem(format string, args ...any) {
	r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
}

// Format is how a column's numbers are printed.
type Format int

const (
	Count    Format = iota // 1234
	Rate                   // 12.3k/s
	Micros                 // µs
	Millis                 // ms
	Seconds                // s
	Bytes                  // KiB
	Fraction               // 0.12
)

// Column is one metric of a scenario's table.
type Column struct {
	Key    string
	Header string
	Format Format
	// Better is +1 when higher is better, -1 when lower is, 0 when
	// neither.
	Better int
	// Ratio adds a "wsroom ÷ impl" column after this one.
	Ratio bool
}

// Scenario is one benchmark.
type Scenario struct {
	Name string
	// About says what it does, with its parameters.
	About string
	// Columns are the metrics of its table; Headline is the key of the
	// metric drawn in the chart (with Variants: a column's key prefixed
	// with a variant's).
	Columns  []Column
	Headline string
	// Variants, if any, are the configurations one run of the scenario
	// measures side by side (one server and two, a store and another):
	// its table has a row per variant, whose figures are the metrics
	// Key + "_" + the column's key, and a problem of a variant starts
	// with its Label and ": ".
	Variants []Variant
	// WithBare: the bare server runs this scenario too.
	WithBare bool
	// WsroomOnly: only wsroom runs this scenario (its HTTP fallback,
	// backends and several servers, which no peer has).
	WsroomOnly bool
	// OwnServers: the scenario starts the servers it measures, through
	// Target.Launch; the runner starts none for it.
	OwnServers bool
	Run        func(ctx context.Context, t Target) Result
}

// Variant is one configuration of a scenario with Variants.
type Variant struct {
	Key   string // the prefix of its metrics
	Label string // its row's name
}

// Column returns the column of key, or of a variant's key.
func (s Scenario) Column(key string) (Column, bool) {
	for _, c := range s.Columns {
		if c.Key == key {
			return c, true
		}
	}
	for _, v := range s.Variants {
		if rest, ok := strings.CutPrefix(key, v.Key+"_"); ok {
			return s.Column(rest)
		}
	}
	return Column{}, false
}
