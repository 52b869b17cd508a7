//go:build !race

package wsroom_test

// raceEnabled: the race detector slows everything down several times.
const raceEnabled = false
