//go:build race

package cluster

// raceEnabled: the servers are built with the race detector too.
const raceEnabled = true
