package loadgen

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestSpreadPhases(t *testing.T) {
	t.Parallel()
	const n, period = 1000, 500 * time.Millisecond
	phase := spreadPhases(n, period)
	sorted := slices.Clone(phase)
	slices.Sort(sorted)
	// One phase in each slot of period/n: a steady rate, not bursts.
	slot := period / n
	for k, p := range sorted {
		if p < time.Duration(k)*slot || p >= time.Duration(k+1)*slot {
			t.Fatalf("phase %d = %v, not in slot [%v, %v)", k, p, time.Duration(k)*slot, time.Duration(k+1)*slot)
		}
	}
	// Shuffled: the members of a room do not send one after the other.
	inOrder := 0
	for i := 1; i < n; i++ {
		if phase[i] > phase[i-1] {
			inOrder++
		}
	}
	if inOrder > n*3/4 {
		t.Errorf("%d of %d phases follow the member order", inOrder, n)
	}
}

func TestLimitsCheck(t *testing.T) {
	t.Parallel()
	ok := limits{clientFiles: 100_000, serverFiles: 100_000, serverHard: 100_000, systemFiles: 1 << 20, ports: 28_232}
	if err := ok.check(50_000, 5); err != nil {
		t.Errorf("50k from 5 sources: %v", err)
	}
	if err := ok.check(50_000, 0); err == nil || !strings.Contains(err.Error(), "ip_local_port_range has 28232 ports") {
		t.Errorf("50k from one source: %v", err)
	}
	low := ok
	low.clientFiles, low.serverFiles, low.serverHard = 20_000, 20_000, 20_000
	err := low.check(50_000, 5)
	if err == nil {
		t.Fatal("RLIMIT_NOFILE 20000 holds 50k connections")
	}
	for _, want := range []string{"cannot hold 50000 connections (100000 sockets", "load generator may open 20000 files", "server may open 20000 files (RLIMIT_NOFILE, hard limit 20000)", "ulimit -Hn"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("%v lacks %q", err, want)
		}
	}
	if err := low.check(19_000, 2); err != nil {
		t.Errorf("19k: %v", err)
	}
}

func TestProc(t *testing.T) {
	t.Parallel()
	rss, err := procRSS(os.Getpid())
	if err != nil || rss < 1<<20 {
		t.Errorf("procRSS = %d, %v", rss, err)
	}
	if _, err := procRSS(0); err == nil {
		t.Error("procRSS(0): no error")
	}
	soft, hard, err := fileLimit(os.Getpid())
	if err != nil || soft == 0 || hard < soft {
		t.Errorf("fileLimit = %d %d %v", soft, hard, err)
	}
	l, err := readLimits(os.Getpid())
	if err != nil || l.clientFiles != soft || l.serverFiles != soft || l.ports == 0 {
		t.Errorf("readLimits = %+v, %v", l, err)
	}
}

func TestSourceAddrs(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		conns int
		want  []string
	}{
		{20, []string{"127.0.0.2"}},
		{19_000, []string{"127.0.0.2", "127.0.0.3"}},
		{50_000, []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"}},
	} {
		if got := sourceAddrs(tt.conns); !slices.Equal(got, tt.want) {
			t.Errorf("sourceAddrs(%d) = %v, want %v", tt.conns, got, tt.want)
		}
	}
	c := newCrowd(Target{}, 1, 1)
	if err := c.setSources([]string{"10.0.0.1"}); err == nil {
		t.Error("setSources(10.0.0.1): no error")
	}
	if err := c.setSources([]string{"127.0.0.1", "127.0.0.2"}); err != nil || len(c.dialers) != 2 {
		t.Errorf("setSources: %v, %d dialers", err, len(c.dialers))
	}
}

func TestScenarioNames(t *testing.T) {
	t.Parallel()
	want := []string{"echo-64", "echo-4k", "burst-1k", "burst-5k", "paced-1k", "join-2k", "idle-10k", "rooms-1000x5", "rooms-200x25", "fallback-1k", "cluster-redis", "cluster-nats", "pg-room", "scale-50k", "join-10k"}
	for _, size := range []Size{Full, Quick, Tiny} {
		var got []string
		for _, s := range Scenarios(size) {
			got = append(got, s.Name)
			if _, ok := s.Column(s.Headline); !ok {
				t.Errorf("%s: headline %s is not a column", s.Name, s.Headline)
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("size %d: %v", size, got)
		}
	}
	s := ScenariosWith(Full, Params{ScaleConns: 19_005})
	if s[13].Name != "scale-19k" || !strings.HasPrefix(s[13].About, "19000 connections in 1900 rooms") {
		t.Errorf("scale with 19005: %s: %s", s[13].Name, s[13].About)
	}
}

func TestParseFrom(t *testing.T) {
	t.Parallel()
	e, ok := parseEvent([]byte(`{"type":"message","id":"7","ts":1,"from":"u12","text":"b:3:4"}`))
	if !ok || string(e.from) != "u12" || string(e.text) != "b:3:4" {
		t.Errorf("parseEvent = %+v %v", e, ok)
	}
	e, ok = parseEvent([]byte(`{"type":"message","from":"u\u0031","text":"b:3:4"}`))
	if !ok || string(e.from) != "u1" {
		t.Errorf("escaped from: %+v %v", e, ok)
	}
}
