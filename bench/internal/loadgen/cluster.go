package loadgen

import (
	"context"
	"fmt"
	"strings"
)

// The cluster scenarios: wsroom on two servers sharing a store and a
// broker, with the members of every room dealt to both, against one
// server. Each run measures three variants, each on servers of its own
// started for each load: one server with the in-process store and broker,
// one server with the shared backends (the baseline of the target: the
// same store and broker, the members on one process), and the servers
// sharing them. wsroom's own: Scenario.WsroomOnly and
// OwnServers.

// ClusterConfig is a cluster scenario.
type ClusterConfig struct {
	// Backend names the store and the broker in the variants' labels.
	Backend string
	// Store and Broker are their URLs (examples/chat -store, -broker).
	Store, Broker backend
	// Servers share them in the cross-server variant. Default 2.
	Servers int
	// Paced is one room, one sender at a rate: its latency is the
	// target's. Burst is one room, one sender as fast as it can write:
	// its deliveries/s. Rooms, if it has rooms, is many rooms whose
	// members all send at a rate: its latency is judged by the target
	// too. Their RoomPrefix is set per run.
	Paced, Burst RoomConfig
	Rooms        RoomsConfig
	// Target is the most the cross-server p99 of a paced load may be over
	// that of one server with the same backends before it is a problem. Default 2. It is judged
	// for rooms of TargetFrom members and more: a handful of members
	// measures nothing but noise. Default 100.
	Target     float64
	TargetFrom int
}

func (cfg ClusterConfig) withDefaults() ClusterConfig {
	if cfg.Servers <= 0 {
		cfg.Servers = 2
	}
	if cfg.Target <= 0 {
		cfg.Target = 2
	}
	if cfg.TargetFrom <= 0 {
		cfg.TargetFrom = 100
	}
	return cfg
}

// clusterVariant is one configuration of the servers of a cluster run.
type clusterVariant struct {
	Variant
	servers int
	flags   []string
	comms   []string // the backends' process names
}

// variants returns the configurations a cluster run measures, baseline
// first.
func (cfg ClusterConfig) variants() []clusterVariant {
	flags := backendFlags(cfg.Store.url, cfg.Broker.url)
	back := comms(cfg.Store, cfg.Broker)
	return []clusterVariant{
		{Variant: Variant{Key: "mem", Label: "1 server, memory store and broker"}, servers: 1},
		{Variant: Variant{Key: "one", Label: "1 server, " + cfg.Backend}, servers: 1, flags: flags, comms: back},
		{Variant: Variant{Key: "two", Label: fmt.Sprintf("%d servers, %s", cfg.Servers, cfg.Backend)}, servers: cfg.Servers, flags: flags, comms: back},
	}
}

// ClusterVariants are the rows of a cluster scenario's table.
func (cfg ClusterConfig) ClusterVariants() []Variant {
	var out []Variant
	for _, v := range cfg.withDefaults().variants() {
		out = append(out, v.Variant)
	}
	return out
}

