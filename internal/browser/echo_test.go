package browser

import (
	"bytes"
	"context"
	"encoding/base64"
	"image"
	"image/color"
	"image/png"
	"math"
	"testing"

	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/chromedp"
)

// blobBase64 reads a Blob of the page as base64.
const blobBase64 = `(async (b) => {
	const a = new Uint8Array(await b.arrayBuffer());
	let s = "";
	for (let i = 0; i < a.length; i += 0x8000) s += String.fromCharCode(...a.subarray(i, i + 0x8000));
	return btoa(s);
})`

func openEcho(t *testing.T, tab context.Context, base string) {
	t.Helper()
	do(t, tab, chromedp.Navigate(base+"/echo.html"))
	waitJS(t, tab, "the echo page to connect", `document.getElementById("status").dataset.state === "open"`)
}

// echoedImage sends the canvas as it is and returns the bytes sent and the
// bytes that came back.
func echoedImage(t *testing.T, tab context.Context) (sent, got []byte) {
	t.Helper()
	do(t, tab, chromedp.Click(chromedp.ID("sendimg")))
	waitJS(t, tab, "the image to come back (or the connection to end)",
		`document.getElementById("imgout").dataset.same !== undefined || document.getElementById("status").dataset.state === "closed"`)
	if state := eval[string](t, tab, `document.getElementById("status").dataset.state`); state != "open" {
		t.Fatalf("the echo connection ended: %s", eval[string](t, tab, `document.getElementById("detail").textContent`))
	}
	for _, s := range []struct {
		blob string
		out  *[]byte
	}{{"sent", &sent}, {"received", &got}} {
		b64 := eval[string](t, tab, blobBase64+`(window.echoState.`+s.blob+`)`)
		b, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		*s.out = b
	}
	return sent, got
}

// testEchoCanvas draws on the echo page's canvas with the mouse, sends the
// drawing as one binary message (a PNG Blob) and checks that what comes
// back is the same image, byte for byte; and echoes a text.
func testEchoCanvas(t *testing.T, e *env) {
	srv := e.startChat(t)
	tab := e.tab(t)
	openEcho(t, tab, srv.URL())

	do(t, tab, chromedp.SetValue(chromedp.ID("text"), "spiral"), chromedp.Click(chromedp.ID("sendtext")))
	waitJS(t, tab, "the text to come back", `document.getElementById("textout").textContent === "spiral"`)

	// Draw a spiral with the mouse: press, move, release.
	box := eval[[]float64](t, tab, `(() => { const r = document.getElementById("pad").getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; })()`)
	cx, cy := box[0]+box[2]/2, box[1]+box[3]/2
	at := func(i int) (float64, float64) {
		a := float64(i) * 0.25
		r := 3 + float64(i)*1.1
		return cx + r*math.Cos(a), cy + r*math.Sin(a)
	}
	x, y := at(0)
	steps := []chromedp.Action[chromedp.Void]{chromedp.MouseEvent(chromedp.MousePressed, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1))}
	for i := 1; i <= 70; i++ {
		x, y = at(i)
		steps = append(steps, chromedp.MouseEvent(chromedp.MouseMoved, x, y, chromedp.ButtonLeft, leftHeld))
	}
	steps = append(steps, chromedp.MouseEvent(chromedp.MouseReleased, x, y, chromedp.ButtonLeft, chromedp.ClickCount(1)))
	do(t, tab, steps...)

	sent, got := echoedImage(t, tab)
	if !bytes.Equal(sent, got) {
		t.Fatalf("the echoed image differs: sent %d bytes, got %d", len(sent), len(got))
	}
	img, err := png.Decode(bytes.NewReader(got))
	if err != nil {
		t.Fatalf("the echoed image is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 480 || b.Dy() != 280 {
		t.Fatalf("image size %v, want 480×280", b.Size())
	}
	if n := inked(img); n < 500 {
		t.Fatalf("only %d pixels drawn: the mouse did not draw", n)
	}
	if got := eval[string](t, tab, `document.getElementById("imgout").dataset.same`); got != "true" {
		t.Fatalf("the page says the image is not identical: %q", got)
	}
	t.Logf("canvas PNG of %d bytes echoed byte for byte", len(got))
	screenshot(t, tab, "echo.png")
}

// testEchoLargeBinary sends a canvas of noise (a PNG of about 400 KB) to
// the echo endpoint with the example's default limits: binary messages up
// to MaxBinaryBytes (1 MiB by default) must come back.
func testEchoLargeBinary(t *testing.T, e *env) {
	srv := e.startChat(t)
	tab := e.tab(t)
	openEcho(t, tab, srv.URL())
	do(t, tab, chromedp.Click(chromedp.ID("noise")))
	sent, got := echoedImage(t, tab)
	if len(sent) < 64<<10 || len(sent) > 1<<20 {
		t.Fatalf("the noise PNG is %d bytes: want between 64 KiB and 1 MiB", len(sent))
	}
	if !bytes.Equal(sent, got) {
		t.Fatalf("the echoed image differs: sent %d bytes, got %d", len(sent), len(got))
	}
	t.Logf("noise PNG of %d bytes echoed byte for byte", len(got))
}

// leftHeld marks a mouse move as a drag: the left button is down.
func leftHeld(p *input.DispatchMouseEventParams) { p.Buttons = 1 }

// inked counts the pixels that are not white.
func inked(img image.Image) int {
	n := 0
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if c := color.RGBAModel.Convert(img.At(x, y)).(color.RGBA); c.R < 200 || c.G < 200 {
				n++
			}
		}
	}
	return n
}
