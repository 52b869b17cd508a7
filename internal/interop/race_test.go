//go:build race

package interop_test

// raceEnabled: the test binary runs under the race detector, and so does
// the chat server it builds.
const raceEnabled = true
