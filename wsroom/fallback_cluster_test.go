package wsroom_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
)

// TestFallbackAcrossServers: two servers share a store and a broker, with
// no sticky sessions: a stream held by one takes POSTs sent alternately to
// either, in order; a token is refused on either server once its stream
// ended; and a token naming a server that does not answer gets 503.
func TestFallbackAcrossServers(t *testing.T) {
	t.Parallel()
	store, broker := wsroom.NewMemoryStore(nil), wsroom.NewMemoryBroker()
	opts := func() *wsroom.Options {
		return &wsroom.Options{Store: store, Broker: broker, RateLimit: -1, MaxBinaryBytes: 64, BackendTimeout: 300 * time.Millisecond}
	}
	one, two := newEnv(t, opts()), newEnv(t, opts())
	ws, _ := two.join("x", "socket") // on the other server

	c := one.stream("/chat/x")
	bases := []string{one.ts.URL, two.ts.URL}
	join := `{"type":"join","name":"streamer"}`
	assert.Equal(t, "join through the other server", http.StatusAccepted, c.postTo(two.ts.URL, "", []byte(join), nil))
	c.expect("welcome")
	assert.Equal(t, "arrival on the other server", "streamer", ws.expect("join").Name)
	const n = 20
	for i := range n {
		body := fmt.Sprintf(`{"type":"message","text":"m%d"}`, i)
		// A 202 says the stream took the frames, not that it ran them: a
		// client that outruns its stream gets 429 and tries again after
		// a while, as wsroom.js does.
		st := c.postTo(bases[i%2], "text/plain", []byte(body), nil)
		for tries := 0; st == http.StatusTooManyRequests && tries < 100; tries++ {
			select {
			case <-time.After(20 * time.Millisecond):
			case <-t.Context().Done():
			}
			st = c.postTo(bases[i%2], "text/plain", []byte(body), nil)
		}
		if st != http.StatusAccepted {
			t.Fatalf("POST %d to server %d: %d", i, i%2, st)
		}
	}
	for i := range n {
		m := ws.expect("message")
		assert.Equal(t, "in order", fmt.Sprint("m", i), m.Text)
		assert.Equal(t, "from", "streamer", m.From)
	}
	// Binary through the other server.
	assert.Equal(t, "binary", http.StatusAccepted, c.postTo(two.ts.URL, "application/octet-stream", []byte{9, 8, 7}, nil))
	c.say("marker")
	for ws.until("message").Text != "marker" {
	}
	assert.Equal(t, "relayed", true, len(ws.bins) == 1 && string(ws.bins[0]) == "\x09\x08\x07")

	// Errors cross servers too: the stream's queue and its member decide.
	c.postTo(two.ts.URL, "text/plain", []byte(`{"type":"nonsense"}`), nil)
	assert.Equal(t, "error event", wsroom.CodeBadRequest, c.until("error").Code)

	// Unknown tokens, on either server.
	path := "/chat/x"
	forgedHere := c.hello.Token[:len(c.hello.Token)-3] + "AAA"
	assert.Equal(t, "forged, forwarded", http.StatusNotFound, rawPost(t, two.ts.URL+path, forgedHere, "", "{}", nil))
	noServer := strings.Repeat("A", 26) + "." + strings.Repeat("B", 26)
	start := time.Now()
	assert.Equal(t, "a server nobody runs", http.StatusServiceUnavailable, rawPost(t, two.ts.URL+path, noServer, "", "{}", nil))
	assert.True(t, "within BackendTimeout", time.Since(start) < 3*time.Second)

	// Too big, through the other server: 413, and the stream closes with
	// 1009.
	assert.Equal(t, "too big", http.StatusRequestEntityTooLarge, c.postTo(two.ts.URL, "application/octet-stream", make([]byte, 65), nil))
	code, _ := c.closed()
	assert.Equal(t, "close", 1009, code)
	assert.Equal(t, "departure", "streamer", ws.until("leave").Name)
	for _, base := range bases {
		assert.Equal(t, "expired on "+base, http.StatusNotFound, rawPost(t, base+path, c.hello.Token, "", "{}", nil))
	}
}

