// Package wstest holds what the tests of wsroom, of its router adapters and
// of its example programs share: a client of the JSON protocol (Dial,
// DialAs, Join and the Client's Next, Expect, Until and Say), checks of a
// chat, of an echo endpoint and of close codes, Lines for waiting on a log
// line, and CheckExample, which runs an example program and uses it as a
// person would.
//
// It imports only the standard library, coder/websocket and wsroom, so
// that every module of the repository may use it: Go's internal rule goes
// by import path, and each nested module replaces wsroom.dev with the root.
// Router-specific helpers (an auth middleware, a route's parameters) stay
// in the module of their router.
//
// Every wait is bounded by the context the test passes in; a helper that
// fails calls t.Fatal, so call it from the test's own goroutine.
package wstest
