package wsroom

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxRoomLength is the longest room name, in characters.
const maxRoomLength = 64

// cleanName trims surrounding white space from a name.
func cleanName(s string) string {
	return strings.TrimFunc(s, unicode.IsSpace)
}

// checkName reports whether a cleaned name follows the naming rules: not
// empty, at most max characters (max < 0: no limit), valid UTF-8, no control,
// format (bidi overrides, zero-width characters), line or paragraph
// separator, private-use or unassigned characters.
func checkName(s string, max int) error {
	if s == "" {
		return fmt.Errorf("%w: empty", ErrBadName)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: invalid UTF-8", ErrBadName)
	}
	if s != cleanName(s) {
		return fmt.Errorf("%w: leading or trailing space", ErrBadName)
	}
	n := 0
	for _, r := range s {
		n++
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp, unicode.Co) || !unicode.Is(unicode.L, r) && !unicode.In(r, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Zs) {
			return fmt.Errorf("%w: character %U not allowed", ErrBadName, r)
		}
	}
	if max >= 0 && n > max {
		return fmt.Errorf("%w: longer than %d characters", ErrBadName, max)
	}
	return nil
}
