package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"wsroom.dev/internal/leakcheck"
	"wsroom.dev/internal/wstest"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

var listening = regexp.MustCompile(`what=(\w+) url=(http://\S+)`)

// start runs the program with args and returns the URLs it listens on, by
// what they serve, and a function that stops it as SIGINT would and
// returns run's error.
func start(t *testing.T, ctx context.Context, args ...string) (map[string]string, func() error) {
	t.Helper()
	runCtx, stop := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- run(runCtx, append([]string{"-addr", "127.0.0.1:0"}, args...), pw)
		pw.Close()
	}()
	urls := map[string]string{}
	want := 1
	if strings.Contains(strings.Join(args, " "), "-metrics-addr") {
		want = 2
	}
	logs := bufio.NewScanner(pr)
	for len(urls) < want && logs.Scan() {
		if m := listening.FindStringSubmatch(logs.Text()); m != nil {
			urls[m[1]] = m[2]
		}
	}
	if len(urls) < want {
		stop()
		t.Fatalf("listening lines: %v (run: %v)", urls, <-done)
	}
	go io.Copy(io.Discard, pr)
	return urls, func() error {
		stop()
		select {
		case err := <-done:
			return err
		case <-time.After(20 * time.Second):
			t.Fatal("run did not return within 20s of its context's end")
			return nil
		}
	}
}

// scrape returns the body of GET url and its status.
func scrape(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestMetrics runs the program, chats through it and scrapes /metrics.
func TestMetrics(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	urls, stop := start(t, ctx, "-room-sizes")
	ws := "ws" + strings.TrimPrefix(urls["chat"], "http")
	c, _ := wstest.Join(ctx, t, ws+"/chat/ops", "ann")
	c.Say(ctx, t, "hello")
	if e := c.Until(ctx, t, "message"); e.From != "ann" || e.Text != "hello" {
		t.Fatalf("ann got %+v, want her message", e)
	}

	status, body := scrape(t, urls["chat"]+"/metrics")
	if status != http.StatusOK {
		t.Fatalf("/metrics: %d\n%s", status, body)
	}
	for _, line := range []string{
		"wsroom_connections 1",
		"wsroom_members 1",
		`wsroom_room_members{room="ops"} 1`,
		"wsroom_received_messages_total 2",
		`wsroom_departures_total{reason="closed"} 0`,
		`wsroom_backend_call_duration_seconds_count{op="Append"} 1`,
		"# TYPE go_goroutines gauge",
		"# TYPE process_resident_memory_bytes gauge",
	} {
		if !strings.Contains(body, line+"\n") {
			t.Errorf("/metrics has no line %q", line)
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}

	c.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if _, body = scrape(t, urls["chat"]+"/metrics"); strings.Contains(body, `wsroom_departures_total{reason="closed"} 1`+"\n") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("ann's departure is not counted:\n%s", body)
		}
		time.Sleep(10 * time.Millisecond) // polling, bounded by the deadline
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}

// TestMetricsListener: with -metrics-addr, /metrics is served there and
// not on the chat's listener.
func TestMetricsListener(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	urls, stop := start(t, ctx, "-metrics-addr", "127.0.0.1:0")
	if status, _ := scrape(t, urls["chat"]+"/metrics"); status != http.StatusNotFound {
		t.Errorf("/metrics on the chat listener: %d, want 404", status)
	}
	if status, body := scrape(t, urls["metrics"]+"/metrics"); status != http.StatusOK || !strings.Contains(body, "wsroom_connections 0\n") {
		t.Errorf("/metrics on its own listener: %d\n%s", status, body)
	}
	if err := stop(); err != nil {
		t.Fatalf("run: %v", err)
	}
}
