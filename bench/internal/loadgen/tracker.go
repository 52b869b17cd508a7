package loadgen

import (
	"sync"
	"sync/atomic"
	"time"
)

// tracker follows what the members of one room know of each other while
// they join, to tell when the join traffic is complete.
//
// A member is "in" once it has its own join event (peers) or its welcome
// (wsroom). It learns of another member from an announcement (a join event
// or a presence "joined" entry) or from its welcome's member list. The
// brief's completion rule is: every member has been told of every member
// whose join completed after its own. The client cannot see the order in
// which the server completed the joins, but the welcome lists reveal it
// where they exist: a welcome of i that lists j, when j's arrival was not
// announced to i, says that j joined first (wsroom announces to a member
// every arrival after its own), so j must know i. A welcome that lists a
// member whose arrival was announced too says nothing of their order: it
// was read after that member joined, which a slow store allows (and the
// first page of members of a big room need not list the earlier one). So
// a pair of members (i, j) is complete when
//
//   - a welcome says who joined first, and that one knows the other (the
//     later one knows it from its welcome), or
//   - no welcome says it (peers send no member list, or the welcome lists
//     are not telling), and one of the two knows the other: that one
//     joined first.
//
// The room is complete when every member is in and every pair is complete.
// Each member's knowledge is a bitset written by that member's reader;
// pairs are checked as bits are set, with atomics, so completion is seen
// the moment the last bit arrives.
type tracker struct {
	n     int
	words int // words per member bitset
	ann   []atomic.Uint64
	wel   []atomic.Uint64
	in    []atomic.Uint64
	done  []atomic.Uint64 // one bit per pair, triangular
	nIn   atomic.Int64
	nDone atomic.Int64
	total int64 // pairs

	once     sync.Once
	complete func(at time.Time) // called once, from the goroutine completing it
}

func newTracker(n int, complete func(at time.Time)) *tracker {
	words := (n + 63) / 64
	total := int64(n) * int64(n-1) / 2
	t := &tracker{
		n:        n,
		words:    words,
		ann:      make([]atomic.Uint64, n*words),
		wel:      make([]atomic.Uint64, n*words),
		in:       make([]atomic.Uint64, words),
		done:     make([]atomic.Uint64, (total+63)/64),
		total:    total,
		complete: complete,
	}
	return t
}

// setBit sets bit j of member i's set and reports whether it was clear.
func (t *tracker) setBit(set []atomic.Uint64, i, j int) bool {
	w, bit := i*t.words+j/64, uint64(1)<<(j%64)
	return set[w].Or(bit)&bit == 0
}

func (t *tracker) bit(set []atomic.Uint64, i, j int) bool {
	return set[i*t.words+j/64].Load()&(uint64(1)<<(j%64)) != 0
}

// markIn records that member i is in.
func (t *tracker) markIn(i int) {
	if i < 0 || i >= t.n {
		return
	}
	if t.setBit(t.in, 0, i) && t.nIn.Add(1) == int64(t.n) {
		t.check()
	}
}

// isIn reports whether member i is in.
func (t *tracker) isIn(i int) bool { return t.bit(t.in, 0, i) }

// announced records that member i was told that member j joined.
func (t *tracker) announced(i, j int) {
	if t.announce(i, j) {
		t.addDone(1)
	}
}

// welcomed records that member i's welcome lists member j.
func (t *tracker) welcomed(i, j int) {
	if t.welcome(i, j) {
		t.addDone(1)
	}
}

// announce and welcome record what announced and welcomed do, and report
// whether the pair became complete; the caller adds those with addDone,
// once per event rather than once per pair.
func (t *tracker) announce(i, j int) bool {
	return i != j && j >= 0 && j < t.n && t.setBit(t.ann, i, j) && t.eval(i, j)
}

func (t *tracker) welcome(i, j int) bool {
	return i != j && j >= 0 && j < t.n && t.setBit(t.wel, i, j) && t.eval(i, j)
}

// addDone counts completed pairs.
func (t *tracker) addDone(n int) {
	if n > 0 && t.nDone.Add(int64(n)) == t.total {
		t.check()
	}
}

// eval reports whether the pair (i, j) just became complete.
func (t *tracker) eval(i, j int) bool {
	aij, aji := t.bit(t.ann, i, j), t.bit(t.ann, j, i)
	wij, wji := t.bit(t.wel, i, j), t.bit(t.wel, j, i)
	kij, kji := aij || wij, aji || wji
	jFirst, iFirst := wij && !aij, wji && !aji // told by a welcome
	complete := kij || kji
	if iFirst || jFirst {
		complete = (!iFirst || kij) && (!jFirst || kji)
	}
	if !complete {
		return false
	}
	if i > j {
		i, j = j, i
	}
	p := int64(i)*int64(t.n) - int64(i)*int64(i+1)/2 + int64(j-i-1)
	bit := uint64(1) << (p % 64)
	return t.done[p/64].Or(bit)&bit == 0
}

func (t *tracker) check() {
	if t.nIn.Load() == int64(t.n) && t.nDone.Load() == t.total {
		t.once.Do(func() { t.complete(time.Now()) })
	}
}

// missing returns how many members are not in and how many pairs are not
// complete.
func (t *tracker) missing() (members, pairs int64) {
	return int64(t.n) - t.nIn.Load(), t.total - t.nDone.Load()
}
