package wstest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"wsroom.dev/wsroom"
)

// New returns wsroom.New(opts), shut down when the test ends. Cleanups run
// last first, so the Server shuts down after the servers and clients the
// test starts later; a Shutdown that takes over 10s fails the test.
func New(t testing.TB, opts *wsroom.Options) *wsroom.Server {
	t.Helper()
	rooms, err := wsroom.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := rooms.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return rooms
}

// IdentifyBy returns a copy of opts (nil: the defaults) whose Identify
// hook is identify, unless opts has one already.
func IdentifyBy(opts *wsroom.Options, identify func(context.Context, wsroom.IdentifyEvent) (wsroom.IdentifyReply, error)) *wsroom.Options {
	var o wsroom.Options
	if opts != nil {
		o = *opts
	}
	if o.Hooks.Identify == nil {
		o.Hooks.Identify = identify
	}
	return &o
}

// Serve serves h on loopback until the test ends, and returns its http://
// URL and the same with ws://.
func Serve(t testing.TB, h http.Handler) (httpURL, wsURL string) {
	t.Helper()
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	return ts.URL, "ws" + strings.TrimPrefix(ts.URL, "http")
}

// Context returns a context that is done after 15 seconds or when the test
// ends: the bound of every wait in a test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Status sends GET url with the header h (nil for none) and returns the
// response's status.
func Status(ctx context.Context, t testing.TB, url string, h http.Header) int {
	t.Helper()
	resp, _ := do(ctx, t, url, h)
	return resp.StatusCode
}

// Get sends GET url and returns the response's body; it fails unless the
// status is 200.
func Get(ctx context.Context, t testing.TB, url string) string {
	t.Helper()
	resp, body := do(ctx, t, url, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return body
}

func do(ctx context.Context, t testing.TB, url string, h http.Header) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return resp, string(b)
}
