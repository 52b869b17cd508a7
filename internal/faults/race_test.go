//go:build race

package faults_test

// raceEnabled: the tests run under the race detector, and so does the
// example server they build.
const raceEnabled = true
