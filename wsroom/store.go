package wsroom

import (
	"context"
	"time"
)

// Message is one chat message as it is kept in a room's history.
type Message struct {
	// ID is assigned by the Store when the message is appended. It is
	// unique within the room and increases with every append.
	ID uint64 `json:"id"`
	// From is the sender's name; empty for a message from the server.
	From string `json:"from,omitempty"`
	// Text is the message body.
	Text string `json:"text"`
	// Time is when the server accepted the message.
	Time time.Time `json:"ts"`
}

// Store keeps what a room needs beyond one connection: who is in it and what
// was said. Every method takes a context that bounds it and must be safe for
// concurrent use by many goroutines and, for shared backends, by many
// servers at once.
//
// The conformance suite wsroom.dev/wsroom/storetest states the contract as
// tests; every implementation runs it.
type Store interface {
	Presence
	History
}

// Owner says who holds a reservation: a server's lease and one of that
// server's connections.
type Owner struct {
	// Server is the id of the server's lease. A Server picks a random one
	// when it starts and a new one if its lease is ever lost.
	Server string `json:"server"`
	// Conn identifies the connection within the server.
	Conn string `json:"conn"`
}

// IsZero reports whether o is the zero Owner.
func (o Owner) IsZero() bool { return o == Owner{} }

// Reservation is a member name held in a room by an owner.
type Reservation struct {
	Room  string `json:"room"`
	Name  string `json:"name"`
	Owner Owner  `json:"owner"`
}

// ReserveOptions are the terms of a Reserve.
type ReserveOptions struct {
	// Max is the most members the room may hold; <= 0 means no limit.
	Max int
	// Lease is how long, from now, the owner's server lease lasts when
	// Reserve starts it: a server that has no lease yet gets one. Reserve
	// may also extend a lease it finds; Refresh always does.
	Lease time.Duration
	// Replace takes the name over from a live holder instead of failing
	// with ErrNameTaken.
	Replace bool
}

// Presence reserves member names, one holder per name and room, across
// every server that shares the store.
//
// A reservation lives as long as its server's lease. A server extends the
// lease of all of its reservations at once with Refresh, on an interval
// shorter than the lease; a server that stops (a crash, a partition) stops
// refreshing, and its reservations expire together. An expired reservation
// is gone for Reserve and Members at once; Refresh hands it, exactly once
// across all servers, to a server that announces the departure.
type Presence interface {
	// Reserve gives r.Name in r.Room to r.Owner, atomically: two servers
	// racing for one name cannot both win. It fails with an error wrapping
	// ErrNameTaken when a live reservation of another owner holds the name
	// (unless o.Replace), ErrRoomFull when the room already holds o.Max
	// live reservations, and ErrLeaseExpired when r.Owner.Server's lease
	// has ended (the server must take a new lease id).
	//
	// When Reserve takes the name over from another holder (o.Replace, or
	// a holder whose lease ended) it returns that holder; the name never
	// left the room, so no departure is due for the holder it replaced and
	// Refresh never returns it. Reserving a name r.Owner already holds
	// succeeds and replaces nothing.
	Reserve(ctx context.Context, r Reservation, o ReserveOptions) (replaced Owner, err error)

	// Release frees r.Name in r.Room if r.Owner holds it. Otherwise (the
	// name was replaced, expired, or never reserved) it changes nothing and
	// returns an error wrapping ErrNotMember: the departure is not this
	// caller's to announce.
	Release(ctx context.Context, r Reservation) error

	// Members returns, sorted, up to limit (<= 0: all) names of the room's
	// live members that sort after the name after ("" for the first page),
	// and the number of live members in the room.
	Members(ctx context.Context, room, after string, limit int) (names []string, total int, err error)

	// Refresh extends the lease of every reservation of server to lease
	// from now, in one call whatever their number. It also removes the
	// reservations of every server whose lease has ended and returns them,
	// each to exactly one caller across all servers, so that their
	// departures are announced once.
	//
	// If server's own lease had ended (it did not refresh in time), Refresh
	// returns, with its expired reservations, an error wrapping
	// ErrLeaseExpired: the server must stop using the lease id, and its
	// members, whose departures were announced, must go. A server that has
	// no lease yet gets one.
	Refresh(ctx context.Context, server string, lease time.Duration) (expired []Reservation, err error)
}

// History appends and reads a room's messages. A backend keeps a bounded
// history per room and documents its bound.
//
// IDs are assigned by Append, increase with every append to a room (across
// restarts, for persistent backends), and become visible in order: once a
// message is visible to Recent, Before or After, every message appended to
// the room with a lower ID is visible too (or was dropped by the bound). A
// client that resumes After the highest ID it saw therefore never skips a
// message that was committed later with a lower ID.
type History interface {
	// Append stores m in the room's history and returns it with ID set.
	Append(ctx context.Context, room string, m Message) (Message, error)
	// Recent returns up to limit of the room's most recent messages, oldest
	// first.
	Recent(ctx context.Context, room string, limit int) ([]Message, error)
	// Before returns up to limit of the messages with an ID below id, the
	// closest to id, oldest first: the page before id.
	Before(ctx context.Context, room string, id uint64, limit int) ([]Message, error)
	// After returns the messages with an ID above id, oldest first. When
	// more than limit such messages exist, it returns the most recent
	// limit of them. complete reports whether the result holds every
	// message ever appended after id: it is false when some were cut by
	// limit, were dropped by the history bound, or when id is not one the
	// store could have issued (newer than its newest message).
	After(ctx context.Context, room string, id uint64, limit int) (msgs []Message, complete bool, err error)
}
