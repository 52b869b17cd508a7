package loadgen

import (
	"context"
	"fmt"
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

// Scenarios returns the suite at the given size, in run order.
func Scenarios(size Size) []Scenario {
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
	}
}
