package wsroom

import (
	"context"
	"net/http"
)

// Hooks are the application's say in a member's life. They are fixed when
// the Server is created. Every hook is optional, runs on the goroutine of
// the member it concerns, and must not block for long: while a hook runs,
// that member's frames (including pongs) are not read.
//
// A hook's context carries the upgrade request's values (what the router's
// middleware put there) but not its deadline or cancellation: it ends when
// the member leaves or the server shuts down. A hook that panics closes
// its member with 1011 (internal error); the member leaves as usual and the
// panic is logged with its stack.
type Hooks struct {
	// Identify runs before the WebSocket upgrade and may name the member
	// from the request (a session cookie, a header, a verified token). A
	// member named here is admitted before the upgrade (OnJoin runs, and
	// its name is reserved: a refusal is an HTTP status) and joins as soon
	// as it connects, resuming from the "since" query parameter, if any;
	// its client sends no join frame (one it sends is ignored) and cannot
	// pick another name. When the name is taken in the room (another tab
	// of the same user), Options.Duplicates decides. A *RejectError
	// refuses the upgrade with its Status (default 403) and Message; any
	// other error refuses with 403 Forbidden.
	Identify func(ctx context.Context, e IdentifyEvent) (IdentifyReply, error)

	// OnJoin runs before a member joins, after its name passed the naming
	// rules. An error refuses the join: the client gets an error event (the
	// code and message of a *RejectError, else join_refused) and may try
	// again. The reply may change the member's name.
	OnJoin func(ctx context.Context, e JoinEvent) (JoinReply, error)

	// OnMessage runs for each message a member sends, before it is stored
	// and broadcast. An error refuses the message: the sender gets an error
	// event (the code and message of a *RejectError, else
	// message_refused). The reply may drop the message silently or replace
	// its text or data.
	OnMessage func(ctx context.Context, e MessageEvent) (MessageReply, error)

	// OnLeave runs once after a member left the room, whatever the cause,
	// once its departure has been announced.
	OnLeave func(ctx context.Context, e LeaveEvent)
}

// IdentifyEvent is the input of Hooks.Identify.
type IdentifyEvent struct {
	Request *http.Request // the upgrade request
	Room    string
}

// IdentifyReply is the result of Hooks.Identify.
type IdentifyReply struct {
	// Name, when not empty, is the member's name: the member joins at once
	// under it. Empty lets the client choose with a join.
	Name string
}

// JoinEvent is the input of Hooks.OnJoin.
type JoinEvent struct {
	Request    *http.Request // the upgrade request
	Room       string
	Name       string // cleaned and checked against the naming rules
	Resume     bool   // the client asked to resume from a message ID
	Identified bool   // the Identify hook named the member (before the upgrade)
}

// JoinReply is the result of Hooks.OnJoin.
type JoinReply struct {
	// Name, when not empty, replaces the member's name; it must pass the
	// naming rules too.
	Name string
}

// MessageEvent is the input of Hooks.OnMessage.
type MessageEvent struct {
	Request *http.Request // the sender's upgrade request
	Room    string
	From    string
	Text    string // the text of a text message
	Binary  bool   // a binary message, in Data
	Data    []byte // valid only during the hook; copy to keep
}

// MessageReply is the result of Hooks.OnMessage.
type MessageReply struct {
	// Drop discards the message without telling the sender.
	Drop bool
	// Text, when not empty, replaces a text message's text.
	Text string
	// Data, when not nil, replaces a binary message's data.
	Data []byte
}

// LeaveEvent is the input of Hooks.OnLeave.
type LeaveEvent struct {
	Room   string
	Name   string
	Reason LeaveReason
	// Code is the WebSocket close code: sent by the server, received from
	// the client, or 1006 when the connection dropped without one.
	Code int
	// Err is the error behind ReasonError, ReasonPolicy and ReasonClosed
	// without a close frame; nil otherwise.
	Err error
}

// LeaveReason says why a member left.
type LeaveReason int

// Leave reasons, with the close code the server sends.
const (
	ReasonClosed   LeaveReason = iota + 1 // the client closed the connection, or it dropped
	ReasonSlow                            // the member could not keep up; closed with 1013
	ReasonTimeout                         // no pong in time (connection dropped), or no join in time (1008)
	ReasonShutdown                        // Server.Shutdown; closed with 1001
	ReasonRemoved                         // Room.Remove; closed with 1008 and the given reason
	ReasonPolicy                          // a limit: too big 1009, invalid UTF-8 1007, rate 1008, binary refused 1003
	ReasonError                           // a protocol or I/O error, or a hook panicked (1011)
	ReasonReplaced                        // a newer connection took the identified member's name; closed with 4001
	ReasonLost                            // the server lost its presence lease; closed with 1012
)

func (r LeaveReason) String() string {
	switch r {
	case ReasonClosed:
		return "closed"
	case ReasonSlow:
		return "slow"
	case ReasonTimeout:
		return "timeout"
	case ReasonShutdown:
		return "shutdown"
	case ReasonRemoved:
		return "removed"
	case ReasonPolicy:
		return "policy"
	case ReasonError:
		return "error"
	case ReasonReplaced:
		return "replaced"
	case ReasonLost:
		return "lost"
	}
	return "unknown"
}

// MemberInfo describes a member to a broadcast Filter.
type MemberInfo struct {
	Room  string
	Name  string
	Plain bool // speaks the plain-text protocol
}
