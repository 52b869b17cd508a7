package wsroom

import (
	"fmt"
	"log/slog"
	"net/http"
	"path"
	"time"
)

// Options configures a Server. The zero value (or a nil *Options) is a safe,
// production-ready configuration; each field's documentation ends with its
// default. Limits that can be switched off say so: a negative value turns
// them off, which is meant for load tests, not for the internet.
type Options struct {
	// DefaultRoom is the room the Server serves on a route of ServeMux or
	// chi that has no {room} wildcard. Default "lobby".
	DefaultRoom string

	// RoomFromRequest names the room of a request, for routers that do not
	// set r.PathValue (gorilla/mux, echo, or a custom scheme). It replaces
	// the lookup of the {room} path value; an empty result means
	// DefaultRoom. Default nil: the {room} path value.
	RoomFromRequest func(r *http.Request) string

	// OriginPatterns lists host patterns (path.Match syntax, matched
	// case-insensitively against the Origin's host, or against
	// "scheme://host" when the pattern has "://") of the cross-site pages
	// allowed to connect. A request whose Origin matches its Host is always
	// allowed. Default none: same-origin only; other origins get 403.
	OriginPatterns []string

	// InsecureSkipVerify accepts every Origin. It makes the endpoint
	// reachable from any web page a logged-in user visits (cross-site
	// WebSocket hijacking); prefer OriginPatterns. Default false.
	InsecureSkipVerify bool

	// MaxMessageBytes is the largest text message a client may send,
	// after reassembly of fragments; a bigger one closes the connection
	// with 1009, as soon as a frame header announces it. It bounds chat
	// messages and the echo endpoint's text. Default 32 KiB; negative: no
	// limit.
	MaxMessageBytes int64

	// MaxBinaryBytes is the largest binary message a client may send (a
	// drawing relayed to the room, or echoed); a bigger one closes the
	// connection with 1009 at its header. Default 1 MiB; negative: no
	// limit.
	MaxBinaryBytes int64

	// MaxNameLength is the longest member name, in characters, after
	// trimming. Default 32; negative: no limit.
	MaxNameLength int

	// RateLimit is how many frames per second a connection may send on
	// average, with bursts of RateBurst. A frame over the limit is dropped
	// and answered with a rate_limited error; more than RateBurst such
	// frames in a row close the connection with 1008. Pings are limited
	// apart, to 5 a second with bursts of 20: over it a ping goes
	// unanswered, and a flood closes the connection with 1008. Default 20;
	// negative: no limit, on frames or pings.
	RateLimit float64

	// RateBurst is the number of frames a connection may send at once.
	// Default 2×RateLimit, at least 1.
	RateBurst int

	// MaxMembers is the most members a room may hold, across all servers.
	// A join beyond it gets a room_full error. Default 1000; negative: no
	// limit.
	MaxMembers int

	// MaxConnections is the most connections (chat and echo, counting
	// those being admitted) this server holds; one more is refused with
	// 503 and Retry-After. At about 25 KiB of memory per idle connection,
	// the default bounds them to a few hundred MiB. Default 10000;
	// negative: no limit.
	MaxConnections int

	// MaxConnectionsPerIP is the most connections one client address
	// (ClientIP) may hold; one more is refused with 429 and Retry-After,
	// and the first refusal is logged. Behind a reverse proxy every
	// client has the proxy's address: set ClientIP, or raise this.
	// Default 1000; negative: no limit.
	MaxConnectionsPerIP int

	// ClientIP names the client of a request for MaxConnectionsPerIP.
	// Default: the host of r.RemoteAddr (which a trusted proxy middleware
	// such as chi's RealIP may have set).
	ClientIP func(r *http.Request) string

	// MaxRooms is the most rooms with members on this server; a join that
	// would open one more gets a server_full error. With the default store
	// bounds, it caps what a crowd of clients each opening its own room can
	// make the server hold. Default 10000; negative: no limit.
	MaxRooms int

	// Duplicates says what happens when a member named by the Identify
	// hook connects while its name is taken in the room (a second tab of
	// the same user). Default DuplicateReplace.
	Duplicates DuplicatePolicy

	// SendQueue is how many events may wait for one member while its
	// connection is busy. A member whose queue overflows is too slow: it is
	// closed with 1013 and leaves with ReasonSlow, so that it never holds
	// up the room. JSON members receive queued events batched into one
	// frame, so the queue fills only when the connection truly stalls.
	// Default 1024; negative: unbounded (a stalled client then holds
	// memory until WriteTimeout closes it).
	SendQueue int

	// SendQueueBytes bounds the bytes waiting for one member, counting
	// what is being written; passing it is also too slow (1013). A single
	// event larger than the bound is still sent to a member with nothing
	// else queued. It is the most one connection that reads nothing can
	// make the server hold. Default 4 MiB; negative: unbounded.
	SendQueueBytes int64

	// PingInterval is how often the server pings each connection; a
	// connection that does not answer within PongTimeout is dropped and
	// leaves with ReasonTimeout. The interval is shorter than the idle
	// timeout of common proxies (60s for nginx and most cloud load
	// balancers), so the pings also keep the connection open through them.
	// Default 25s; negative: no heartbeat.
	PingInterval time.Duration

	// PongTimeout is how long a ping waits for its pong. Default 15s.
	PongTimeout time.Duration

	// WriteTimeout bounds the write of each frame: a connection that
	// cannot take a frame within it is dropped as too slow (1013). A frame
	// is at most 64 KiB of batched events, one plain-text line, or one
	// binary message. Default 10s; negative: no timeout.
	WriteTimeout time.Duration

	// JoinTimeout is how long a connection may stay open without joining;
	// then it is closed with 1008. Default 30s; negative: no limit.
	JoinTimeout time.Duration

	// WelcomeHistory is how many recent messages a joining member receives
	// in its welcome. Default 50; negative: none.
	WelcomeHistory int

	// ResumeLimit is the most missed messages a member resuming with
	// "since" receives; if it missed more, it gets the most recent ones
	// and the welcome's gap flag. Default 500.
	ResumeLimit int

	// HistoryPage is the largest page a history request returns. Default
	// 100.
	HistoryPage int

	// HistoryBytes bounds the messages of a history page and of a
	// welcome, in bytes (a message counts its sender's name and text plus
	// 64): the oldest are left out, and the page says more. A page also
	// costs the rate limit one frame per 16 KiB. Default 256 KiB; negative:
	// no bound.
	HistoryBytes int64

	// MembersPage is how many member names a welcome carries (with the
	// count of all members) and the largest page of a members request, so
	// that a join into a big room costs the same as into a small one.
	// Default 100.
	MembersPage int

	// PresenceThreshold is the room size, on this server, from which
	// join and leave announcements are coalesced into presence events sent
	// every PresenceInterval, instead of one announcement per member. This
	// keeps a join storm into a big room linear. Default 100; negative:
	// never coalesce.
	PresenceThreshold int

	// PresenceInterval is how long join and leave announcements of a big
	// room are collected before they are sent. Default 100ms.
	PresenceInterval time.Duration

	// NoBinary refuses binary messages in rooms: a client that sends one
	// is closed with 1003. By default binary messages are relayed, as
	// binary, to the other members of the room (a shared canvas, say).
	NoBinary bool

	// NoFallback serves WebSocket only. By default a client whose network
	// blocks WebSocket (a proxy that strips the Upgrade header, say) joins
	// through the same handler over plain HTTP: a GET with "Accept:
	// text/event-stream" opens a Server-Sent Events stream of the member's
	// events, and POSTs carry its frames (see the package documentation).
	// With NoFallback such a GET gets 426 like any other request that is
	// not an upgrade, and a POST 405. Default false.
	NoFallback bool

	// Store keeps member names and history. Default: a MemoryStore with its
	// defaults (1000 messages and 1 MiB per room, 64 MiB in all).
	Store Store

	// BackendTimeout bounds each call to the Store and the Broker, unless
	// both are the in-process defaults. A member whose call times out gets
	// an unavailable error and may try again. Default 5s.
	BackendTimeout time.Duration

	// LeaseTime is how long the names this server's members hold in the
	// Store outlive the server: if it stops refreshing them (it crashed),
	// they are gone from every member list after at most LeaseTime, and
	// their departures are announced by another server at its next
	// refresh. Default 15s.
	LeaseTime time.Duration

	// LeaseRefresh is how often the server refreshes its lease, in one
	// Store call for all of its members. It must be shorter than
	// LeaseTime. Default 5s.
	LeaseRefresh time.Duration

	// Broker carries events between the servers of a room. Default: a
	// MemoryBroker, for a single process.
	Broker Broker

	// Text renders events for clients of the plain-text protocol. Nil
	// fields keep their defaults, which reproduce the original chat server.
	Text TextFormat

	// Hooks are called at the points of a member's life; see Hooks.
	Hooks Hooks

	// Logger receives the server's diagnostics. Default slog.Default().
	Logger *slog.Logger

	// Metrics, when set, is told as things happen what Server.Stats
	// totals: departures by reason, refusals, and the time and outcome
	// of every Store and Broker call. wsroom.dev/adapters/prometheus
	// exports both. Default nil.
	Metrics Metrics
}

