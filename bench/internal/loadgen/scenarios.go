package loadgen

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Size picks the parameters of the scenarios.
type Size int

const (
	// Full is the default suite.
	Full Size = iota
	// Quick is a smoke run: small N, short phases, same code.
	Quick
	// Tiny is for tests: a handful of members.
	Tiny
)

// Params change the suite beyond its size.
type Params struct {
	// ScaleConns replaces the 50,000 connections of scale-50k (10 members
	// a room, rounded down), which is then named after them: scale-19k
	// for 19,000. 0: the size's own.
	ScaleConns int
	// RedisURL, PostgresURL and NATSURL are the backend servers of the
	// cluster and pg-room scenarios. "": DefaultRedisURL(), …
	RedisURL, PostgresURL, NATSURL string
}

func (p Params) withDefaults() Params {
	if p.RedisURL == "" {
		p.RedisURL = DefaultRedisURL()
	}
	if p.PostgresURL == "" {
		p.PostgresURL = DefaultPostgresURL()
	}
	if p.NATSURL == "" {
		p.NATSURL = DefaultNATSURL()
	}
	return p
}

// Scenarios returns the suite at the given size, in run order.
func Scenarios(size Size) []Scenario { return ScenariosWith(size, Params{}) }

// ScenariosWith returns the suite at the given size with p, in run order.
func ScenariosWith(size Size, p Params) []Scenario {
	p = p.withDefaults()
	pick := func(full, quick, tiny int) int {
		switch size {
		case Quick:
			return quick
		case Tiny:
			return tiny
		}
		return full
	}
	dur := func(full, quick, tiny time.Duration) time.Duration {
		return time.Duration(pick(int(full), int(quick), int(tiny)))
	}

	echoCols := []Column{
		{Key: "round_trips_per_s", Header: "round trips/s", Format: Rate, Better: +1, Ratio: true},
		{Key: "p50_us", Header: "p50", Format: Micros, Better: -1},
		{Key: "p99_us", Header: "p99", Format: Micros, Better: -1},
		{Key: "cpu_us_per_op", Header: "CPU/op", Format: Micros, Better: -1, Ratio: true},
	}
	echo := func(name string, size int, binary bool) Scenario {
		cfg := EchoConfig{
			Conns: pick(64, 64, 4), Size: size, Binary: binary,
			Warmup:   dur(500*time.Millisecond, 200*time.Millisecond, 20*time.Millisecond),
			Duration: dur(5*time.Second, time.Second, 100*time.Millisecond),
			MaxOps:   int64(pick(2_000_000, 2_000_000, 10_000)),
		}
		kind := "text"
		if binary {
			kind = "binary"
		}
		return Scenario{
			Name: name,
			About: fmt.Sprintf("%d connections to /echo, each sending a %d-byte %s message and waiting for its echo, for %v (at most %d round trips) after a %v warm-up",
				cfg.Conns, size, kind, cfg.Duration, cfg.MaxOps, cfg.Warmup),
			Columns:  echoCols,
			Headline: "round_trips_per_s",
			Run:      func(ctx context.Context, t Target) Result { return RunEcho(ctx, t, cfg) },
		}
	}

	burstCols := []Column{
		{Key: "deliveries_per_s", Header: "deliveries/s", Format: Rate, Better: +1, Ratio: true},
		{Key: "p50_ms", Header: "p50", Format: Millis, Better: -1},
		{Key: "p99_ms", Header: "p99", Format: Millis, Better: -1},
		{Key: "cpu_us_per_delivery", Header: "CPU/delivery", Format: Micros, Better: -1, Ratio: true},
		{Key: "loss", Header: "loss", Format: Count, Better: -1},
		{Key: "duplicates", Header: "dups", Format: Count, Better: -1},
		{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
		{Key: "settle_s", Header: "join+settle", Format: Seconds, Better: -1},
	}
	burst := func(name string, members, messages int) Scenario {
		cfg := RoomConfig{Members: members, Messages: messages}
		if size == Tiny {
			cfg.Settle, cfg.Timeout, cfg.Stall = 10*time.Second, 10*time.Second, 2*time.Second
		}
		return Scenario{
			Name: name,
			About: fmt.Sprintf("%d members join one room; once the join traffic settled, one member sends %d messages back to back; every member records every delivery",
				members, messages),
			Columns:  burstCols,
			Headline: "deliveries_per_s",
			Run:      func(ctx context.Context, t Target) Result { return RunRoom(ctx, t, cfg) },
		}
	}

	pacedCfg := RoomConfig{Members: pick(1000, 100, 6), Rate: 100}
	pacedCfg.Messages = int(pacedCfg.Rate * dur(5*time.Second, time.Second, 200*time.Millisecond).Seconds())
	if size == Tiny {
		pacedCfg.Settle, pacedCfg.Timeout, pacedCfg.Stall = 10*time.Second, 10*time.Second, 2*time.Second
	}

	joinCfg := JoinConfig{Members: pick(2000, 300, 8)}
	if size == Tiny {
		joinCfg.Timeout, joinCfg.Quiet = 10*time.Second, 2*time.Second
	}
	idleCfg := IdleConfig{Rooms: pick(100, 10, 2), PerRoom: pick(100, 100, 5)}

	roomsCols := []Column{
		{Key: "deliveries_per_s", Header: "deliveries/s", Format: Rate, Better: +1},
		{Key: "p50_ms", Header: "p50", Format: Millis, Better: -1},
		{Key: "p99_ms", Header: "p99", Format: Millis, Better: -1, Ratio: true},
		{Key: "cpu_us_per_delivery", Header: "CPU/delivery", Format: Micros, Better: -1, Ratio: true},
		{Key: "cpu_cores", Header: "server cores", Format: Fraction, Better: -1},
		{Key: "client_cores", Header: "client cores", Format: Fraction, Better: 0},
		{Key: "other_cores", Header: "others' cores", Format: Fraction, Better: 0},
		{Key: "loss", Header: "lost", Format: Count, Better: -1},
		{Key: "duplicates", Header: "dups", Format: Count, Better: -1},
		{Key: "reordered", Header: "reordered", Format: Count, Better: -1},
		{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
	}
	rooms := func(name string, nRooms, perRoom int) Scenario {
		cfg := RoomsConfig{
			Rooms: nRooms, PerRoom: perRoom, Rate: 2,
			Warmup:   dur(2*time.Second, 500*time.Millisecond, 100*time.Millisecond),
			Duration: dur(10*time.Second, 2*time.Second, 300*time.Millisecond),
		}
		if size == Tiny {
			// Tests run under the race detector, beside each other.
			cfg.Rate, cfg.MaxLag = 20, 5*time.Second
			cfg.Settle, cfg.Drain, cfg.Stall = 10*time.Second, 10*time.Second, 2*time.Second
		}
		return Scenario{
			Name: name,
			About: fmt.Sprintf("%d rooms × %d members; after the joins and a %v warm-up, every member sends %g messages/s for %v (phases spread and jittered: %.0f messages/s in all), and checks that it gets every other member's messages once and in order",
				nRooms, perRoom, cfg.Warmup, cfg.Rate, cfg.Duration, cfg.Rate*float64(nRooms*perRoom)),
			Columns:  roomsCols,
			Headline: "cpu_us_per_delivery",
			Run:      func(ctx context.Context, t Target) Result { return RunRooms(ctx, t, cfg) },
		}
	}

	scaleConns := pick(50_000, 2_000, 20)
	scaleName := "scale-50k"
	if p.ScaleConns > 0 && size != Tiny {
		scaleConns = p.ScaleConns
		scaleName = "scale-" + kilo(scaleConns/10*10)
	}
	scaleCfg := RoomsConfig{
		Rooms: scaleConns / 10, PerRoom: 10, Rate: 1.0 / 60,
		Warmup:   dur(5*time.Second, 2*time.Second, 100*time.Millisecond),
		Duration: dur(60*time.Second, 10*time.Second, 300*time.Millisecond),
		Mem:      true,
		Sources:  sourceAddrs(scaleConns),
	}
	if size == Tiny {
		scaleCfg.Rate, scaleCfg.Sources, scaleCfg.MaxLag = 10, []string{"127.0.0.1"}, 5*time.Second
		scaleCfg.Settle, scaleCfg.Drain, scaleCfg.Stall = 10*time.Second, 10*time.Second, 2*time.Second
	}
	scale := Scenario{
		Name: scaleName,
		About: fmt.Sprintf("%d connections in %d rooms of 10 (dialled from %d loopback source addresses); after the joins and a %v warm-up, every member sends one message per %v for %v; server memory per connection after it (/debug/mem after GC, and VmRSS)",
			scaleCfg.Rooms*scaleCfg.PerRoom, scaleCfg.Rooms, max(len(scaleCfg.Sources), 1), scaleCfg.Warmup, time.Duration(float64(time.Second)/scaleCfg.Rate).Round(time.Millisecond), scaleCfg.Duration),
		Columns: []Column{
			{Key: "rss_per_conn", Header: "RSS/conn", Format: Bytes, Better: -1, Ratio: true},
			{Key: "proc_rss_per_conn", Header: "VmRSS/conn", Format: Bytes, Better: -1},
			{Key: "heap_stack_per_conn", Header: "heap+stack/conn", Format: Bytes, Better: -1},
			{Key: "cpu_cores", Header: "server cores", Format: Fraction, Better: -1},
			{Key: "cpu_us_per_delivery", Header: "CPU/delivery", Format: Micros, Better: -1, Ratio: true},
			{Key: "other_cores", Header: "others' cores", Format: Fraction, Better: 0},
			{Key: "p99_ms", Header: "p99", Format: Millis, Better: -1},
			{Key: "loss", Header: "lost", Format: Count, Better: -1},
			{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
			{Key: "dial_s", Header: "connect", Format: Seconds, Better: -1},
		},
		Headline: "rss_per_conn",
		Run:      func(ctx context.Context, t Target) Result { return RunRooms(ctx, t, scaleCfg) },
	}

	stormCfg := StormConfig{Members: pick(10_000, 1_000, 6)}
	if size == Tiny {
		stormCfg.Timeout, stormCfg.Stall, stormCfg.QuietMax = 10*time.Second, 2*time.Second, 5*time.Second
		stormCfg.Quiet = 200 * time.Millisecond
	}
	storm := Scenario{
		Name: "join-10k",
		About: fmt.Sprintf("%d members join one room at once; wsroom: connected first without joining (memory read), then every join frame at once, timed to the last welcome; peers join as they connect, timed from the first dial to the last member's own join event; memory again once the join traffic is over. Target for wsroom: join < 2 s, RSS per joined member ≤ 1.2 × per unjoined connection",
			stormCfg.Members),
		Columns: []Column{
			{Key: "connect_s", Header: "connect", Format: Seconds, Better: -1},
			{Key: "join_s", Header: "join (all in)", Format: Seconds, Better: -1},
			{Key: "total_s", Header: "connect+join", Format: Seconds, Better: -1, Ratio: true},
			{Key: "cpu_total_s", Header: "server CPU", Format: Seconds, Better: -1},
			{Key: "other_cores", Header: "others' cores", Format: Fraction, Better: 0},
			{Key: "rss_per_unjoined", Header: "RSS/unjoined", Format: Bytes, Better: -1},
			{Key: "rss_per_member", Header: "RSS/member", Format: Bytes, Better: -1, Ratio: true},
			{Key: "rss_joined_ratio", Header: "joined÷unjoined", Format: Fraction, Better: -1},
			{Key: "proc_rss_joined_ratio", Header: "VmRSS joined÷unjoined", Format: Fraction, Better: -1},
			{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
			{Key: "settle_s", Header: "traffic after", Format: Seconds, Better: -1},
		},
		Headline: "total_s",
		Run:      func(ctx context.Context, t Target) Result { return RunJoinStorm(ctx, t, stormCfg) },
	}

	cluster := func(name, label string, store, broker backend) Scenario {
		// A join storm through a networked store can go quiet for a
		// second before the first welcome (1,000 joins queue for a few
		// connections): the settle waits longer for a frame, and ends as
		// soon as the join traffic is complete.
		cfg := ClusterConfig{
			Backend: label, Store: store, Broker: broker,
			Paced: RoomConfig{Members: pacedCfg.Members, Rate: pacedCfg.Rate, Messages: pacedCfg.Messages, Quiet: 5 * time.Second},
			Burst: RoomConfig{Members: pick(1000, 100, 5), Messages: pick(200, 20, 10), Quiet: 5 * time.Second},
		}
		cfg.Rooms = RoomsConfig{
			Rooms: pick(200, 20, 2), PerRoom: pick(5, 5, 3), Rate: 2, Quiet: 5 * time.Second,
			Warmup:   dur(2*time.Second, 500*time.Millisecond, 100*time.Millisecond),
			Duration: dur(10*time.Second, 2*time.Second, 300*time.Millisecond),
		}
		if size == Tiny {
			for _, rc := range []*RoomConfig{&cfg.Paced, &cfg.Burst} {
				rc.Settle, rc.Timeout, rc.Stall = 10*time.Second, 10*time.Second, 2*time.Second
			}
			rc := &cfg.Rooms
			rc.Rate, rc.MaxLag = 20, 5*time.Second
			rc.Settle, rc.Drain, rc.Stall = 10*time.Second, 10*time.Second, 2*time.Second
		}
		return ClusterScenario(name, cfg)
	}
	pgRoom := PGRoomConfig{
		Store: postgresBackend(p.PostgresURL),
		Room: AckedConfig{
			Members: pick(20, 10, 4), Senders: pick(8, 4, 2),
			Warmup:   dur(2*time.Second, 500*time.Millisecond, 100*time.Millisecond),
			Duration: dur(10*time.Second, 2*time.Second, 300*time.Millisecond),
		},
	}
	if size == Tiny {
		r := &pgRoom.Room
		r.Settle, r.AckTimeout, r.Drain, r.Stall = 10*time.Second, 5*time.Second, 10*time.Second, 2*time.Second
	}

	return []Scenario{
		echo("echo-64", 64, false),
		echo("echo-4k", 4096, true),
		burst("burst-1k", pick(1000, 100, 5), pick(200, 20, 10)),
		burst("burst-5k", pick(5000, 300, 7), pick(100, 20, 10)),
		{
			Name: "paced-1k",
			About: fmt.Sprintf("%d members in one room; one sends %.0f messages/s for %d messages; every member records every delivery",
				pacedCfg.Members, pacedCfg.Rate, pacedCfg.Messages),
			Columns: []Column{
				{Key: "p50_ms", Header: "p50", Format: Millis, Better: -1},
				{Key: "p99_ms", Header: "p99", Format: Millis, Better: -1, Ratio: true},
				{Key: "max_ms", Header: "max", Format: Millis, Better: -1},
				{Key: "cpu_us_per_delivery", Header: "CPU/delivery", Format: Micros, Better: -1, Ratio: true},
				{Key: "loss", Header: "loss", Format: Count, Better: -1},
				{Key: "duplicates", Header: "dups", Format: Count, Better: -1},
				{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
			},
			Headline: "p99_ms",
			Run:      func(ctx context.Context, t Target) Result { return RunRoom(ctx, t, pacedCfg) },
		},
		{
			Name: "join-2k",
			About: fmt.Sprintf("%d members join one room at once (at most 200 dials in flight), until every member knows of every later joiner",
				joinCfg.Members),
			Columns: []Column{
				{Key: "join_s", Header: "join time", Format: Seconds, Better: -1, Ratio: true},
				{Key: "cpu_s", Header: "server CPU", Format: Seconds, Better: -1},
				{Key: "frames", Header: "frames", Format: Count, Better: 0},
				{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
			},
			Headline: "join_s",
			Run:      func(ctx context.Context, t Target) Result { return RunJoin(ctx, t, joinCfg) },
		},
		{
			Name: "idle-10k",
			About: fmt.Sprintf("%d rooms × %d idle members (bare: as many plain connections); server memory after two GCs, before and after, per connection",
				idleCfg.Rooms, idleCfg.PerRoom),
			Columns: []Column{
				{Key: "heap_stack_per_conn", Header: "heap+stack/conn", Format: Bytes, Better: -1, Ratio: true},
				{Key: "rss_per_conn", Header: "RSS/conn", Format: Bytes, Better: -1},
				{Key: "goroutines_per_conn", Header: "goroutines/conn", Format: Fraction, Better: -1},
				{Key: "dropped", Header: "dropped", Format: Count, Better: -1},
			},
			Headline: "heap_stack_per_conn",
			WithBare: true,
			Run:      func(ctx context.Context, t Target) Result { return RunIdle(ctx, t, idleCfg) },
		},
		rooms("rooms-1000x5", pick(1000, 100, 3), 5),
		rooms("rooms-200x25", pick(200, 20, 2), pick(25, 25, 4)),
		FallbackScenario(size),
		cluster("cluster-redis", "Redis store + Redis broker", redisBackend(p.RedisURL), redisBackend(p.RedisURL)),
		cluster("cluster-nats", "PostgreSQL store + NATS broker", postgresBackend(p.PostgresURL), natsBackend(p.NATSURL)),
		PGRoomScenario(pgRoom),
		scale,
		storm,
	}
}

// sourceAddrs returns the loopback addresses conns connections dial from:
// one per 10,000 connections, from 127.0.0.2 on (the whole of 127/8 is
// loopback on Linux). A pair of addresses has one port range of
// ephemeral ports, about 28,000 by default.
func sourceAddrs(conns int) []string {
	addrs := make([]string, min(max((conns+9_999)/10_000, 1), 250))
	for i := range addrs {
		addrs[i] = fmt.Sprintf("127.0.0.%d", i+2)
	}
	return addrs
}

// kilo names a count as 10k.
func kilo(n int) string {
	if n%1000 == 0 {
		return fmt.Sprintf("%dk", n/1000)
	}
	return fmt.Sprintf("%gk", float64(n)/1000)
}

// ScenarioNamed returns the scenario called name at the given size, and
// its rank in the suite. A name scale-Nk is scale-50k with N thousand
// connections (Params.ScaleConns).
func ScenarioNamed(size Size, name string) (Scenario, int, bool) {
	for i, s := range Scenarios(size) {
		if s.Name == name {
			return s, i, true
		}
	}
	rest, ok := strings.CutPrefix(name, "scale-")
	if !ok {
		return Scenario{}, 0, false
	}
	k, ok := strings.CutSuffix(rest, "k")
	f, err := strconv.ParseFloat(k, 64)
	if !ok || err != nil || f <= 0 || f > 10_000 {
		return Scenario{}, 0, false
	}
	for i, s := range ScenariosWith(size, Params{ScaleConns: int(math.Round(f * 1000))}) {
		if s.Name == name {
			return s, i, true
		}
	}
	return Scenario{}, 0, false
}
