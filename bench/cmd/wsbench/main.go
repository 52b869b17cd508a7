// Command wsbench compares wsroom with peer WebSocket servers: it builds
// wsroom's chat example and the peer server, runs every scenario against a
// fresh process of each server on the loopback interface, and writes the
// results as tables (stdout and results/RESULTS.md), JSON
// (results/results.json) and a chart (results/chart.svg).
//
//	cd bench && go run ./cmd/wsbench              # the full suite, ~15 min
//	go run ./cmd/wsbench -quick                   # a smoke run, < 1 min
//	go run ./cmd/wsbench -impls wsroom,coder -scenarios echo-64,burst-1k
//
// See bench/README.md for what each scenario measures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"wsroom.dev/bench/internal/loadgen"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		log.Fatal(err)
	}
}

// defaultImpls are the servers compared; bare joins the scenarios that
// measure memory.
const defaultImpls = "wsroom,coder,gorilla,melody,gws"

type config struct {
	impls      []string
	scenarios  []loadgen.Scenario
	out        string
	quick      bool
	repeat     int
	cpuprofile string
	command    string
	size       loadgen.Size
	merge      bool
	render     bool

	serverProfile string        // directory for server CPU profiles, or ""
	idleWait      time.Duration // before a run, wait this long at most for an idle machine
	idleMin       float64       // the idle share that is enough
	profileDelay  time.Duration // from the start of a scenario
	profileFor    time.Duration
}