// RunCluster runs a cluster scenario: for each load (paced, burst, rooms),
// each variant on fresh servers, one after the other. Every member checks
// that it gets every message once and in order (RunRoom); the problems
// of a variant start with its label.
//
// Metrics, per variant (prefixed with its key and "_"): paced_p50_ms,
// paced_p99_ms, paced_max_ms, paced_cpu_us_per_delivery,
// burst_deliveries_per_s, burst_p99_ms, burst_cpu_us_per_delivery,
// rooms_p99_ms, rooms_cpu_us_per_delivery, …, join_s (the paced room's
// join and settle), the backends' CPU, and loss, duplicates, reordered and
// dropped over every load; and, against the baseline (mem) and against
// one server with the same backends (one): p99_vs_mem, p99_vs_one,
// rooms_p99_vs_mem, rooms_p99_vs_one, burst_vs_mem, burst_vs_one. A
// cross-server p99 of a paced load (paced, rooms) over Target × that of
// one server with the same backends is a problem.
func RunCluster(ctx context.Context, t Target, cfg ClusterConfig) (r Result) {
	cfg = cfg.withDefaults()
	if t.Launch == nil {
		r.Err = "the cluster scenarios start their own servers: the runner gave no Launch"
		return r
	}
	if !checkBackends(ctx, &r, cfg.Store, cfg.Broker) {
		return r
	}
	id := runID()
	r.set("servers", float64(cfg.Servers))
	vs := cfg.variants()
	type phase struct {
		name string
		run  func(t Target, prefix string) Result
		keys []string
	}
	loads := []phase{
		{"paced", func(t Target, prefix string) Result {
			lc := cfg.Paced
			lc.RoomPrefix = prefix
			return RunRoom(ctx, t, lc)
		}, []string{"p50_ms", "p99_ms", "max_ms", "cpu_us_per_delivery", "backend_us_per_delivery", "other_cores", "settle_s"}},
		{"burst", func(t Target, prefix string) Result {
			lc := cfg.Burst
			lc.RoomPrefix = prefix
			return RunRoom(ctx, t, lc)
		}, []string{"deliveries_per_s", "p50_ms", "p99_ms", "cpu_us_per_delivery", "backend_us_per_delivery", "other_cores"}},
	}
	if cfg.Rooms.Rooms > 0 {
		loads = append(loads, phase{"rooms", func(t Target, prefix string) Result {
			lc := cfg.Rooms
			lc.RoomPrefix = prefix
			return RunRooms(ctx, t, lc)
		}, []string{"deliveries_per_s", "p50_ms", "p99_ms", "cpu_us_per_delivery", "cpu_cores", "backend_us_per_delivery", "backend_cores", "other_cores", "send_lag_p99_ms"}})
	}
	for _, load := range loads {
		for _, v := range vs {
			if ctx.Err() != nil {
				r.problem("canceled")
				return r
			}
			prefix := fmt.Sprintf("%s-%s-%s-", id, v.Key, load.name)
			got, err := runVariant(ctx, t, v, func(t Target) Result { return load.run(t, prefix) })
			if err != nil {
				r.problem("%s: %s: %v", v.Label, load.name, err)
				continue
			}
			for _, k := range load.keys {
				if x, ok := got.Metrics[k]; ok {
					name := v.Key + "_" + load.name + "_" + k
					if k == "settle_s" {
						name = v.Key + "_join_s"
					}
					r.set(name, x)
				}
			}
			for _, k := range []string{"loss", "duplicates", "reordered", "dropped"} {
				r.add(v.Key+"_"+k, got.Metrics[k])
			}
			if got.Err != "" {
				r.problem("%s: %s: %s", v.Label, load.name, got.Err)
			}
			for _, p := range got.Problems {
				r.problem("%s: %s: %s", v.Label, load.name, p)
			}
		}
	}

	m := r.Metrics
	ratio := func(key, num, den string) {
		if n, d := m[num], m[den]; n > 0 && d > 0 {
			r.set(key, n/d)
		}
	}
	two := vs[len(vs)-1]
	for _, v := range vs[1:] {
		for _, b := range vs[:len(vs)-1] {
			if b.Key == v.Key {
				continue
			}
			ratio(v.Key+"_p99_vs_"+b.Key, v.Key+"_paced_p99_ms", b.Key+"_paced_p99_ms")
			ratio(v.Key+"_rooms_p99_vs_"+b.Key, v.Key+"_rooms_p99_ms", b.Key+"_rooms_p99_ms")
			ratio(v.Key+"_burst_vs_"+b.Key, v.Key+"_burst_deliveries_per_s", b.Key+"_burst_deliveries_per_s")
		}
	}
	// The target: what crossing servers costs, against one server with
	// the same store and broker (the costs of the store and the broker
	// themselves are in the ratios against the in-memory baseline).
	one := vs[1]
	for _, j := range []struct {
		load, key string
		members   int
	}{
		{"paced", "p99_vs_" + one.Key, cfg.Paced.Members},
		{"rooms", "rooms_p99_vs_" + one.Key, cfg.Rooms.Rooms * cfg.Rooms.PerRoom},
	} {
		if x, ok := m[two.Key+"_"+j.key]; ok && x > cfg.Target && j.members >= cfg.TargetFrom {
			r.problem("%s: %s p99 %.2f× that of %s: over the %g× target", two.Label, j.load, x, one.Label, cfg.Target)
		}
	}
	return r
}

// runVariant launches the servers of v, runs run against them, and stops
// them.
func runVariant(ctx context.Context, t Target, v clusterVariant, run func(Target) Result) (Result, error) {
	servers, err := launch(ctx, t, v.servers, v.flags...)
	if err != nil {
		return Result{}, err
	}
	defer servers.stop()
	servers.Impl, servers.Backends = t.Impl, v.comms
	return run(servers), nil
}

