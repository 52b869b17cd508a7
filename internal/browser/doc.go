// Package browser holds wsroom's end-to-end tests in a real browser:
// headless Chromium driven by chromedp against examples/chat.
package browser