func parseFlags(args []string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("wsbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	impls := fs.String("impls", defaultImpls, "comma-separated servers to compare (bare is added to the idle-memory scenario)")
	scenarios := fs.String("scenarios", "", "comma-separated scenarios (default all: "+strings.Join(names(loadgen.Scenarios(loadgen.Full)), ",")+")")
	out := fs.String("out", "results", "directory for results.json, RESULTS.md and chart.svg")
	quick := fs.Bool("quick", false, "small N and short phases: a smoke run")
	repeat := fs.Int("repeat", 1, "runs of each scenario × server (fresh process each); tables show the median run")
	cpuprofile := fs.String("cpuprofile", "", "write the load generator's own CPU profile to this file")
	scaleConns := fs.Int("scale-conns", 0, "connections of the scale scenario instead of 50,000 (10 a room), which is then named scale-<N/1000>k")
	redisURL := fs.String("redis", loadgen.DefaultRedisURL(), "the Redis of cluster-redis (store and broker), on loopback; default $WSROOM_REDIS_URL or the local server")
	postgresURL := fs.String("postgres", loadgen.DefaultPostgresURL(), "the PostgreSQL of cluster-nats and pg-room (store), on loopback; default $WSROOM_POSTGRES_URL or the local server")
	natsURL := fs.String("nats", loadgen.DefaultNATSURL(), "the NATS of cluster-nats (broker), on loopback; default $WSROOM_NATS_URL or the local server")
	fs.BoolVar(&c.merge, "merge", true, "keep the figures of the scenarios not run from the results.json already in -out")
	fs.BoolVar(&c.render, "render", false, "run nothing: rewrite RESULTS.md and chart.svg in -out from its results.json")
	fs.StringVar(&c.serverProfile, "serverprofile", "", "write each server's CPU profile, taken from its /debug/pprof/profile during the scenario, to DIR/SCENARIO-IMPL-RUN.pprof (SCENARIO-IMPL-RUN-N.pprof for the N-th server of a scenario that starts its own: cluster-*, pg-room)")
	fs.DurationVar(&c.profileDelay, "profile-delay", time.Second, "with -serverprofile: when the profile starts, after the scenario does")
	fs.DurationVar(&c.profileFor, "profile-for", 4*time.Second, "with -serverprofile: how long the profile runs")
	fs.DurationVar(&c.idleWait, "idle-wait", 0, "before each run, wait up to this long until the machine is -idle-min idle (other programs' load skews every figure)")
	fs.Float64Var(&c.idleMin, "idle-min", 0.8, "with -idle-wait: the share of the machine's CPU time that must be idle over a second")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	c.out, c.quick, c.repeat, c.cpuprofile = *out, *quick, *repeat, *cpuprofile
	c.command = strings.TrimSpace("go run ./cmd/wsbench " + strings.Join(args, " "))
	if c.repeat < 1 {
		return nil, fmt.Errorf("-repeat %d: must be at least 1", c.repeat)
	}
	for _, impl := range strings.Split(*impls, ",") {
		if impl = strings.TrimSpace(impl); impl != "" && !slices.Contains(c.impls, impl) {
			c.impls = append(c.impls, impl)
		}
	}
	if len(c.impls) == 0 {
		return nil, errors.New("-impls: no server")
	}
	if *scaleConns < 0 {
		return nil, fmt.Errorf("-scale-conns %d: must not be negative", *scaleConns)
	}
	c.size = loadgen.Full
	if c.quick {
		c.size = loadgen.Quick
	}
	all := loadgen.ScenariosWith(c.size, loadgen.Params{ScaleConns: *scaleConns, RedisURL: *redisURL, PostgresURL: *postgresURL, NATSURL: *natsURL})
	if *scenarios == "" {
		c.scenarios = all
	} else {
		for _, name := range strings.Split(*scenarios, ",") {
			i := slices.IndexFunc(all, func(s loadgen.Scenario) bool { return s.Name == strings.TrimSpace(name) })
			if i < 0 {
				return nil, fmt.Errorf("-scenarios: unknown %q (have %s)", name, strings.Join(names(all), ", "))
			}
			c.scenarios = append(c.scenarios, all[i])
		}
	}
	return c, nil
}

func names(ss []loadgen.Scenario) []string {
	var n []string
	for _, s := range ss {
		n = append(n, s.Name)
	}
	return n
}

// profiler returns what takes the server's CPU profile during one run, or
// nil without -serverprofile. A scenario that starts its own servers gets
// a profile of each, nth (from 1) in the order of their starts, named
// SCENARIO-IMPL-RUN-NTH.pprof, its delay counted from that server's
// start; nth is 0 for the server of the runner.
func (c *config) profiler(s loadgen.Scenario, impl string, run int, logf func(string, ...any)) func(ctx context.Context, url string, nth int) {
	if c.serverProfile == "" {
		return nil
	}
	return func(ctx context.Context, url string, nth int) {
		select {
		case <-ctx.Done():
			return
		case <-time.After(c.profileDelay):
		}
		secs := max(1, int(c.profileFor.Round(time.Second)/time.Second))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", url, secs), nil)
		if err != nil {
			logf("profile: %v", err)
			return
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			logf("profile %s %s: %v", s.Name, impl, err)
			return
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			logf("profile %s %s: %s", s.Name, impl, resp.Status)
			return
		}
		if err := os.MkdirAll(c.serverProfile, 0o755); err != nil {
			logf("profile: %v", err)
			return
		}
		name := filepath.Join(c.serverProfile, fmt.Sprintf("%s-%s-%d.pprof", s.Name, impl, run))
		if nth > 0 {
			name = filepath.Join(c.serverProfile, fmt.Sprintf("%s-%s-%d-%d.pprof", s.Name, impl, run, nth))
		}
		f, err := os.Create(name)
		if err != nil {
			logf("profile: %v", err)
			return
		}
		defer f.Close()
		if _, err := io.Copy(f, resp.Body); err != nil {
			logf("profile %s: %v", name, err)
		}
	}
}

// implsFor returns the servers a scenario runs against.
func (c *config) implsFor(s loadgen.Scenario) []string {
	impls := slices.Clone(c.impls)
	if s.WithBare && !slices.Contains(impls, "bare") {
		impls = append(impls, "bare")
	}
	if !s.WithBare {
		impls = slices.DeleteFunc(impls, func(i string) bool { return i == "bare" })
	}
	if s.WsroomOnly {
		impls = slices.DeleteFunc(impls, func(i string) bool { return i != "wsroom" })
	}
	return impls
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	order := append(slices.Clone(c.impls), strings.Split(defaultImpls+",bare", ",")...)
	if c.render {
		return render(c.out, c.size, order)
	}
	started := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, "%6.1fs  %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, args...))
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	if n, err := raiseFileLimit(); err != nil {
		logf("warning: %v", err)
	} else {
		logf("open files limit: %d", n)
	}

	var every []string
	for _, s := range c.scenarios {
		for _, impl := range c.implsFor(s) {
			if !slices.Contains(every, impl) {
				every = append(every, impl)
			}
		}
	}
	logf("building servers")
	bins, err := build(ctx, every)
	if err != nil {
		return err
	}
	defer bins.remove()
	for what, err := range bins.errs {
		logf("warning: %s not built: %v", what, err)
	}

	rep := &report{
		Machine: machineInfo(),
		Command: c.command,
		Quick:   c.quick,
		Repeat:  c.repeat,
		Started: started.UTC().Format(time.RFC3339),
		Impls:   c.impls,
		Core:    coreVersion(),
	}
	rep.Settings = rep.scenarioInfo(c.scenarios)
	logf("wsroom: %s", rep.Core)
	for _, s := range c.scenarios {
		impls := c.implsFor(s)
		logf("%s: %s", s.Name, s.About)
		for run := 1; run <= c.repeat; run++ {
			for _, impl := range impls {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				idle := c.waitIdle(ctx, logf)
				r := runOne(ctx, bins, s, impl, c.profiler(s, impl, run, logf))
				r.Run = run
				if idle >= 0 {
					if r.Metrics == nil {
						r.Metrics = make(map[string]float64)
					}
					r.Metrics["machine_idle_before"] = idle
				}
				rep.Results = append(rep.Results, r)
				logf("  %-8s %s", impl, summary(s, r))
			}
		}
		writeTable(stdout, s, impls, rep.pick(s, impls))
		fmt.Fprintln(stdout)
	}
	rep.Seconds = time.Since(started).Seconds()
	ss := c.scenarios
	if c.merge {
		var note string
		if ss, note, err = rep.merge(c.out, c.scenarios, c.size); err != nil {
			return err
		}
		if note != "" {
			logf("%s", note)
		}
	}
	if err := rep.write(c.out, ss, rep.implsOf(order)); err != nil {
		return err
	}
	logf("done in %s; wrote %s", time.Since(started).Round(time.Second), filepath.Join(c.out, "{results.json,RESULTS.md,chart.svg}"))
	return nil
}

// waitIdle samples how idle the machine is (a share of its CPU time, or
// -1 if it cannot tell) and, with -idle-wait, samples again until that is
// at least -idle-min or the wait is over.
func (c *config) waitIdle(ctx context.Context, logf func(string, ...any)) float64 {
	sample := 500 * time.Millisecond
	if c.idleWait > 0 {
		sample = time.Second
	}
	deadline := time.Now().Add(c.idleWait)
	for {
		idle, err := idleFraction(ctx, sample)
		if err != nil {
			return -1
		}
		if c.idleWait <= 0 || idle >= c.idleMin {
			return idle
		}
		if time.Now().After(deadline) {
			logf("  machine %.0f%% idle after waiting %v for %.0f%%: running anyway", 100*idle, c.idleWait, 100*c.idleMin)
			return idle
		}
	}
}

// runOne runs scenario s against a fresh server of impl; profile, if not
// nil, runs alongside against the server's URL.
func runOne(ctx context.Context, bins *binaries, s loadgen.Scenario, impl string, profile func(ctx context.Context, url string, nth int)) (r loadgen.Result) {
	start := time.Now()
	defer func() {
		r.Scenario, r.Impl, r.Seconds = s.Name, impl, time.Since(start).Seconds()
	}()
	if s.OwnServers {
		return runOwn(ctx, bins, s, impl, profile)
	}
	srv, err := bins.start(ctx, impl)
	if err != nil {
		return loadgen.Result{Err: err.Error()}
	}
	defer srv.stop()
	var crash error // the server died before the scenario stopped it
	var profiling sync.WaitGroup
	t := loadgen.Target{
		Impl:     impl,
		URL:      srv.url,
		Protocol: loadgen.ProtocolOf(impl),
		CPU:      srv.cpu,
		PID:      srv.cmd.Process.Pid,
		Stop: func() {
			profiling.Wait() // within profile-delay + profile-for
			if crash == nil {
				crash = srv.crashed()
			}
			srv.stop()
		},
	}
	if profile != nil {
		pctx, cancel := context.WithCancel(ctx)
		defer cancel()
		profiling.Add(1)
		go func() {
			defer profiling.Done()
			profile(pctx, srv.url, 0)
		}()
	}
	r = s.Run(ctx, t)
	t.Stop()
	if crash != nil {
		r.Problems = append(r.Problems, crash.Error())
	}
	return r
}

// runOwn runs scenario s, which starts its own servers of impl through
// Target.Launch, and stops every one of them when it is over, whatever
// the scenario did; a server that exited before it was stopped is a
// problem.
func runOwn(ctx context.Context, bins *binaries, s loadgen.Scenario, impl string, profile func(ctx context.Context, url string, nth int)) (r loadgen.Result) {
	var (
		mu        sync.Mutex
		servers   []*server
		profiling sync.WaitGroup
	)
	pctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		profiling.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, srv := range servers {
			srv.stop()
			if err := srv.crashed(); err != nil {
				r.Problems = append(r.Problems, err.Error())
			}
		}
	}()
	t := loadgen.Target{
		Impl:     impl,
		Protocol: loadgen.ProtocolOf(impl),
		Launch: func(ctx context.Context, flags ...string) (loadgen.Target, error) {
			srv, err := bins.start(ctx, impl, flags...)
			if err != nil {
				return loadgen.Target{}, err
			}
			mu.Lock()
			servers = append(servers, srv)
			nth := len(servers)
			mu.Unlock()
			var own sync.WaitGroup // this server's profile
			if profile != nil {
				profiling.Add(1)
				own.Add(1)
				go func() {
					defer profiling.Done()
					defer own.Done()
					profile(pctx, srv.url, nth)
				}()
			}
			return loadgen.Target{
				Impl:     impl,
				URL:      srv.url,
				Protocol: loadgen.ProtocolOf(impl),
				CPU:      srv.cpu,
				PID:      srv.cmd.Process.Pid,
				Stop: func() {
					own.Wait() // within profile-delay + profile-for
					srv.stop()
				},
			}, nil
		},
	}
	return s.Run(ctx, t)
}
