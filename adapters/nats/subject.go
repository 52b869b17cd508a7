package wsroomnats

import (
	"fmt"
	"strings"

	"wsroom.dev/wsroom"
)

// maxToken is the longest subject token a room may take, so that a
// protocol line stays well within the server's max_control_line (4 KiB by
// default). A wsroom room name (at most 64 characters) takes at most 768.
const maxToken = 1024

// roomToken escapes room into one subject token. ASCII letters, digits and
// '-' stand for themselves; every other byte (of the UTF-8 encoding) is '_'
// and two upper-case hex digits. The empty name is a lone "_", which no
// escape can produce. The token never holds '.', '*', '>' or white space,
// so a room cannot reach into another room's subject or match as a
// wildcard, and tokenRoom reverses it.
func roomToken(room string) (string, error) {
	if room == "" {
		return "_", nil
	}
	n := 0
	for i := 0; i < len(room); i++ {
		if plain(room[i]) {
			n++
		} else {
			n += 3
		}
	}
	if n > maxToken {
		return "", fmt.Errorf("wsroomnats: the subject for a room name of %d bytes would be %d bytes, over %d: %w", len(room), n, maxToken, wsroom.ErrBadName)
	}
	var b strings.Builder
	b.Grow(n)
	for i := 0; i < len(room); i++ {
		c := room[i]
		if plain(c) {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('_')
		b.WriteByte(hexDigits[c>>4])
		b.WriteByte(hexDigits[c&0xf])
	}
	return b.String(), nil
}

const hexDigits = "0123456789ABCDEF"

func plain(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-'
}

// tokenRoom reverses roomToken.
func tokenRoom(tok string) (string, error) {
	if tok == "_" {
		return "", nil
	}
	if tok == "" {
		return "", fmt.Errorf("wsroomnats: empty subject token")
	}
	var b strings.Builder
	b.Grow(len(tok))
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		switch {
		case plain(c):
			b.WriteByte(c)
		case c == '_' && i+2 < len(tok) && unhex(tok[i+1]) >= 0 && unhex(tok[i+2]) >= 0:
			b.WriteByte(byte(unhex(tok[i+1])<<4 | unhex(tok[i+2])))
			i += 2
		default:
			return "", fmt.Errorf("wsroomnats: bad subject token %q at byte %d", tok, i)
		}
	}
	return b.String(), nil
}

func unhex(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'A' <= c && c <= 'F':
		return int(c - 'A' + 10)
	}
	return -1
}

// checkPrefix reports whether prefix can start a subject: tokens separated
// by dots, none empty, none a wildcard, no white space, ending with a dot.
func checkPrefix(prefix string) error {
	if !strings.HasSuffix(prefix, ".") {
		return fmt.Errorf("wsroomnats: Prefix %q must end with a dot: %w", prefix, wsroom.ErrBadOptions)
	}
	for _, tok := range strings.Split(strings.TrimSuffix(prefix, "."), ".") {
		if tok == "" || tok == "*" || tok == ">" || strings.ContainsAny(tok, " \t\r\n") {
			return fmt.Errorf("wsroomnats: Prefix %q is not a literal NATS subject: %w", prefix, wsroom.ErrBadOptions)
		}
	}
	return nil
}
