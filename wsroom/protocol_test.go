package wsroom

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"wsroom.dev/internal/assert"
)

func TestAppendStringIsJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `"quoted" \ back`, "tab\tnew\nline\r", "\x00\x01\x1f", "你好 🎉", "\u2028\u2029", "<script>&"} {
		b := appendString(nil, s)
		var got string
		assert.Success(t, json.Unmarshal(b, &got))
		assert.Equal(t, "round trip of "+s, s, got)
	}
	// Invalid UTF-8 becomes U+FFFD, as encoding/json does.
	var got string
	assert.Success(t, json.Unmarshal(appendString(nil, "a\xffb"), &got))
	assert.Equal(t, "invalid UTF-8", "a\uFFFDb", got)
	assert.Equal(t, "line separators escaped", `"\u2028\u2029"`, string(appendString(nil, "\u2028\u2029")))
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a", "\"\\", "\n\x00", "你好", "\u2028", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("appendString(%q) = %s: invalid JSON: %v", s, b, err)
		}
		if utf8.ValidString(s) && got != s {
			t.Fatalf("round trip: %q became %q", s, got)
		}
	})
}

func TestEncodedEventsAreJSON(t *testing.T) {
	m := Message{ID: 42, From: "a\"b", Text: "x\ny", Time: time.UnixMilli(1700000000123)}
	for _, b := range [][]byte{
		encodeMessage(m),
		encodeMessage(Message{From: "", Text: "no id", Time: time.Now()}),
		encodeNamed("join", "你好"),
		encodePresence([]string{"a", "b"}, nil),
		encodeWelcome(welcome{Room: "r", Name: "n", Members: []string{"n"}, History: []Message{m}, Gap: true}),
		encodeWelcome(welcome{Room: "r", Name: "n"}),
		encodeHistory([]Message{m, m}, true),
		encodeError("bad_request", "why \"quoted\""),
	} {
		var v map[string]any
		assert.Success(t, json.Unmarshal(b, &v))
		assert.True(t, "no newline inside an event: "+string(b), !strings.Contains(string(b), "\n"))
	}
	var v struct {
		Type, ID, From, Text string
		TS                   int64
	}
	assert.Success(t, json.Unmarshal(encodeMessage(m), &v))
	assert.Equal(t, "message", struct {
		Type, ID, From, Text string
		TS                   int64
	}{"message", "42", "a\"b", "x\ny", 1700000000123}, v)
	var w struct {
		Members []string  `json:"members"`
		History []Message `json:"history"`
	}
	assert.Success(t, json.Unmarshal(encodeWelcome(welcome{}), &w))
	assert.True(t, "empty lists are [] not null", w.Members != nil && w.History != nil)
}

func TestDecodeClientFrame(t *testing.T) {
	f, err := decodeClientFrame([]byte(` {"type":"join","name":"alice","since":"12"} `))
	assert.Success(t, err)
	assert.Equal(t, "join", clientFrame{Type: "join", Name: "alice", Since: msgID{12, true}}, f)
	f, err = decodeClientFrame([]byte(`{"type":"history","before":34,"limit":5}`))
	assert.Success(t, err)
	assert.Equal(t, "history", clientFrame{Type: "history", Before: msgID{34, true}, Limit: 5}, f)
	f, err = decodeClientFrame([]byte(`{"type":"history","before":null}`))
	assert.Success(t, err)
	assert.True(t, "null before", !f.Before.set)
	for _, bad := range []string{``, `null`, `"join"`, `{"type":"join","since":"-1"}`, `{"type":"join","since":"1e3"}`, `{"type":"message","text":5}`, `{"type":"x"}`, `{} {}`} {
		_, err := decodeClientFrame([]byte(bad))
		assert.True(t, "refused: "+bad, err != nil)
	}
}

// referenceDecode decodes a client frame with encoding/json, matching keys
// exactly: the behaviour decodeClientFrame must have.
func referenceDecode(b []byte) (clientFrame, error) {
	var f clientFrame
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return f, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return f, errors.New("trailing data")
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return f, errors.New("not an object")
	}
	if depth(v) > maxDepth+1 {
		return f, errors.New("too deep")
	}
	str := func(k string, dst *string) error {
		switch x := obj[k].(type) {
		case nil:
			if _, present := obj[k]; present {
				return errors.New("null string")
			}
		case string:
			*dst = x
		default:
			return errors.New("not a string")
		}
		return nil
	}
	id := func(k string, dst *msgID) error {
		var s string
		switch x := obj[k].(type) {
		case nil:
			return nil
		case string:
			s = x
		case json.Number:
			s = string(x)
		default:
			return errors.New("bad id")
		}
		u, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return err
		}
		*dst = msgID{v: u, set: true}
		return nil
	}
	for _, err := range []error{str("type", &f.Type), str("name", &f.Name), str("text", &f.Text), str("after", &f.After), id("since", &f.Since), id("before", &f.Before)} {
		if err != nil {
			return f, err
		}
	}
	switch x := obj["limit"].(type) {
	case nil:
	case json.Number:
		n, err := strconv.Atoi(string(x))
		if err != nil {
			return f, err
		}
		f.Limit = n
	default:
		return f, errors.New("bad limit")
	}
	return f, checkClientFrame(f)
}

func depth(v any) int {
	d := 0
	switch x := v.(type) {
	case map[string]any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	case []any:
		for _, e := range x {
			d = max(d, depth(e))
		}
		return d + 1
	}
	return 0
}

// FuzzDecodeClientFrame feeds the decoder arbitrary frames: it must never
// panic, and it must agree with encoding/json on what a frame says.
func FuzzDecodeClientFrame(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","name":"alice"}`,
		`{"type":"join","name":"bob","since":"123"}`,
		`{"type":"message","text":"hi"}`,
		`{"type":"history","before":"99","limit":50}`,
		`{"type":"history","before":99}`,
		`{"type":"message","text":"\u0000\ud800\ud83d\ude00\n\"\\"}`,
		`{"type":"message","text":"x","extra":{"a":[1,2,{"b":null}],"c":true},"more":[[],{}]}`,
		`{"type":"message","type":"join"}`,
		`login:黄晓安`,
		`[]`, `{`, `{"type":null}`, `{"type":"history","limit":1e2}`, `{"type":"join","since":-0}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if !utf8.Valid(b) {
			return // the server refuses invalid UTF-8 before decoding (1007)
		}
		got, err := decodeClientFrame(b)
		want, werr := referenceDecode(b)
		if (err == nil) != (werr == nil) {
			t.Fatalf("%q: decodeClientFrame error %v, encoding/json error %v", b, err, werr)
		}
		if err == nil && got != want {
			t.Fatalf("%q: decodeClientFrame %+v, encoding/json %+v", b, got, want)
		}
	})
}
