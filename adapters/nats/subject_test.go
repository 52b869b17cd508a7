package wsroomnats

import (
	"errors"
	"strings"
	"testing"

	"wsroom.dev/wsroom"
)

// validToken reports whether tok is one literal NATS subject token.
func validToken(tok string) bool {
	if tok == "" || tok == "*" || tok == ">" {
		return false
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if c <= ' ' || c >= 0x7f || c == '.' || c == '*' || c == '>' {
			return false
		}
	}
	return true
}

func TestRoomToken(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ room, tok string }{
		{"lobby", "lobby"},
		{"", "_"},
		{"_", "_5F"},
		{"a b", "a_20b"},
		{"a.b", "a_2Eb"},
		{"*", "_2A"},
		{">", "_3E"},
		{"a.>", "a_2E_3E"},
		{"x\ty\r\n", "x_09y_0D_0A"},
		{"你好", "_E4_BD_A0_E5_A5_BD"},
		{"brokertest-TestX/Y-0a", "brokertest-TestX_2FY-0a"},
		{"\xff", "_FF"}, // not UTF-8, still reversible
	} {
		tok, err := roomToken(tt.room)
		if err != nil || tok != tt.tok {
			t.Errorf("roomToken(%q) = %q, %v; want %q", tt.room, tok, err, tt.tok)
		}
		if !validToken(tok) {
			t.Errorf("roomToken(%q) = %q: not one subject token", tt.room, tok)
		}
		back, err := tokenRoom(tok)
		if err != nil || back != tt.room {
			t.Errorf("tokenRoom(%q) = %q, %v; want %q", tok, back, err, tt.room)
		}
	}
	for _, bad := range []string{"", "a.b", "_4", "_4g", "_zz", "a b", "_e4", "__41"} {
		if r, err := tokenRoom(bad); err == nil {
			t.Errorf("tokenRoom(%q) = %q, want an error", bad, r)
		}
	}
}

func TestRoomTokenTooLong(t *testing.T) {
	t.Parallel()
	// wsroom's longest room name, 64 characters of 4 bytes, fits.
	if _, err := roomToken(strings.Repeat("🎉", 64)); err != nil {
		t.Fatalf("64 emoji: %v", err)
	}
	_, err := roomToken(strings.Repeat("🎉", 100))
	if !errors.Is(err, wsroom.ErrBadName) {
		t.Fatalf("a room name too long for a subject: want ErrBadName, got %v", err)
	}
}

func FuzzRoomToken(f *testing.F) {
	for _, s := range []string{"", "lobby", "a.b c", "*", ">", "你好", "_41", "\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, room string) {
		tok, err := roomToken(room)
		if err != nil {
			if len(room) <= maxToken/3 {
				t.Fatalf("roomToken(%q): %v", room, err)
			}
			return
		}
		if !validToken(tok) {
			t.Fatalf("roomToken(%q) = %q: not one subject token", room, tok)
		}
		back, err := tokenRoom(tok)
		if err != nil || back != room {
			t.Fatalf("tokenRoom(roomToken(%q)) = %q, %v", room, back, err)
		}
	})
}

func TestCheckPrefix(t *testing.T) {
	t.Parallel()
	for _, ok := range []string{"wsroom.", "a.b.", "app-1.chat."} {
		if err := checkPrefix(ok); err != nil {
			t.Errorf("checkPrefix(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"wsroom", ".", "a..", "*.", "a.>.", "a b.", ".a."} {
		if err := checkPrefix(bad); !errors.Is(err, wsroom.ErrBadOptions) {
			t.Errorf("checkPrefix(%q) = %v, want ErrBadOptions", bad, err)
		}
	}
}
