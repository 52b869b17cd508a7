package conformance_test

import (
	"strings"
	"testing"

	"wsroom.dev/internal/conformance"
)

func TestWriteTable(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	err := conformance.WriteTable(&b, []conformance.Result{
		{ID: "2.10", Endpoint: "echo", Desc: "ten pings", Expected: "pong[9] ×10", Got: "pong[9] ×10", Status: conformance.Pass},
		{ID: "9.H.1", Endpoint: "echo", Desc: "header\nover the limit", Expected: "close 1009", Got: "no close", Status: conformance.Known},
		{ID: "2.9", Endpoint: "echo", Desc: "pong, ping", Expected: "pong[12]", Got: "close 1002", Status: conformance.Fail},
		{ID: "1.1.1", Endpoint: "chat", Desc: strings.Repeat("long ", 40), Expected: "stays open", Got: "open", Status: conformance.Pass},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSuffix(b.String(), "\n"), "\n")
	if len(lines) != 6 {
		t.Fatalf("want a header, 4 rows and a count, got:\n%s", b.String())
	}
	for i, prefix := range []string{"id ", "1.1.1 ", "2.9 ", "2.10 ", "9.H.1 "} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("line %d: want it to start with %q, got %q", i, prefix, lines[i])
		}
	}
	if !strings.Contains(lines[1], "…") || strings.Contains(b.String(), "header\nover") {
		t.Errorf("cells are not kept short and on one line:\n%s", b.String())
	}
	if want := "4 rows: 2 pass, 1 FAIL, 1 known failures, 0 FIXED"; !strings.HasPrefix(lines[5], want) {
		t.Errorf("count: want %q, got %q", want, lines[5])
	}
}
