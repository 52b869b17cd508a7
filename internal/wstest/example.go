package wstest

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"path"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
)

// Run is an example program's run function: it serves until ctx is done,
// logging to logs, where a line holds url=http://… once it listens.
type Run func(ctx context.Context, args []string, logs io.Writer) error

var listening = regexp.MustCompile(`url=(http://\S+)`)

// Start runs run with args in a goroutine and waits, until ctx is done,
// for the log line with the URL it listens on; the rest of the log is
// dropped. It returns that URL and stop, which cancels run's context, as
// SIGINT would, and returns run's error, or an error when run has not
// returned by the time ctx is done. stop may be called more than once; it
// is called when the test ends.
func Start(ctx context.Context, t testing.TB, run Run, args ...string) (url string, stop func() error) {
	t.Helper()
	runCtx, cancel := context.WithCancel(ctx)
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := run(runCtx, args, pw)
		pw.Close()
		done <- err
	}()
	stop = sync.OnceValue(func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			return fmt.Errorf("run has not returned: %w", ctx.Err())
		}
	})
	t.Cleanup(func() { stop() })

	// This goroutine reads the log until run returns and closes it.
	urls := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				urls <- m[1]
				io.Copy(io.Discard, pr)
				return
			}
		}
		close(urls)
		io.Copy(io.Discard, pr) // after a line too long to scan
	}()
	select {
	case url, ok := <-urls:
		if !ok {
			t.Fatalf("no listening line (run: %v)", stop())
		}
		return url, stop
	case <-ctx.Done():
		t.Fatalf("no listening line: %v", ctx.Err())
		return "", nil
	}
}

// Example is what CheckExample needs to know of an example program.
type Example struct {
	// Run is the program's run function.
	Run Run
	// Args are run's arguments after "-addr 127.0.0.1:0".
	Args []string
	// Pages maps the path of each of the program's ordinary routes to
	// what its GET response (a 200) must contain.
	Pages map[string]string
	// Chat is the path of a chat room; its last element is the room's
	// name.
	Chat string
	// Login, if not nil, is the request header with which alice is logged
	// in: the program's Identify hook names her and she joins at once.
	// With nil, she asks to join, as the others always do.
	Login http.Header
	// Echo is the path of the echo endpoint.
	Echo string
	// WithTwo, if not nil, is called while alice and bob are in the room,
	// with the program's http:// URL, to check more of it.
	WithTwo func(ctx context.Context, t testing.TB, url string)
}

// CheckExample starts the example program ex as `go run . -addr
// 127.0.0.1:0` would and uses it as people would, within 20 seconds:
//   - each of its Pages answers;
//   - alice and bob join the room at Chat, bob's welcome lists them both,
//     alice sees bob arrive, and what bob says reaches her;
//   - carol joins and leaves, and alice sees her arrive and leave;
//   - the endpoint at Echo sends a text and a binary message back;
//   - stopped as SIGINT would, run returns no error and every WebSocket
//     still open (alice's, bob's, the echo's) is closed with 1001.
func CheckExample(t testing.TB, ex Example) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	base, stop := Start(ctx, t, ex.Run, append([]string{"-addr", "127.0.0.1:0"}, ex.Args...)...)

	for p, want := range ex.Pages {
		if got := Get(ctx, t, base+p); !strings.Contains(got, want) {
			t.Fatalf("GET %s: %q, want %q in it", p, got, want)
		}
	}

	ws := "ws" + strings.TrimPrefix(base, "http")
	room := path.Base(ex.Chat)
	var alice *Client
	var w Event
	if ex.Login != nil {
		alice, _ = Dial(ctx, t, ws+ex.Chat, ex.Login)
		w = alice.Next(ctx, t)
	} else {
		alice, w = Join(ctx, t, ws+ex.Chat, "alice")
	}
	if w.Type != "welcome" || w.Name != "alice" || w.Room != room {
		t.Fatalf("alice got %+v, want a welcome to %s", w, room)
	}
	bob, w := Join(ctx, t, ws+ex.Chat, "bob")
	if got := strings.Join(w.Members, ","); got != "alice,bob" {
		t.Fatalf("bob's welcome lists %q, want alice,bob", got)
	}
	alice.Expect(ctx, t, "join", "bob")
	bob.Say(ctx, t, "hi")
	if e := alice.Expect(ctx, t, "message", "bob"); e.Text != "hi" {
		t.Fatalf("alice got %+v", e)
	}
	if ex.WithTwo != nil {
		ex.WithTwo(ctx, t, base)
	}
	carol, _ := Join(ctx, t, ws+ex.Chat, "carol")
	alice.Expect(ctx, t, "join", "carol")
	carol.Close()
	alice.Expect(ctx, t, "leave", "carol")

	echo := dialEcho(ctx, t, ws+ex.Echo, nil)
	echoes(ctx, t, echo)

	Closed(ctx, t, websocket.StatusGoingAway, func() {
		if err := stop(); err != nil {
			t.Fatalf("run: %v", err)
		}
	}, alice.Conn, bob.Conn, echo)
}
