package loadgen

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The backend servers wsroom shares between its servers (Redis,
// PostgreSQL, NATS) are the machine's own, on loopback, shared with other
// users: the scenarios that use them check that they answer first and
// are skipped (Result.Skipped) when one does not, name their rooms afresh
// in every run (the stores keep what earlier runs left), and report the
// backends' CPU apart from the servers'.

// Backend URLs: the environment's (WSROOM_REDIS_URL, WSROOM_POSTGRES_URL,
// WSROOM_NATS_URL, as the adapters' tests read them), or the standard
// local servers.
func DefaultRedisURL() string { return envOr("WSROOM_REDIS_URL", "redis://127.0.0.1:6379/0") }

// DefaultPostgresURL is the PostgreSQL store of the backend scenarios.
func DefaultPostgresURL() string {
	return envOr("WSROOM_POSTGRES_URL", "postgres://postgres@127.0.0.1:5432/test")
}

// DefaultNATSURL is the NATS broker of the backend scenarios.
func DefaultNATSURL() string { return envOr("WSROOM_NATS_URL", "nats://127.0.0.1:4222") }

func envOr(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

// backend is a store or broker server a scenario needs.
type backend struct {
	url  string
	comm string // its processes' name in /proc/PID/comm
	hint string // how to start it
}

func redisBackend(u string) backend {
	return backend{url: u, comm: "redis-server", hint: "start redis-server (or pass -redis URL)"}
}

func postgresBackend(u string) backend {
	return backend{url: u, comm: "postgres", hint: "start postgresql (or pass -postgres URL)"}
}

func natsBackend(u string) backend {
	return backend{url: u, comm: "nats-server", hint: "start nats-server -js -a 127.0.0.1 (or pass -nats URL)"}
}

// check returns why the backend cannot be used: its URL names no loopback
// address (the suite runs on loopback only: Err), or nothing answers there
// (skipped).
func (b backend) check(ctx context.Context) (fail, skip string) {
	u, err := url.Parse(b.url)
	if err != nil || u.Host == "" {
		return fmt.Sprintf("backend URL %q: not a URL with a host", b.url), ""
	}
	host := u.Hostname()
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Sprintf("backend %s: %s is not a loopback address (the suite runs on loopback only)", u.Redacted(), host), ""
	}
	addr := u.Host
	if u.Port() == "" {
		return fmt.Sprintf("backend URL %s: no port", u.Redacted()), ""
	}
	dctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(dctx, "tcp", addr)
	if err != nil {
		return "", fmt.Sprintf("%s not reachable at %s (%v): %s to run this scenario", u.Scheme, addr, shortErr(err), b.hint)
	}
	c.Close()
	return "", ""
}

// checkBackends checks bs in turn; it sets r.Err or r.Skipped and reports
// false at the first that cannot be used.
func checkBackends(ctx context.Context, r *Result, bs ...backend) bool {
	for _, b := range bs {
		fail, skip := b.check(ctx)
		switch {
		case fail != "":
			r.Err = fail
			return false
		case skip != "":
			r.Skipped = skip
			return false
		}
	}
	return true
}

// comms returns the process names of bs, once each.
func comms(bs ...backend) []string {
	var out []string
	for _, b := range bs {
		if !slices.Contains(out, b.comm) {
			out = append(out, b.comm)
		}
	}
	return out
}

// runID names the rooms of one run: fresh, so that what earlier runs left
// in a shared store (names, history) is not in the way.
func runID() string {
	return fmt.Sprintf("b%08x", rand.Uint32())
}

// together returns the servers ts, sharing a store and a broker, as one
// Target: members are dealt to them in turn, their CPU is summed, Stop
// stops them all at once.
func together(ts []Target) Target {
	t := ts[0]
	t.Also, t.Launch = nil, nil
	for _, o := range ts[1:] {
		t.Also = append(t.Also, o.URL)
	}
	t.CPU = func() (time.Duration, error) {
		var sum time.Duration
		for _, o := range ts {
			if o.CPU == nil {
				return 0, errors.New("cpu: not measured")
			}
			d, err := o.CPU()
			if err != nil {
				return 0, err
			}
			sum += d
		}
		return sum, nil
	}
	t.Stop = func() {
		var wg sync.WaitGroup
		for _, o := range ts {
			wg.Add(1)
			go func() {
				defer wg.Done()
				o.stop()
			}()
		}
		wg.Wait()
	}
	return t
}

// launch starts n servers with flags; on an error it stops those it
// started.
func launch(ctx context.Context, t Target, n int, flags ...string) (Target, error) {
	var ts []Target
	for range n {
		s, err := t.Launch(ctx, flags...)
		if err != nil {
			for _, s := range ts {
				s.stop()
			}
			return Target{}, err
		}
		ts = append(ts, s)
	}
	return together(ts), nil
}

// backendFlags are the chat example's flags for a store and a broker.
func backendFlags(store, broker string) []string {
	return []string{"-store", store, "-broker", broker}
}

// procsCPU returns the CPU time used so far by the live processes named
// comm (in /proc/PID/comm): a backend server, all of its processes. A
// process that ended is no longer counted, one that started is counted
// whole: over a phase it is an estimate for servers whose processes live
// long (PostgreSQL's connection processes live as long as the pools).
func procsCPU(names []string) (time.Duration, bool) {
	if len(names) == 0 {
		return 0, false
	}
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	var sum time.Duration
	found := false
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if err != nil || !slices.Contains(names, strings.TrimSpace(string(b))) {
			continue
		}
		if cpu, err := ProcessCPU(pid); err == nil {
			sum += cpu
			found = true
		}
	}
	return sum, found
}

// backendCPU is the CPU of the target's backend servers so far.
func (t Target) backendCPU() (time.Duration, bool) { return procsCPU(t.Backends) }