// TestFallbackThousandMembers: 1,000 fallback members in one room receive
// a burst of broadcasts, every one of them every message, in order, none
// dropped.
func TestFallbackThousandMembers(t *testing.T) {
	if testing.Short() {
		t.Skip("1,000 streams")
	}
	// Not parallel: it runs alone, before the parallel tests, so that its
	// load does not starve them (nor they it).
	const members = 1000
	burst := 100
	if raceEnabled {
		burst = 20
	}
	e := newEnv(t, &wsroom.Options{MaxConnectionsPerIP: -1, RateLimit: -1})
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer hc.CloseIdleConnections()

	readers := make([]*streamCounter, members)
	var cancels []context.CancelFunc
	var mu sync.Mutex
	defer func() {
		for _, cancel := range cancels {
			cancel()
		}
		for _, r := range readers {
			if r != nil {
				<-r.done
			}
		}
	}()
	start := time.Now()
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	errs := make(chan error, members)
	for i := range members {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithCancel(context.Background())
			mu.Lock()
			cancels = append(cancels, cancel)
			mu.Unlock()
			req, _ := http.NewRequestWithContext(ctx, http.MethodGet, e.ts.URL+"/chat/big", nil)
			req.Header.Set("Accept", "text/event-stream")
			resp, err := hc.Do(req)
			if err != nil {
				errs <- err
				return
			}
			br := bufio.NewReader(resp.Body)
			var token string
			for token == "" {
				line, err := br.ReadString('\n')
				if err != nil {
					errs <- err
					return
				}
				if rest, ok := strings.CutPrefix(line, `data: {"token":"`); ok {
					token, _, _ = strings.Cut(rest, `"`)
				}
			}
			r := &streamCounter{welcome: make(chan struct{}), done: make(chan struct{})}
			mu.Lock()
			readers[i] = r
			mu.Unlock()
			go func() {
				defer close(r.done)
				defer resp.Body.Close()
				welcomed := false
				for {
					line, err := br.ReadString('\n')
					if err != nil {
						return
					}
					switch {
					case !welcomed && strings.HasPrefix(line, `data: {"type":"welcome"`):
						welcomed = true
						close(r.welcome)
					case strings.HasPrefix(line, "id: ") && welcomed:
						id, _ := strconv.ParseUint(strings.TrimSpace(line[4:]), 10, 64)
						if id <= r.last {
							r.bad.CompareAndSwap(nil, fmt.Sprintf("id %d after %d", id, r.last))
						}
						r.last = id
						r.got.Add(1)
					}
				}
			}()
			st, err := rawPostWith(hc, e.ts.URL+"/chat/big", token, fmt.Sprintf(`{"type":"join","name":"m%04d"}`, i))
			if err != nil || st != http.StatusAccepted {
				errs <- fmt.Errorf("join %d: %d %v", i, st, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for _, r := range readers {
		select {
		case <-r.welcome:
		case <-time.After(6 * testTimeout):
			t.Fatal("a member was never welcomed")
		}
	}
	t.Logf("%d streams joined in %v", members, time.Since(start).Round(time.Millisecond))
	assert.Equal(t, "members", int64(members), e.srv.Stats().Members)

	start = time.Now()
	room := e.srv.Room("big")
	for i := range burst {
		_, err := room.Broadcast(context.Background(), wsroom.Message{Text: fmt.Sprint("burst ", i)})
		assert.Success(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 6*testTimeout)
	defer cancel()
	for !delivered(readers, burst) {
		select {
		case <-ctx.Done():
			t.Fatalf("not every delivery within %v", 6*testTimeout)
		case <-time.After(5 * time.Millisecond):
		}
	}
	for i, r := range readers {
		assert.Equal(t, fmt.Sprint("member ", i, " messages"), int64(burst), r.got.Load())
		if bad := r.bad.Load(); bad != nil {
			t.Fatalf("member %d: %s", i, bad)
		}
	}
	t.Logf("%d deliveries in %v", members*burst, time.Since(start).Round(time.Millisecond))
	st := e.srv.Stats()
	assert.Equal(t, "none dropped", int64(0), st.Slow)
	assert.Equal(t, "all still in", int64(members), st.Members)
}

// rawPostWith POSTs one text body with a token through hc, bounded
// generously: the load test runs beside others on a small machine.
func rawPostWith(hc *http.Client, url, token, body string) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*testTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set(wsroom.TokenHeader, token)
	resp, err := hc.Do(req)
	if err != nil {
		return 0, err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// streamCounter counts the message events of a stream after its welcome.
type streamCounter struct {
	got     atomic.Int64  // message events after the welcome
	last    uint64        // the last message ID, for the reader only
	bad     atomic.Value  // a message out of order: string
	welcome chan struct{} // closed at the welcome
	done    chan struct{} // closed when the reader returns
}

// delivered reports whether every counter has n messages.
func delivered(cs []*streamCounter, n int) bool {
	for _, c := range cs {
		if c.got.Load() < int64(n) {
			return false
		}
	}
	return true
}