// add adds v to metric key.
func (r *Result) add(key string, v float64) {
	r.set(key, r.Metrics[key]+v)
}

// clusterColumns are the columns of a cluster scenario's table.
var clusterColumns = []Column{
	{Key: "burst_deliveries_per_s", Header: "burst deliveries/s", Format: Rate, Better: +1, Ratio: true},
	{Key: "burst_vs_mem", Header: "÷ 1 server, memory", Format: Fraction, Better: +1},
	{Key: "paced_p50_ms", Header: "paced p50", Format: Millis, Better: -1},
	{Key: "paced_p99_ms", Header: "paced p99", Format: Millis, Better: -1, Ratio: true},
	{Key: "p99_vs_one", Header: "p99 ÷ 1 server, same backends", Format: Fraction, Better: -1, Ratio: true},
	{Key: "p99_vs_mem", Header: "p99 ÷ 1 server, memory", Format: Fraction, Better: -1},
	{Key: "rooms_p50_ms", Header: "rooms p50", Format: Millis, Better: -1},
	{Key: "rooms_p99_ms", Header: "rooms p99", Format: Millis, Better: -1, Ratio: true},
	{Key: "rooms_p99_vs_one", Header: "rooms p99 ÷ 1 server, same backends", Format: Fraction, Better: -1, Ratio: true},
	{Key: "rooms_p99_vs_mem", Header: "rooms p99 ÷ 1 server, memory", Format: Fraction, Better: -1},
	{Key: "paced_cpu_us_per_delivery", Header: "CPU/delivery (paced)", Format: Micros, Better: -1},
	{Key: "burst_cpu_us_per_delivery", Header: "CPU/delivery (burst)", Format: Micros, Better: -1},
	{Key: "rooms_cpu_us_per_delivery", Header: "CPU/delivery (rooms)", Format: Micros, Better: -1},
	{Key: "rooms_cpu_cores", Header: "server cores (rooms)", Format: Fraction, Better: -1},
	{Key: "rooms_backend_cores", Header: "backend cores (rooms)", Format: Fraction, Better: 0},
	{Key: "paced_other_cores", Header: "others' cores (paced)", Format: Fraction, Better: 0},
	{Key: "rooms_other_cores", Header: "others' cores (rooms)", Format: Fraction, Better: 0},
	{Key: "join_s", Header: "join+settle", Format: Seconds, Better: -1},
	{Key: "loss", Header: "lost", Format: Count, Better: -1},
	{Key: "duplicates", Header: "dups", Format: Count, Better: -1},
	{Key: "reordered", Header: "reordered", Format: Count, Better: -1},
	{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
}

// ClusterScenario is a cluster scenario named name over the backends of
// cfg.
func ClusterScenario(name string, cfg ClusterConfig) Scenario {
	cfg = cfg.withDefaults()
	vs := cfg.ClusterVariants()
	var labels []string
	for _, v := range vs {
		labels = append(labels, v.Label)
	}
	rooms := ""
	if rc := cfg.Rooms; rc.Rooms > 0 {
		rooms = fmt.Sprintf("; rooms: %d rooms × %d members, each sending %g messages/s, %v warm-up, %v measured", rc.Rooms, rc.PerRoom, rc.Rate, rc.Warmup, rc.Duration)
	}
	return Scenario{
		Name: name,
		About: fmt.Sprintf("wsroom only: %d servers sharing a %s, the members of each room dealt to them in turn, against one server (%s). Paced: %d members in one room, one sends %.0f messages/s, %d messages; burst: %d members, one sends %d messages back to back%s; every member checks it gets every message once and in order. Each variant on fresh servers, for each load. Target: the %d servers' p99 at the paced loads (paced, rooms) within %g× that of 1 server with the same store and broker",
			cfg.Servers, cfg.Backend, strings.Join(labels[:2], "; "), cfg.Paced.Members, cfg.Paced.Rate, cfg.Paced.Messages,
			cfg.Burst.Members, cfg.Burst.Messages, rooms, cfg.Servers, cfg.Target),
		Columns:    clusterColumns,
		Headline:   vs[len(vs)-1].Key + "_p99_vs_" + vs[1].Key,
		Variants:   vs,
		WsroomOnly: true,
		OwnServers: true,
		Run:        func(ctx context.Context, t Target) Result { return RunCluster(ctx, t, cfg) },
	}
}
