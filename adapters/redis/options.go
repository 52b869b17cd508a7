package wsroomredis

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"wsroom.dev/wsroom"
)

// ErrClosed is returned by the methods of a Broker, and by Subscribe calls
// still waiting, once Close was called.
var ErrClosed = errors.New("wsroom: redis broker closed")

// StoreOptions configures a Store. The zero value (or a nil *StoreOptions)
// is ready to use; each field's documentation ends with its default. A
// negative value switches a bound off.
type StoreOptions struct {
	// Prefix starts the name of every key the Store writes, so that several
	// applications can share one database. It must not contain '{' or '}',
	// which Redis Cluster reads as hash tags. Servers that share rooms must
	// use the same Prefix. Default "wsroom:".
	Prefix string

	// History is the most messages kept per room; older ones are dropped.
	// Default 1000; negative: no bound by count (RoomBytes still applies).
	History int

	// RoomBytes is the most bytes of history kept per room: a message costs
	// its sender's name and text plus 64 bytes, as in wsroom.MemoryStore.
	// Older messages are dropped; the newest is always kept. Default 1 MiB;
	// negative: no bound by size.
	RoomBytes int64

	// HistoryTTL is how long a room's history is kept after its last
	// message. The IDs of a room whose history expired keep increasing:
	// they start again from the current time in microseconds. Default 30
	// days; negative: kept until the bounds above drop it.
	HistoryTTL time.Duration
}

func (o *StoreOptions) withDefaults() (StoreOptions, error) {
	var v StoreOptions
	if o != nil {
		v = *o
	}
	if v.Prefix == "" {
		v.Prefix = "wsroom:"
	}
	if strings.ContainsAny(v.Prefix, "{}") {
		return v, fmt.Errorf("%w: Prefix %q contains a brace", wsroom.ErrBadOptions, v.Prefix)
	}
	def(&v.History, 1000)
	def(&v.RoomBytes, 1<<20)
	def(&v.HistoryTTL, 30*24*time.Hour)
	return v, nil
}

// BrokerOptions configures a Broker. The zero value (or a nil
// *BrokerOptions) is ready to use; each field's documentation ends with its
// default.
type BrokerOptions struct {
	// Prefix starts the name of every channel the Broker uses. It must not
	// contain '{' or '}'. Servers that share rooms must use the same
	// Prefix. Default "wsroom:".
	Prefix string

	// ReconnectMin and ReconnectMax bound the wait between two attempts to
	// open the pub/sub connection again after it failed: the wait doubles
	// from ReconnectMin up to ReconnectMax while attempts fail, with random
	// jitter so that many servers do not reconnect in step. Defaults 100ms
	// and 5s.
	ReconnectMin, ReconnectMax time.Duration

	// PingInterval is how often the pub/sub connection is checked when
	// nothing arrives on it: the Broker sends a PING, and a connection that
	// has not answered by the next check is dropped and opened again, so
	// that a silently broken connection (a NAT or a failover that sent no
	// reset) is noticed. Default 15s.
	PingInterval time.Duration

	// ClientName, when set, names the pub/sub connection (CLIENT SETNAME),
	// for CLIENT LIST and CLIENT KILL. The Redis user must be allowed
	// CLIENT SETNAME. Default "": the client's own name, if any.
	ClientName string

	// Logger receives the Broker's diagnostics: a lost connection, a
	// publication it could not decode. Default slog.Default().
	Logger *slog.Logger
}

func (o *BrokerOptions) withDefaults() (BrokerOptions, error) {
	var v BrokerOptions
	if o != nil {
		v = *o
	}
	if v.Prefix == "" {
		v.Prefix = "wsroom:"
	}
	if strings.ContainsAny(v.Prefix, "{}") {
		return v, fmt.Errorf("%w: Prefix %q contains a brace", wsroom.ErrBadOptions, v.Prefix)
	}
	def(&v.ReconnectMin, 100*time.Millisecond)
	def(&v.ReconnectMax, 5*time.Second)
	def(&v.PingInterval, 15*time.Second)
	if v.ReconnectMin < 0 || v.ReconnectMax < v.ReconnectMin || v.PingInterval < 0 {
		return v, fmt.Errorf("%w: ReconnectMin %v, ReconnectMax %v, PingInterval %v", wsroom.ErrBadOptions, v.ReconnectMin, v.ReconnectMax, v.PingInterval)
	}
	if v.Logger == nil {
		v.Logger = slog.Default()
	}
	return v, nil
}

func def[T int | int64 | time.Duration](v *T, d T) {
	if *v == 0 {
		*v = d
	}
}
