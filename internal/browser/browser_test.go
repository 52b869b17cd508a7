package browser

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"wsroom.dev/internal/leakcheck"
)

func TestMain(m *testing.M) { leakcheck.Main(m) }

// env is what the browser tests share: one Chromium (each test opens its
// own tabs) and one build of examples/chat (each test runs its own
// servers).
type env struct {
	browser context.Context
	bin     string
}

// TestBrowser runs the end-to-end tests in headless Chromium, two at a
// time (-parallel), each against its own examples/chat server(s):
//
//	go test ./... -run 'Browser/Echo'
func TestBrowser(t *testing.T) {
	start := time.Now()
	exe := chromium(t)
	e := &env{bin: buildChat(t)}
	e.browser = newBrowser(t, exe)
	t.Logf("chromium and examples/chat ready in %v", time.Since(start).Round(time.Millisecond))
	for _, tc := range []struct {
		name string
		run  func(*testing.T, *env)
	}{
		{"TwoTabsChat", testTwoTabsChat},
		{"OlderMessages", testOlderMessages},
		{"NameTaken", testNameTaken},
		{"BigRoomMembers", testBigRoomMembers},
		{"EchoCanvas", testEchoCanvas},
		{"EchoLargeBinary", testEchoLargeBinary},
		{"OriginalPage", testOriginalPage},
		{"XSSChatPage", testXSSChatPage},
		{"XSSOriginalPage", testXSSOriginalPage},
		{"ReconnectResume", testReconnectResume},
		{"ServerRestart", testServerRestart},
		{"FallbackProxy", testFallbackProxy},
		{"FallbackNginx", testFallbackNginx},
		{"FallbackBuffered", testFallbackBuffered},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.run(t, e)
		})
	}
}

// tab opens a tab in the shared browser, closed at the end of the test.
func (e *env) tab(t *testing.T) context.Context {
	t.Helper()
	return newTab(t, e.browser)
}

// step bounds each browser action: generous, for a loaded 2-core machine
// under -race.
const step = 30 * time.Second

// chromium finds the browser: $WSROOM_CHROMIUM, else Debian's chromium
// on the PATH. Never a download. Without one the test skips, or fails
// when WSROOM_REQUIRE_BROWSER=1.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("WSROOM_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("WSROOM_REQUIRE_BROWSER") == "1" {
		t.Fatal("chromium not found and WSROOM_REQUIRE_BROWSER=1: apt-get install -y chromium (or set WSROOM_CHROMIUM)")
	}
	t.Skip("chromium not found: apt-get install -y chromium (or set WSROOM_CHROMIUM) to run the browser tests")
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and returns
// the context of its first tab. The browser ends with the test.
func newBrowser(t *testing.T, exe string) context.Context {
	t.Helper()
	profile := t.TempDir()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(1100, 720),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-proxy-server", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-features", "Translate,MediaRouter,OptimizationHints"),
		// Several tabs chat at once: none of them may be throttled.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("use-mock-keychain", true),
		chromedp.Flag("lang", "en-US"),
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	if err := chromedp.Do(ctx); err != nil { // starts the browser, opens the tab
		t.Fatalf("starting %s: %v", exe, err)
	}
	return ctx
}

// newTab opens another tab in the browser of ctx.
func newTab(t *testing.T, browser context.Context) context.Context {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("new tab: %v", err)
	}
	return ctx
}

// do runs actions in a tab, each step bounded.
func do(t *testing.T, tab context.Context, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, step)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("browser: %v", err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) in a tab.
func eval[T any](t *testing.T, tab context.Context, expr string) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, step)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitJS waits until a JavaScript expression is truthy, and says what it
// waited for when it never is.
func waitJS(t *testing.T, tab context.Context, what, expr string) {
	t.Helper()
	waitJSFor(t, tab, step, what, expr)
}

func waitJSFor(t *testing.T, tab context.Context, d time.Duration, what, expr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, d+5*time.Second)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingInterval(25*time.Millisecond), chromedp.WithPollingTimeout(d)))
	if err != nil {
		state, _ := chromedp.Run(context.WithoutCancel(tab), chromedp.Evaluate[string](`document.body ? document.body.innerText.slice(0, 2000) : ""`))
		t.Fatalf("waiting for %s (%s): %v\npage text:\n%s", what, expr, err, state)
	}
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x2028 || r == 0x2029:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// screenshotDir is where screenshots go: $WSROOM_SCREENSHOTS ("1": the
// repository's docs/screenshots), or "" for none.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("WSROOM_SCREENSHOTS")
	if dir == "1" {
		dir = filepath.Join(repoRoot(t), "docs", "screenshots")
	}
	return dir
}

// capture takes a full-page PNG of a tab.
func capture(t *testing.T, tab context.Context) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(tab, step)
	defer cancel()
	b, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	return b
}

// screenshot writes a full-page PNG of the tab to the screenshot
// directory, when there is one.
func screenshot(t *testing.T, tab context.Context, name string) {
	t.Helper()
	if dir := screenshotDir(t); dir != "" {
		writeScreenshot(t, dir, name, capture(t, tab))
	}
}

// screenshotSideBySide writes the tabs' pages next to each other in one
// PNG, when there is a screenshot directory.
func screenshotSideBySide(t *testing.T, name string, tabs ...context.Context) {
	t.Helper()
	dir := screenshotDir(t)
	if dir == "" {
		return
	}
	const gap = 12
	var shots []image.Image
	w, h := gap, 0
	for _, tab := range tabs {
		img, err := png.Decode(bytes.NewReader(capture(t, tab)))
		if err != nil {
			t.Fatal(err)
		}
		shots = append(shots, img)
		w += img.Bounds().Dx() + gap
		h = max(h, img.Bounds().Dy())
	}
	out := image.NewRGBA(image.Rect(0, 0, w, h+2*gap))
	draw.Draw(out, out.Bounds(), image.NewUniform(color.RGBA{0x9a, 0xa4, 0xb5, 0xff}), image.Point{}, draw.Src)
	x := gap
	for _, img := range shots {
		draw.Draw(out, img.Bounds().Add(image.Pt(x, gap)), img, img.Bounds().Min, draw.Src)
		x += img.Bounds().Dx() + gap
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, out); err != nil {
		t.Fatal(err)
	}
	writeScreenshot(t, dir, name, buf.Bytes())
}

func writeScreenshot(t *testing.T, dir, name string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", filepath.Join(dir, name), len(b))
}

// phone makes the tab's viewport a phone's, portrait.
func phone(t *testing.T, tab context.Context) {
	t.Helper()
	do(t, tab, chromedp.EmulateViewport(390, 760, chromedp.EmulateMobile, chromedp.EmulatePortrait))
}

// dialogs records the JavaScript dialogs (alert, confirm, prompt) a tab
// opens, and dismisses them so that the page goes on.
type dialogs struct {
	mu   sync.Mutex
	msgs []string
}

func watchDialogs(t *testing.T, tab context.Context) *dialogs {
	t.Helper()
	d := &dialogs{}
	ctx, cancel := context.WithCancel(tab)
	events := chromedp.Events(ctx, page.JavascriptDialogOpening)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev, err := range events {
			if err != nil {
				return
			}
			d.mu.Lock()
			d.msgs = append(d.msgs, ev.Message)
			d.mu.Unlock()
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false}); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return d
}

func (d *dialogs) seen() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.msgs...)
}

// repoRoot is the root of the wsroom repository, two levels up.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "examples", "chat", "main.go")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}
