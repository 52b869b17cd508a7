package loadgen

import (
	"bytes"
	"encoding/json"
	"strconv"
)

// kind is the type of a server event.
type kind uint8

const (
	kindOther kind = iota
	kindJoin
	kindLeave
	kindPresence
	kindWelcome
	kindMessage
	kindError
)

// event is one parsed server event. name, text and the lists alias the
// frame or are freshly decoded; they are valid until the next read.
type event struct {
	kind    kind
	name    []byte   // join, leave, welcome
	from    []byte   // message
	text    []byte   // message
	members [][]byte // welcome
	joined  [][]byte // presence
	left    [][]byte // presence
	errText string   // error: code and message
}

var (
	keyType    = []byte(`"type"`)
	keyName    = []byte(`"name"`)
	keyText    = []byte(`"text"`)
	keyFrom    = []byte(`"from"`)
	keyMembers = []byte(`"members"`)
	keyJoined  = []byte(`"joined"`)
	keyLeft    = []byte(`"left"`)
)

// parseEvent parses one line of a text frame. Join, leave and message
// events, the hot path, are read with a scanner that finds the few fields
// needed; welcome, presence and error events, and anything the scanner
// cannot read (escapes in a string), go through encoding/json.
func parseEvent(line []byte) (event, bool) {
	typ, ok := stringField(line, keyType)
	if !ok {
		return slowEvent(line)
	}
	var e event
	switch string(typ) {
	case "message":
		e.kind = kindMessage
		if e.text, ok = stringField(line, keyText); ok {
			e.from, ok = stringField(line, keyFrom)
		}
	case "join":
		e.kind = kindJoin
		e.name, ok = stringField(line, keyName)
	case "leave":
		e.kind = kindLeave
		e.name, ok = stringField(line, keyName)
	case "welcome":
		// The member list of a big room is most of what a join storm
		// carries: read it without decoding the rest.
		e.kind = kindWelcome
		if e.name, ok = stringField(line, keyName); ok {
			e.members, ok = stringList(line, keyMembers)
		}
	case "presence":
		e.kind = kindPresence
		if e.joined, ok = stringList(line, keyJoined); ok {
			e.left, ok = stringList(line, keyLeft)
		}
	default:
		return slowEvent(line)
	}
	if !ok {
		return slowEvent(line)
	}
	return e, true
}

// slowEvent decodes line with encoding/json.
func slowEvent(line []byte) (event, bool) {
	var v struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		From    string   `json:"from"`
		Text    string   `json:"text"`
		Members []string `json:"members"`
		Joined  []string `json:"joined"`
		Left    []string `json:"left"`
		Code    string   `json:"code"`
		Message string   `json:"message"`
	}
	if err := json.Unmarshal(line, &v); err != nil {
		return event{}, false
	}
	e := event{name: []byte(v.Name), from: []byte(v.From), text: []byte(v.Text), members: bytesList(v.Members), joined: bytesList(v.Joined), left: bytesList(v.Left)}
	switch v.Type {
	case "message":
		e.kind = kindMessage
	case "join":
		e.kind = kindJoin
	case "leave":
		e.kind = kindLeave
	case "presence":
		e.kind = kindPresence
	case "welcome":
		e.kind = kindWelcome
	case "error":
		e.kind = kindError
		e.errText = v.Code + ": " + v.Message
	default:
		e.kind = kindOther
	}
	return e, true
}

// stringField returns the raw value of the first `"key": "value"` in line.
// It fails if the key is missing, its value is not a string, or the string
// has escapes. The load generator's names and texts never need escaping.
func stringField(line, key []byte) ([]byte, bool) {
	rest, ok := valueOf(line, key, '"')
	if !ok {
		return nil, false
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
		return nil, false
	}
	return rest[:j], true
}

// valueOf returns what follows the opening character open of the value of
// the first `"key":` in line.
func valueOf(line, key []byte, open byte) ([]byte, bool) {
	i := bytes.Index(line, key)
	if i < 0 {
		return nil, false
	}
	rest := skipSpace(line[i+len(key):])
	if len(rest) == 0 || rest[0] != ':' {
		return nil, false
	}
	rest = skipSpace(rest[1:])
	if len(rest) == 0 || rest[0] != open {
		return nil, false
	}
	return rest[1:], true
}

// stringList returns the strings of the first `"key": [...]` in line, as
// slices of line. It fails if the key is missing, its value is not an array
// of strings, or a string has escapes.
func stringList(line, key []byte) ([][]byte, bool) {
	rest, ok := valueOf(line, key, '[')
	if !ok {
		return nil, false
	}
	rest = skipSpace(rest)
	var out [][]byte
	if len(rest) > 0 && rest[0] == ']' {
		return out, true
	}
	for {
		if len(rest) == 0 || rest[0] != '"' {
			return nil, false
		}
		rest = rest[1:]
		j := bytes.IndexByte(rest, '"')
		if j < 0 || bytes.IndexByte(rest[:j], '\\') >= 0 {
			return nil, false
		}
		out = append(out, rest[:j])
		rest = skipSpace(rest[j+1:])
		if len(rest) == 0 {
			return nil, false
		}
		switch rest[0] {
		case ',':
			rest = skipSpace(rest[1:])
		case ']':
			return out, true
		default:
			return nil, false
		}
	}
}

func bytesList(ss []string) [][]byte {
	if ss == nil {
		return nil
	}
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func skipSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\n' || b[0] == '\r') {
		b = b[1:]
	}
	return b
}

// nextLine cuts the first line off a frame; events are separated by '\n'.
func nextLine(frame []byte) (line, rest []byte) {
	if i := bytes.IndexByte(frame, '\n'); i >= 0 {
		return frame[:i], frame[i+1:]
	}
	return frame, nil
}

// parseName reads a member name "uN" and returns N.
func parseName(b []byte) (int, bool) {
	if len(b) < 2 || b[0] != 'u' {
		return 0, false
	}
	n, ok := parseUint(b[1:])
	return int(n), ok && n < 1<<31
}

// parseText reads the text "b:SEQ:UNIXNANO" of a benchmark message.
func parseText(b []byte) (seq int, sent int64, ok bool) {
	if len(b) < 2 || b[0] != 'b' || b[1] != ':' {
		return 0, 0, false
	}
	b = b[2:]
	i := bytes.IndexByte(b, ':')
	if i < 0 {
		return 0, 0, false
	}
	s, ok1 := parseUint(b[:i])
	t, ok2 := parseUint(b[i+1:])
	if !ok1 || !ok2 || s >= 1<<31 || t >= 1<<63 {
		return 0, 0, false
	}
	return int(s), int64(t), true
}

// appendText appends the text of message seq sent at sent (Unix ns).
func appendText(b []byte, seq int, sent int64) []byte {
	b = append(b, "b:"...)
	b = strconv.AppendInt(b, int64(seq), 10)
	b = append(b, ':')
	return strconv.AppendInt(b, sent, 10)
}

func parseUint(b []byte) (uint64, bool) {
	if len(b) == 0 || len(b) > 19 {
		return 0, false
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0')
	}
	return n, true
}
