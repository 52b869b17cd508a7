package wsroomgin_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gin-gonic/gin"

	wsroomgin "wsroom.dev/adapters/gin"
	"wsroom.dev/wsroom"
)

// TestFallbackThroughGin: ChatRoutes serves the HTTP fallback too: the
// event stream (GET) and its frames (POST) reach the Server through gin.
func TestFallbackThroughGin(t *testing.T) {
	gin.SetMode(gin.TestMode)
	rooms, err := wsroom.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	r := gin.New()
	wsroomgin.ChatRoutes(r, "/ws/chat/:room", rooms)
	ts := httptest.NewServer(r)
	defer ts.Close()
	defer rooms.Shutdown(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL+"/ws/chat/blue", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream: status %d", resp.StatusCode)
	}
	events := bufio.NewScanner(resp.Body)
	data := func(want string) string {
		t.Helper()
		for events.Scan() {
			if line, ok := strings.CutPrefix(events.Text(), "data: "); ok && strings.Contains(line, want) {
				return line
			}
		}
		t.Fatalf("no %q in the stream: %v", want, events.Err())
		return ""
	}
	var hello struct{ Token, Post string }
	if err := json.Unmarshal([]byte(data(`"token"`)), &hello); err != nil {
		t.Fatal(err)
	}
	post, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+"/ws/chat/blue", strings.NewReader(`{"type":"join","name":"ann"}`))
	post.Header.Set(wsroom.TokenHeader, hello.Token)
	post.Header.Set("Content-Type", "application/json")
	pr, err := http.DefaultClient.Do(post)
	if err != nil {
		t.Fatal(err)
	}
	pr.Body.Close()
	if pr.StatusCode != http.StatusAccepted {
		t.Fatalf("POST through gin: status %d", pr.StatusCode)
	}
	if w := data(`"welcome"`); !strings.Contains(w, `"room":"blue"`) {
		t.Fatalf("welcome: %s", w)
	}
}
