package wsroom

import (
	"strconv"
	"unicode/utf8"
)

// Subprotocol is the WebSocket subprotocol of the JSON protocol. A client
// that does not offer it speaks the plain-text protocol.
const Subprotocol = "wsroom.v1"

// Error codes sent in error events.
const (
	CodeBadRequest     = "bad_request"     // a frame the server could not understand
	CodeBadName        = "bad_name"        // the name breaks the naming rules
	CodeNameTaken      = "name_taken"      // another member has the name
	CodeRoomFull       = "room_full"       // the room has its maximum of members
	CodeNotJoined      = "not_joined"      // the request needs a joined member
	CodeAlreadyJoined  = "already_joined"  // a second join on one connection
	CodeRateLimited    = "rate_limited"    // too many frames; this one was dropped
	CodeJoinRefused    = "join_refused"    // the OnJoin hook refused
	CodeMessageRefused = "message_refused" // the OnMessage hook refused
	CodeUnavailable    = "unavailable"     // the store or broker failed; retry later
	CodeServerFull     = "server_full"     // this server has its maximum of rooms
)

// errorTexts are the messages of the error codes: fixed, so that nothing
// internal reaches a client; the details go to the log.
var errorTexts = map[string]string{
	CodeBadRequest:     "the frame is not a valid request",
	CodeBadName:        "the name is not allowed: it must be 1 to the longest allowed characters, with no control, format or separator characters",
	CodeNameTaken:      "the name is taken in this room",
	CodeRoomFull:       "the room is full",
	CodeNotJoined:      "join the room first",
	CodeAlreadyJoined:  "already joined",
	CodeRateLimited:    "too many messages; this one was dropped",
	CodeJoinRefused:    "join refused",
	CodeMessageRefused: "message refused",
	CodeUnavailable:    "the room is unavailable; try again later",
	CodeServerFull:     "the server is full; try again later",
}

// errorText returns the fixed message of an error code.
func errorText(code string) string {
	if t, ok := errorTexts[code]; ok {
		return t
	}
	return code
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// U+2028 and U+2029 are escaped so the output is also valid JavaScript.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

func appendStrings(b []byte, ss []string) []byte {
	b = append(b, '[')
	for i, s := range ss {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, s)
	}
	return append(b, ']')
}

// appendMessageFields appends the fields of a message object without
// braces. A message that was not stored has no ID.
func appendMessageFields(b []byte, m Message) []byte {
	if m.ID != 0 {
		b = append(b, `"id":"`...)
		b = strconv.AppendUint(b, m.ID, 10)
		b = append(b, `",`...)
	}
	b = append(b, `"from":`...)
	b = appendString(b, m.From)
	b = append(b, `,"text":`...)
	b = appendString(b, m.Text)
	b = append(b, `,"ts":`...)
	return strconv.AppendInt(b, m.Time.UnixMilli(), 10)
}

func appendMessages(b []byte, ms []Message) []byte {
	b = append(b, '[')
	for i, m := range ms {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, '{')
		b = appendMessageFields(b, m)
		b = append(b, '}')
	}
	return append(b, ']')
}

func encodeMessage(m Message) []byte {
	b := make([]byte, 0, 64+len(m.From)+len(m.Text))
	b = append(b, `{"type":"message",`...)
	b = appendMessageFields(b, m)
	return append(b, '}')
}

func encodeNamed(typ, name string) []byte {
	b := make([]byte, 0, 24+len(typ)+len(name))
	b = append(b, `{"type":"`...)
	b = append(b, typ...)
	b = append(b, `","name":`...)
	b = appendString(b, name)
	return append(b, '}')
}

func encodePresence(joined, left []string) []byte {
	b := []byte(`{"type":"presence","joined":`)
	b = appendStrings(b, joined)
	b = append(b, `,"left":`...)
	b = appendStrings(b, left)
	return append(b, '}')
}

// welcome is what a member receives when it joins.
type welcome struct {
	Room    string
	Name    string
	Members []string // the first page
	Count   int      // all members
	History []Message
	Gap     bool // a resume could not be filled completely
}

func encodeWelcome(w welcome) []byte {
	// Sized up front: a welcome is encoded for every join, and growing it
	// by doubling would make a join storm's garbage twice its size.
	n := 96 + len(w.Room) + len(w.Name)
	for _, m := range w.Members {
		n += len(m) + 3
	}
	n += messagesSize(w.History)
	b := make([]byte, 0, n+n/8)
	b = append(b, `{"type":"welcome","room":`...)
	b = appendString(b, w.Room)
	b = append(b, `,"name":`...)
	b = appendString(b, w.Name)
	b = append(b, `,"members":`...)
	b = appendStrings(b, w.Members)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(w.Count), 10)
	b = append(b, `,"history":`...)
	b = appendMessages(b, w.History)
	if w.Gap {
		b = append(b, `,"gap":true`...)
	}
	return append(b, '}')
}

// messagesSize is about what appendMessages takes for ms, unescaped.
func messagesSize(ms []Message) int {
	n := 2
	for _, m := range ms {
		n += len(m.From) + len(m.Text) + 64
	}
	return n
}

func encodeHistory(ms []Message, more bool) []byte {
	// Sized up front, like a welcome: a page of HistoryBytes grown by
	// appending leaves a chain of ever larger copies behind it, and a
	// client asking for pages again and again makes the server allocate
	// (and the collector find) several times the page.
	n := 48 + messagesSize(ms)
	b := make([]byte, 0, n+n/8)
	b = append(b, `{"type":"history","messages":`...)
	b = appendMessages(b, ms)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, more)
	return append(b, '}')
}

func encodeMembers(names []string, count int, more bool) []byte {
	b := []byte(`{"type":"members","members":`)
	b = appendStrings(b, names)
	b = append(b, `,"count":`...)
	b = strconv.AppendInt(b, int64(count), 10)
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, more)
	return append(b, '}')
}

func encodeError(code, message string) []byte {
	b := []byte(`{"type":"error","code":`)
	b = appendString(b, code)
	b = append(b, `,"message":`...)
	b = appendString(b, message)
	return append(b, '}')
}