// cloneWithDefaults returns a copy of opts with defaults filled in, or an
// error wrapping ErrBadOptions.
func (opts *Options) cloneWithDefaults() (*Options, error) {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.DefaultRoom == "" {
		o.DefaultRoom = "lobby"
	}
	if err := checkName(o.DefaultRoom, maxRoomLength); err != nil {
		return nil, fmt.Errorf("%w: DefaultRoom: %w", ErrBadOptions, err)
	}
	for _, p := range o.OriginPatterns {
		if _, err := path.Match(p, ""); err != nil {
			return nil, fmt.Errorf("%w: OriginPatterns %q: %w", ErrBadOptions, p, err)
		}
	}
	def(&o.MaxMessageBytes, 32<<10)
	def(&o.MaxBinaryBytes, 1<<20)
	def(&o.SendQueueBytes, 4<<20)
	def(&o.HistoryBytes, 256<<10)
	def(&o.MembersPage, 100)
	def(&o.MaxRooms, 10000)
	def(&o.MaxConnections, 10000)
	def(&o.MaxConnectionsPerIP, 1000)
	if o.ClientIP == nil {
		o.ClientIP = remoteIP
	}
	def(&o.BackendTimeout, 5*time.Second)
	def(&o.LeaseTime, 15*time.Second)
	def(&o.LeaseRefresh, 5*time.Second)
	if o.MembersPage < 0 || o.BackendTimeout < 0 || o.LeaseTime < 0 || o.LeaseRefresh < 0 {
		return nil, fmt.Errorf("%w: MembersPage, BackendTimeout, LeaseTime and LeaseRefresh cannot be negative", ErrBadOptions)
	}
	if o.LeaseRefresh >= o.LeaseTime {
		return nil, fmt.Errorf("%w: LeaseRefresh (%v) must be shorter than LeaseTime (%v)", ErrBadOptions, o.LeaseRefresh, o.LeaseTime)
	}
	if o.Duplicates != DuplicateReplace && o.Duplicates != DuplicateRefuse {
		return nil, fmt.Errorf("%w: Duplicates %d", ErrBadOptions, o.Duplicates)
	}
	def(&o.MaxNameLength, 32)
	def(&o.RateLimit, 20)
	if o.RateBurst < 0 {
		return nil, fmt.Errorf("%w: RateBurst %d", ErrBadOptions, o.RateBurst)
	}
	if o.RateBurst == 0 {
		o.RateBurst = max(1, int(2*o.RateLimit))
	}
	def(&o.MaxMembers, 1000)
	def(&o.SendQueue, 1024)
	def(&o.PingInterval, 25*time.Second)
	def(&o.PongTimeout, 15*time.Second)
	def(&o.WriteTimeout, 10*time.Second)
	def(&o.JoinTimeout, 30*time.Second)
	def(&o.WelcomeHistory, 50)
	def(&o.ResumeLimit, 500)
	def(&o.HistoryPage, 100)
	def(&o.PresenceThreshold, 100)
	def(&o.PresenceInterval, 100*time.Millisecond)
	if o.PongTimeout < 0 || o.ResumeLimit < 0 || o.HistoryPage < 0 || o.PresenceInterval < 0 {
		return nil, fmt.Errorf("%w: PongTimeout, ResumeLimit, HistoryPage and PresenceInterval cannot be negative", ErrBadOptions)
	}
	if o.Store == nil {
		o.Store = NewMemoryStore(nil)
	}
	if o.Broker == nil {
		o.Broker = NewMemoryBroker()
	}
	o.Text = o.Text.withDefaults()
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &o, nil
}

// DuplicatePolicy says what happens when a member named by the Identify
// hook connects while its name is taken in the room.
type DuplicatePolicy int

const (
	// DuplicateReplace gives the name to the newer connection and closes
	// the older one with StatusReplaced (4001), wherever it is connected.
	// The room sees no departure and no arrival: the name never left it.
	DuplicateReplace DuplicatePolicy = iota
	// DuplicateRefuse refuses the newer connection's upgrade with 409
	// Conflict.
	DuplicateRefuse
)

func def[T int | int64 | float64 | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}
