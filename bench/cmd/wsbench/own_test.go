package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"wsroom.dev/bench/internal/loadgen"
)

// needBackend skips the test when nothing answers at rawURL's host, or,
// with WSROOM_REQUIRE_BACKENDS=1, fails it.
func needBackend(t *testing.T, rawURL string) {
	t.Helper()
	u, err := url.Parse(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp", u.Host, time.Second)
	if err == nil {
		c.Close()
		return
	}
	if os.Getenv("WSROOM_REQUIRE_BACKENDS") == "1" {
		t.Fatalf("%s not reachable at %s: %v", u.Scheme, u.Host, err)
	}
	t.Skipf("%s not reachable at %s: start it (or set WSROOM_%s_URL) to run this test", u.Scheme, u.Host, strings.ToUpper(u.Scheme))
}

// ownBackends are the backends each scenario with servers of its own
// needs.
var ownBackends = map[string][]string{
	"cluster-redis": {loadgen.DefaultRedisURL()},
	"cluster-nats":  {loadgen.DefaultPostgresURL(), loadgen.DefaultNATSURL()},
	"pg-room":       {loadgen.DefaultPostgresURL()},
}

// TestOwnServers runs the scenarios that start their own servers, tiny,
// through the runner: examples/chat, built as the runner builds it, on the
// local Redis, PostgreSQL and NATS. Every variant must deliver every
// message once and in order to members that all stay, and no server the
// runner started may outlive the run.
func TestOwnServers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	var own []loadgen.Scenario
	for _, s := range loadgen.Scenarios(loadgen.Tiny) {
		if s.OwnServers {
			own = append(own, s)
		}
	}
	if len(own) != len(ownBackends) {
		t.Fatalf("%d scenarios start their own servers, %d have backends here", len(own), len(ownBackends))
	}
	bins, err := build(ctx, []string{"wsroom"})
	if err != nil {
		t.Fatal(err)
	}
	defer bins.remove()
	if bins.wsroom == "" {
		t.Fatalf("examples/chat not built: %v", bins.errs["wsroom"])
	}
	var results []loadgen.Result
	for _, s := range own {
		t.Run(s.Name, func(t *testing.T) {
			urls, ok := ownBackends[s.Name]
			if !ok {
				t.Fatalf("no backends known for %s", s.Name)
			}
			for _, u := range urls {
				needBackend(t, u)
			}
			r := runOne(ctx, bins, s, "wsroom", nil)
			if left := children(t, bins.wsroom); len(left) > 0 {
				t.Errorf("servers still running after the run: %v", left)
			}
			if r.Err != "" || r.Skipped != "" || len(r.Problems) > 0 {
				t.Fatalf("error %q, skipped %q, problems %q", r.Err, r.Skipped, r.Problems)
			}
			if _, ok := r.Metrics[s.Headline]; !ok {
				t.Errorf("no headline %s in %v", s.Headline, r.Metrics)
			}
			for _, v := range s.Variants {
				for _, key := range []string{"loss", "duplicates", "reordered", "dropped"} {
					if x, ok := r.Metrics[v.Key+"_"+key]; !ok || x != 0 {
						t.Errorf("%s: %s = %v (measured: %v)", v.Label, key, x, ok)
					}
				}
			}
			results = append(results, r)
		})
	}
	// Their tables: a row per variant.
	rep := &report{Results: results}
	for _, s := range own {
		var out strings.Builder
		picked := rep.pick(s, []string{"wsroom"})
		if _, ok := picked["wsroom"]; !ok {
			continue // skipped above
		}
		writeTable(&out, s, []string{"wsroom"}, picked)
		for _, v := range s.Variants {
			if !strings.Contains(out.String(), "wsroom: "+v.Label) {
				t.Errorf("%s: no row for %q:\n%s", s.Name, v.Label, out.String())
			}
		}
	}
}

