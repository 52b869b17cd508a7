package wsroom

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors. Functions wrap them with the operation that failed, so
// test for them with errors.Is.
var (
	// ErrNameTaken is returned by a Store when the name is already reserved
	// in the room.
	ErrNameTaken = errors.New("wsroom: name taken")

	// ErrRoomFull is returned by a Store when the room already holds its
	// maximum number of members.
	ErrRoomFull = errors.New("wsroom: room full")

	// ErrBadName is returned when a member or room name breaks the naming
	// rules (empty, too long, control or bidi characters, invalid UTF-8).
	ErrBadName = errors.New("wsroom: bad name")

	// ErrNotMember is returned when a named member is not in the room, and
	// by Presence.Release when the caller does not hold the reservation.
	ErrNotMember = errors.New("wsroom: not a member")

	// ErrLeaseExpired is returned by a Presence when a server's lease on
	// its reservations has ended: they are gone, and the server must take
	// a new lease id.
	ErrLeaseExpired = errors.New("wsroom: presence lease expired")

	// ErrShutdown is returned by operations started after Shutdown.
	ErrShutdown = errors.New("wsroom: server shut down")

	// ErrBadOptions is returned by New when an option is invalid.
	ErrBadOptions = errors.New("wsroom: bad options")

	// errTooManyRooms refuses a join that would open a room beyond
	// Options.MaxRooms on this server.
	errTooManyRooms = errors.New("wsroom: too many rooms on this server")
)

// RejectError is returned by a hook to refuse what the hook was asked
// about. For the Identify hook, Status is the HTTP status of the refusal
// (default 403) and Message its body. For OnJoin and OnMessage, Code and
// Message reach the client in an error event.
//
// A hook that returns any other error also refuses, but the client sees
// only a generic refusal so that internal details do not leak.
type RejectError struct {
	Status  int    // HTTP status for Identify; default 403
	Code    string // error event code for OnJoin and OnMessage
	Message string // human-readable reason shown to the client
}

func (e *RejectError) Error() string {
	return fmt.Sprintf("wsroom: rejected: %s %s", e.Code, e.Message)
}

// Reject returns a *RejectError with the given code and message, for OnJoin
// and OnMessage hooks.
func Reject(code, message string) error {
	return &RejectError{Code: code, Message: message}
}

// asReject reports the refusal an error carries: the fields of a
// *RejectError, with Status defaulting to 403 and Code to defCode; any other
// error refuses with those defaults and no message, so that internal
// details never reach the client.
func asReject(err error, defCode string) RejectError {
	r := RejectError{Status: http.StatusForbidden, Code: defCode}
	var re *RejectError
	if errors.As(err, &re) {
		if re.Status != 0 {
			r.Status = re.Status
		}
		if re.Code != "" {
			r.Code = re.Code
		}
		r.Message = re.Message
	}
	return r
}
