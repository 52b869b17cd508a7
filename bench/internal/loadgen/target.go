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

// Target is one running server.
type Target struct {
	// Impl names the server, for the results.
	Impl string
	// URL is the server's base URL, http://host:port.
	URL string
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
}

func (t Target) wsURL(path string) string {
	return "ws" + strings.TrimPrefix(t.URL, "http") + path
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
	// metric drawn in the chart.
	Columns  []Column
	Headline string
	// WithBare: the bare server runs this scenario too.
	WithBare bool
	// WsroomOnly: only wsroom runs this scenario (its HTTP fallback,
	// which no peer has).
	WsroomOnly bool
	Run        func(ctx context.Context, t Target) Result
}

// Column returns the column of key.
func (s Scenario) Column(key string) (Column, bool) {
	for _, c := range s.Columns {
		if c.Key == key {
			return c, true
		}
	}
	return Column{}, false
}