// children returns the processes this test started from the binary bin
// that are still there (zombies included).
func children(t *testing.T, bin string) []int {
	t.Helper()
	stats, err := filepath.Glob("/proc/[0-9]*/stat")
	if err != nil {
		t.Fatal(err)
	}
	name := filepath.Base(bin)
	var out []int
	for _, st := range stats {
		b, err := os.ReadFile(st)
		if err != nil {
			continue // it ended
		}
		// pid (comm) state ppid …
		open, shut := strings.IndexByte(string(b), '('), strings.LastIndexByte(string(b), ')')
		if open < 0 || shut < open {
			continue
		}
		f := strings.Fields(string(b[shut+1:]))
		if len(f) < 2 || string(b[open+1:shut]) != name {
			continue
		}
		if ppid, _ := strconv.Atoi(f[1]); ppid == os.Getpid() {
			pid, _ := strconv.Atoi(strings.TrimSpace(string(b[:open])))
			out = append(out, pid)
		}
	}
	return out
}

// TestOwnServersBackendMissing: a backend that does not answer skips the
// scenario, one off loopback fails it, and neither launches a server.
func TestOwnServersBackendMissing(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	target := loadgen.Target{Impl: "wsroom", Protocol: loadgen.Wsroom, Launch: func(context.Context, ...string) (loadgen.Target, error) {
		t.Error("a server was launched")
		return loadgen.Target{}, errors.New("no")
	}}
	for _, tt := range []struct {
		host        string
		skip, fails string
	}{
		{host: "127.0.0.1:1", skip: "not reachable at 127.0.0.1:1"},
		{host: "192.0.2.1:6379", fails: "192.0.2.1 is not a loopback address"},
	} {
		p := loadgen.Params{RedisURL: "redis://" + tt.host + "/0", PostgresURL: "postgres://postgres@" + tt.host + "/test", NATSURL: "nats://" + tt.host}
		for _, s := range loadgen.ScenariosWith(loadgen.Tiny, p) {
			if !s.OwnServers {
				continue
			}
			t.Run(fmt.Sprint(s.Name, " ", tt.host), func(t *testing.T) {
				r := s.Run(ctx, target)
				if !strings.Contains(r.Skipped, tt.skip) || !strings.Contains(r.Err, tt.fails) || (tt.skip == "") == (r.Skipped != "") {
					t.Errorf("skipped %q, error %q; want %q, %q", r.Skipped, r.Err, tt.skip, tt.fails)
				}
				if !strings.HasPrefix(summary(s, r), "skipped: ") && tt.skip != "" {
					t.Errorf("summary %q", summary(s, r))
				}
			})
		}
	}
}

