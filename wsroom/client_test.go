package wsroom_test

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

func TestClientHandler(t *testing.T) {
	t.Parallel()
	js, err := os.ReadFile("client/wsroom.js")
	assert.Success(t, err)
	dts, err := os.ReadFile("client/wsroom.d.ts")
	assert.Success(t, err)

	mux := http.NewServeMux()
	mux.Handle("GET /wsroom.js", wsroom.ClientHandler())
	mux.Handle("/static/", wsroom.ClientHandler()) // every method reaches it
	do := func(method, target string, header ...string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, target, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, req)
		return rec
	}

	get := do("GET", "/wsroom.js")
	assert.Equal(t, "status", 200, get.Code)
	assert.Equal(t, "content type", "text/javascript; charset=utf-8", get.Header().Get("Content-Type"))
	assert.Equal(t, "cache control", "no-cache", get.Header().Get("Cache-Control"))
	assert.Equal(t, "nosniff", "nosniff", get.Header().Get("X-Content-Type-Options"))
	assert.True(t, "body is the client", bytes.Equal(get.Body.Bytes(), js))
	etag := get.Header().Get("ETag")
	assert.True(t, "strong quoted ETag "+etag, regexp.MustCompile(`^"[0-9a-f]{16,}"$`).MatchString(etag))
	assert.Equal(t, "same ETag under another path", etag, do("GET", "/static/wsroom.js").Header().Get("ETag"))

	d := do("GET", "/static/v1/wsroom.d.ts")
	assert.Equal(t, "d.ts status", 200, d.Code)
	assert.Equal(t, "d.ts content type", "application/typescript; charset=utf-8", d.Header().Get("Content-Type"))
	assert.True(t, "d.ts body", bytes.Equal(d.Body.Bytes(), dts))
	assert.True(t, "ETags differ per file", d.Header().Get("ETag") != etag)

	for _, tc := range []struct {
		name, method, target string
		header               []string
		code                 int
		body                 bool
	}{
		{"revalidation hits", "GET", "/wsroom.js", []string{"If-None-Match", etag}, 304, false},
		{"one of several ETags", "GET", "/wsroom.js", []string{"If-None-Match", `"x", ` + etag}, 304, false},
		{"stale ETag", "GET", "/wsroom.js", []string{"If-None-Match", `"0000"`}, 200, true},
		{"HEAD", "HEAD", "/static/wsroom.js", nil, 200, false},
		{"range", "GET", "/static/wsroom.js", []string{"Range", "bytes=0-9"}, 206, true},
		{"other file", "GET", "/static/app.js", nil, 404, true},
		{"directory", "GET", "/static/", nil, 404, true},
		{"POST", "POST", "/static/wsroom.js", nil, 405, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := do(tc.method, tc.target, tc.header...)
			assert.Equal(t, "status", tc.code, rec.Code)
			assert.Equal(t, "has body", tc.body, rec.Body.Len() > 0)
			if tc.code == 405 {
				assert.Equal(t, "Allow", "GET, HEAD", rec.Header().Get("Allow"))
			}
			if tc.method == "HEAD" {
				assert.Equal(t, "HEAD length", strconv.Itoa(len(js)), rec.Header().Get("Content-Length"))
			}
		})
	}
}

// TestClientNode runs the client's own tests (wsroom.test.mjs: frame
// splitting, backoff, dedupe, the member set, reconnect and resume against
// a fake server) under Node, when Node is installed.
func TestClientNode(t *testing.T) {
	t.Parallel()
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed: install Node.js >= 20.11 to run the browser client's tests (client/wsroom.test.mjs)")
	}
	out, err := exec.Command(node, "--version").Output()
	assert.Success(t, err)
	if v := regexp.MustCompile(`^v(\d+)\.(\d+)`).FindSubmatch(out); v == nil || !atLeast(string(v[1]), string(v[2]), 20, 11) {
		t.Skipf("node %s is too old for the client's tests (mock timers with Date): need >= 20.11", bytes.TrimSpace(out))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "wsroom.test.mjs")
	cmd.Dir = "client"
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node --test: %v\n%s", err, res)
	}
	m := regexp.MustCompile(`(?m)^# pass (\d+)$`).FindSubmatch(res)
	if m == nil || string(m[1]) == "0" {
		t.Fatalf("node ran no test:\n%s", res)
	}
	t.Logf("node: %s tests passed", m[1])
}

func atLeast(major, minor string, wantMajor, wantMinor int) bool {
	ma, _ := strconv.Atoi(major)
	mi, _ := strconv.Atoi(minor)
	return ma > wantMajor || ma == wantMajor && mi >= wantMinor
}
