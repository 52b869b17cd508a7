// Package bench is wsroom's benchmark suite: peer servers and a load
// generator in a module of their own, so that wsroom's users never download
// the peers.
package bench