// TestVariantTable draws a scenario with variants: a row per variant, each
// with its own problems, and the problems that name no variant on every
// row; a skipped run says so.
func TestVariantTable(t *testing.T) {
	t.Parallel()
	s, _, ok := loadgen.ScenarioNamed(loadgen.Full, "cluster-redis")
	if !ok || len(s.Variants) != 3 {
		t.Fatalf("cluster-redis: %v %+v", ok, s.Variants)
	}
	two := s.Variants[2]
	r := loadgen.Result{Scenario: s.Name, Impl: "wsroom", Run: 1, Metrics: map[string]float64{
		"mem_paced_p99_ms": 5, "one_paced_p99_ms": 5, "two_paced_p99_ms": 11, "two_p99_vs_one": 2.2,
	}, Problems: []string{two.Label + ": paced p99 2.20× …: over the 2× target", "server exited during the run"}}
	rep := &report{Results: []loadgen.Result{r}}
	header, body, notes := rows(s, []string{"wsroom"}, rep.pick(s, []string{"wsroom"}))
	if len(body) != 3 || len(notes) != 2 {
		t.Fatalf("rows %q, notes %q", body, notes)
	}
	col := func(name string) int {
		for i, h := range header {
			if h == name {
				return i
			}
		}
		t.Fatalf("no column %q in %q", name, header)
		return 0
	}
	if got := body[2][col("paced p99")]; got != "11.0 ms" {
		t.Errorf("two servers' p99 %q", got)
	}
	if got := body[2][col("p99 ÷ 1 server, same backends")]; got != "2.20" {
		t.Errorf("two servers' ratio %q", got)
	}
	for i, want := range []string{"1 problem(s)", "1 problem(s)", "2 problem(s)"} {
		if got := body[i][len(header)-1]; got != want || !strings.HasPrefix(body[i][0], "wsroom: "+s.Variants[i].Label) {
			t.Errorf("row %d: %q, status %q, want %q", i, body[i][0], got, want)
		}
	}
	// The spread, over two runs: a line per variant.
	r2 := r
	r2.Run, r2.Metrics = 2, map[string]float64{"mem_paced_p99_ms": 4, "two_p99_vs_one": 2.6}
	rep.Results = append(rep.Results, r2)
	var md strings.Builder
	rep.spread(&md, s, []string{"wsroom"}, rep.pick(s, []string{"wsroom"}))
	if n := strings.Count(md.String(), "\n| wsroom: "); n != 3 || !strings.Contains(md.String(), "4.00 ms – 5.00 ms") {
		t.Errorf("spread:\n%s", md.String())
	}

	skipped := loadgen.Result{Scenario: s.Name, Impl: "wsroom", Skipped: "redis not reachable"}
	rep = &report{Results: []loadgen.Result{skipped}}
	_, body, notes = rows(s, []string{"wsroom"}, rep.pick(s, []string{"wsroom"}))
	if body[0][len(body[0])-1] != "skipped" || len(notes) != 1 || !strings.Contains(notes[0], "skipped: redis not reachable") {
		t.Errorf("skipped: rows %q, notes %q", body, notes)
	}
}

// TestMergeSkipped: a scenario skipped in every run keeps the figures the
// results already had.
func TestMergeSkipped(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _, ok := loadgen.ScenarioNamed(loadgen.Full, "pg-room")
	if !ok {
		t.Fatal("no pg-room")
	}
	ran := []loadgen.Scenario{s}
	implsOf := func(loadgen.Scenario) []string { return []string{"wsroom"} }
	old := &report{Command: "earlier", Started: "2026-01-01T00:00:00Z", Repeat: 3,
		Results: []loadgen.Result{{Scenario: s.Name, Impl: "wsroom", Run: 1, Metrics: map[string]float64{"pg_messages_per_s": 1234}}}}
	old.Settings = old.scenarioInfo(ran)
	if err := old.write(dir, ran, implsOf); err != nil {
		t.Fatal(err)
	}
	rep := &report{Command: "now", Started: "2026-02-02T00:00:00Z", Repeat: 1,
		Results: []loadgen.Result{{Scenario: s.Name, Impl: "wsroom", Run: 1, Skipped: "postgresql not reachable"}}}
	rep.Settings = rep.scenarioInfo(ran)
	ss, note, err := rep.merge(dir, ran, loadgen.Full)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || len(rep.Results) != 1 || rep.Results[0].Skipped != "" || rep.Results[0].Metrics["pg_messages_per_s"] != 1234 {
		t.Errorf("scenarios %d, results %+v", len(ss), rep.Results)
	}
	if set, _ := rep.setting(s.Name); set.Command != "earlier" || !strings.Contains(note, "pg-room") {
		t.Errorf("setting %+v, note %q", set, note)
	}
	// Run, it replaces them, even with problems.
	rep = &report{Command: "again", Started: "2026-03-03T00:00:00Z", Repeat: 1,
		Results: []loadgen.Result{{Scenario: s.Name, Impl: "wsroom", Run: 1, Metrics: map[string]float64{"pg_messages_per_s": 99}, Problems: []string{"x"}}}}
	rep.Settings = rep.scenarioInfo(ran)
	if _, _, err := rep.merge(dir, ran, loadgen.Full); err != nil {
		t.Fatal(err)
	}
	if len(rep.Results) != 1 || rep.Results[0].Metrics["pg_messages_per_s"] != 99 {
		t.Errorf("results %+v", rep.Results)
	}
}
