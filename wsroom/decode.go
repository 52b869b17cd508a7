package wsroom

import (
	"errors"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// clientFrame is one client-to-server JSON object.
type clientFrame struct {
	Type   string
	Name   string
	Text   string
	Since  msgID
	Before msgID
	After  string
	Limit  int
}

// msgID is a message ID on the wire: a decimal string (numbers are accepted
// too).
type msgID struct {
	v   uint64
	set bool
}

var (
	errSyntax = errors.New("invalid JSON")
	errBadID  = errors.New("bad message id")
)

// maxDepth bounds the nesting of unknown fields a frame may carry.
const maxDepth = 32

// decodeClientFrame parses and checks one client frame: a single JSON
// object whose known fields have the right types; unknown fields are
// skipped, and for a repeated field the last one counts, as with
// encoding/json. It is a small iterative parser rather than encoding/json:
// several times faster, and shallow, so that a member's goroutine keeps a
// small stack.
func decodeClientFrame(b []byte) (clientFrame, error) {
	var f clientFrame
	d := decoder{b: b}
	d.space()
	if !d.eat('{') {
		return f, errors.New("a frame must be one JSON object")
	}
	d.space()
	if !d.eat('}') {
		for {
			d.space()
			key, err := d.str()
			if err != nil {
				return f, err
			}
			d.space()
			if !d.eat(':') {
				return f, errSyntax
			}
			d.space()
			switch key {
			case "type":
				f.Type, err = d.str()
			case "name":
				f.Name, err = d.str()
			case "text":
				f.Text, err = d.str()
			case "since":
				f.Since, err = d.id()
			case "before":
				f.Before, err = d.id()
			case "after":
				f.After, err = d.str()
			case "limit":
				f.Limit, err = d.int()
			default:
				err = d.skip()
			}
			if err != nil {
				return f, fmt.Errorf("field %q: %w", key, err)
			}
			d.space()
			if d.eat(',') {
				continue
			}
			if d.eat('}') {
				break
			}
			return f, errSyntax
		}
	}
	d.space()
	if d.i != len(d.b) {
		return f, errors.New("trailing data after the object")
	}
	return f, checkClientFrame(f)
}

func checkClientFrame(f clientFrame) error {
	switch f.Type {
	case "join":
	case "message":
		if f.Text == "" {
			return errors.New("message: empty text")
		}
	case "history", "members":
		if f.Limit < 0 {
			return fmt.Errorf("%s: negative limit", f.Type)
		}
	case "":
		return errors.New("missing type")
	default:
		return fmt.Errorf("unknown type %q", f.Type)
	}
	return nil
}

type decoder struct {
	b []byte
	i int
}

func (d *decoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) eat(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

func (d *decoder) literal(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

// str reads a JSON string. Invalid UTF-8 and lone surrogates become
// U+FFFD, as with encoding/json.
func (d *decoder) str() (string, error) {
	if !d.eat('"') {
		return "", errSyntax
	}
	start := d.i
	for d.i < len(d.b) { // fast path: nothing to unescape
		c := d.b[d.i]
		if c == '"' {
			s := d.b[start:d.i]
			d.i++
			if utf8.Valid(s) {
				return string(s), nil
			}
			return string([]rune(string(s))), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		d.i++
	}
	out := append([]byte(nil), d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				out = []byte(string([]rune(string(out))))
			}
			return string(out), nil
		case c < 0x20:
			return "", errSyntax
		case c != '\\':
			out = append(out, c)
			d.i++
			continue
		}
		d.i++
		if d.i >= len(d.b) {
			return "", errSyntax
		}
		e := d.b[d.i]
		d.i++
		switch e {
		case '"', '\\', '/':
			out = append(out, e)
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok {
				return "", errSyntax
			}
			if utf16.IsSurrogate(r) {
				r2 := rune(-1)
				save := d.i
				if d.literal(`\u`) {
					if v, ok := d.hex4(); ok {
						r2 = v
					} else {
						return "", errSyntax
					}
				}
				if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
					r = dec
				} else {
					r = utf8.RuneError
					d.i = save // the next escape stands on its own
				}
			}
			out = utf8.AppendRune(out, r)
		default:
			return "", errSyntax
		}
	}
	return "", errSyntax
}

func (d *decoder) hex4() (rune, bool) {
	if len(d.b)-d.i < 4 {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}

// number reads a JSON number and returns its text.
func (d *decoder) number() ([]byte, error) {
	start := d.i
	d.eat('-')
	switch {
	case d.eat('0'):
	case d.i < len(d.b) && '1' <= d.b[d.i] && d.b[d.i] <= '9':
		d.digits()
	default:
		return nil, errSyntax
	}
	if d.eat('.') {
		if d.digits() == 0 {
			return nil, errSyntax
		}
	}
	if d.eat('e') || d.eat('E') {
		if !d.eat('+') {
			d.eat('-')
		}
		if d.digits() == 0 {
			return nil, errSyntax
		}
	}
	return d.b[start:d.i], nil
}

func (d *decoder) digits() int {
	n := 0
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
		n++
	}
	return n
}

// id reads a message ID: a decimal string or number, or null.
func (d *decoder) id() (msgID, error) {
	if d.literal("null") {
		return msgID{}, nil
	}
	var s string
	if d.i < len(d.b) && d.b[d.i] == '"' {
		var err error
		if s, err = d.str(); err != nil {
			return msgID{}, err
		}
	} else {
		n, err := d.number()
		if err != nil {
			return msgID{}, err
		}
		s = string(n)
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return msgID{}, errBadID
	}
	return msgID{v: v, set: true}, nil
}

// int reads an integer number, or null (zero).
func (d *decoder) int() (int, error) {
	if d.literal("null") {
		return 0, nil
	}
	n, err := d.number()
	if err != nil {
		return 0, err
	}
	v, err := strconv.Atoi(string(n))
	if err != nil {
		return 0, fmt.Errorf("not an integer: %s", n)
	}
	return v, nil
}

// skip reads any JSON value, without recursion.
func (d *decoder) skip() error {
	var stack [maxDepth]byte // the closing bracket of each open container
	depth := 0
	for {
		d.space()
		if d.i >= len(d.b) {
			return errSyntax
		}
		switch c := d.b[d.i]; {
		case c == '{' || c == '[':
			if depth == maxDepth {
				return errors.New("nested too deeply")
			}
			d.i++
			if c == '{' {
				stack[depth] = '}'
			} else {
				stack[depth] = ']'
			}
			depth++
			d.space()
			if d.eat(stack[depth-1]) {
				depth--
				goto next
			}
			if c == '{' {
				goto key
			}
			continue
		case c == '"':
			if _, err := d.str(); err != nil {
				return err
			}
		case c == 't':
			if !d.literal("true") {
				return errSyntax
			}
		case c == 'f':
			if !d.literal("false") {
				return errSyntax
			}
		case c == 'n':
			if !d.literal("null") {
				return errSyntax
			}
		default:
			if _, err := d.number(); err != nil {
				return err
			}
		}
	next:
		// After a value: close containers, or move to the next element.
		for {
			if depth == 0 {
				return nil
			}
			d.space()
			if d.eat(stack[depth-1]) {
				depth--
				continue
			}
			if !d.eat(',') {
				return errSyntax
			}
			if stack[depth-1] == '}' {
				goto key
			}
			break
		}
		continue
	key:
		d.space()
		if _, err := d.str(); err != nil {
			return err
		}
		d.space()
		if !d.eat(':') {
			return errSyntax
		}
	}
}
