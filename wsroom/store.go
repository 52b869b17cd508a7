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
// was said. Every method takes the context of the request it serves and must
// be safe for concurrent use by many goroutines and, for shared backends, by
// many servers at once.
//
// The package's conformance suite, wsroom.dev/wsroom/storetest, states the
// contract as tests; every implementation runs it.
type Store interface {
	Presence
	History
}

// Presence reserves member names. Names are unique per room: Reserve is
// atomic, so two servers racing for one name cannot both win.
type Presence interface {
	// Reserve adds name to the room's members. It fails with an error
	// wrapping ErrNameTaken when the name is already reserved, or
	// ErrRoomFull when the room already has max members (max <= 0 means
	// no limit).
	Reserve(ctx context.Context, room, name string, max int) error
	// Release removes name from the room's members. Releasing a name that is
	// not reserved is not an error.
	Release(ctx context.Context, room, name string) error
	// Members returns the room's member names, sorted.
	Members(ctx context.Context, room string) ([]string, error)
}

// History appends and reads a room's messages. A backend keeps a bounded
// number of recent messages per room and documents its bound.
type History interface {
	// Append stores m in the room's history and returns it with ID set.
	// IDs increase with every append to the room, across restarts for
	// persistent backends.
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
