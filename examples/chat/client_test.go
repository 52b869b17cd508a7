package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// TestClientPages serves the pages and the browser client, and checks that
// everything a page loads is served, with the right type.
func TestClientPages(t *testing.T) {
	t.Parallel()
	c, err := parseFlags(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	h, rooms, err := newHandler(c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer rooms.Shutdown(context.Background())
	get := func(method, path string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
		return rec
	}

	types := map[string]string{
		"/":                             "text/html; charset=utf-8",
		"/echo.html":                    "text/html; charset=utf-8",
		"/original.html":                "text/html; charset=utf-8",
		"/wsroom.js":                    "text/javascript; charset=utf-8",
		"/wsroom.d.ts":                  "application/typescript; charset=utf-8",
		"/vendor/jquery/LICENSE.txt":    "text/plain; charset=utf-8",
		"/vendor/jquery/jquery.min.js":  "text/javascript; charset=utf-8",
		"/vendor/jquery/VERSION":        "text/plain; charset=utf-8",
		"/style.css":                    "text/css; charset=utf-8",
		"/chat.js":                      "text/javascript; charset=utf-8",
		"/echo.js":                      "text/javascript; charset=utf-8",
		"/original.html?a=b":            "text/html; charset=utf-8",
		"/vendor/jquery/jquery.min.js?": "text/javascript; charset=utf-8",
	}
	bodies := map[string]string{}
	for path, want := range types {
		rec := get("GET", path)
		if rec.Code != 200 {
			t.Fatalf("GET %s: %d", path, rec.Code)
		}
		if got := rec.Header().Get("Content-Type"); got != want {
			t.Errorf("GET %s: Content-Type %q, want %q", path, got, want)
		}
		bodies[path] = rec.Body.String()
	}

	// Every local script, stylesheet and module a page or script loads is
	// served.
	ref := regexp.MustCompile(`(?:src|href)="([^"#:]+)"|from "(/[^"]+)"`)
	for _, page := range []string{"/", "/echo.html", "/original.html", "/chat.js", "/echo.js"} {
		for _, m := range ref.FindAllStringSubmatch(bodies[page], -1) {
			p := m[1] + m[2]
			if !strings.HasPrefix(p, "/") {
				p = "/" + p
			}
			if rec := get("GET", p); rec.Code != 200 {
				t.Errorf("%s loads %s: %d", page, p, rec.Code)
			}
		}
	}

	if !strings.Contains(bodies["/"], `"/chat.js"`) || !strings.Contains(bodies["/chat.js"], `from "/wsroom.js"`) {
		t.Error("the chat page does not use /wsroom.js")
	}
	orig := bodies["/original.html"]
	if strings.ContainsAny(orig, "\u2018\u2019") {
		t.Error("the original page still has curly quotes")
	}
	if !strings.Contains(orig, `document.getElementById("Connection").value = location.host + "/chat";`) || strings.Contains(orig, `value = "192.168.1.108`) {
		t.Error("the original page does not point at this server's /chat")
	}
	if !strings.HasPrefix(bodies["/vendor/jquery/jquery.min.js"], "/*! jQuery v4.0.0 ") || !strings.HasPrefix(bodies["/vendor/jquery/VERSION"], "jquery 4.0.0 ") {
		t.Error("the vendored jQuery and its VERSION disagree")
	}
	for _, path := range []string{"/nope.html", "/static/index.html", "/client/wsroom.test.mjs"} {
		if rec := get("GET", path); rec.Code != 404 {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
	if rec := get("POST", "/original.html"); rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST /original.html: %d", rec.Code)
	}
}
