package wsroom

import "sync"

// event is one server-to-client event, encoded once and shared, read-only,
// by every member it is queued for.
type event struct {
	json   []byte   // one JSON object, for JSON members; nil: not for them
	plain  [][]byte // text frames for plain members; nil: nothing for them
	binary []byte   // a binary frame, for every member
	id     uint64   // the ID of a message event, else 0
}

// forClient reports whether e has something for a client of the
// plain-text protocol, or, when plain is false, for a JSON client.
func (e *event) forClient(plain bool) bool {
	if e.binary != nil {
		return true
	}
	if plain {
		return e.plain != nil
	}
	return e.json != nil
}

// size is the bytes e holds for one kind of client.
func (e *event) size(plain bool) int64 {
	if e.binary != nil {
		return int64(len(e.binary))
	}
	if !plain {
		return int64(len(e.json))
	}
	var n int
	for _, l := range e.plain {
		n += len(l)
	}
	return int64(n)
}

// maxBatch bounds the size of a frame that batches queued JSON events.
const maxBatch = 64 << 10

// batchWriter is the transport under an outbox.
type batchWriter interface {
	// writeBatch writes the events, in order. It runs on the outbox's
	// writing goroutine only.
	writeBatch(batch []*event) error
	// overflowed is told, once per overflow, that the queue passed its
	// bound: the client is too slow.
	overflowed()
	// writeFailed is told that a write failed; nothing more is written.
	writeFailed(err error)
}

// directWriter is the optional capability of a batchWriter that can write
// one event on the caller's goroutine (outbox.sendDirect).
type directWriter interface {
	// tryEvent writes e at once if the connection takes it without
	// blocking; sent reports that it is on its way, tail that the rest of
	// its frame waits for flushTail.
	tryEvent(e *event) (sent, tail bool, err error)
	// flushTail writes what tryEvent left, blocking within the write
	// timeout. It runs on the outbox's writing goroutine only.
	flushTail() error
}

// outbox is a client's bounded queue of events and the goroutine that
// writes them. The goroutine exists only while something is queued: it
// takes everything queued at once (a JSON client receives it batched in one
// frame) and exits when the queue is empty. The queue is bounded in events
// and in bytes, counting what is being written; a client that lets it
// overflow is too slow, and its transport closes it. enqueue never blocks.
//
// While a member joins, its outbox holds: events are queued but not
// written until release puts the welcome first.
type outbox struct {
	w         batchWriter
	d         directWriter // w, if it can write directly; else nil
	plain     bool
	maxEvents int    // <= 0: unbounded
	maxBytes  int64  // <= 0: unbounded
	loop      func() // writeLoop, bound once

	mu       sync.Mutex
	queue    *[]*event
	qbytes   int64 // bytes queued
	inflight int64 // bytes being written
	writing  bool  // the writing goroutine runs
	hold     bool  // joining: queue but do not write
	holdAt   int   // queue length when the hold began
	closing  bool  // accept no more events
	abort    bool  // drop queued events instead of writing them
	tail     bool  // a frame sent directly waits for its rest to be written
	behind   bool  // past a quarter of a bound, not yet back under an eighth
	watch    func(behind bool)
	wg       sync.WaitGroup
}

// Watermarks of the flow control: a client is behind once its queue holds
// more than a quarter of a bound, and caught up once it is back under an
// eighth. A room where most members are behind slows its publishers
// (hub.throttle) long before anyone reaches the bound.
const (
	behindAt   = 4 // a quarter
	caughtUpAt = 8 // an eighth
)

// past reports whether the queue holds more than 1/div of a bound. Called
// with o.mu held.
func (o *outbox) past(div int64) bool {
	n := int64(0)
	if o.queue != nil {
		n = int64(len(*o.queue))
	}
	return o.maxEvents > 0 && n*div > int64(o.maxEvents) ||
		o.maxBytes > 0 && (o.qbytes+o.inflight)*div > o.maxBytes
}

// setWatch sets the function told when the client falls behind and when it
// catches up; with nil, a client that was behind counts as caught up.
func (o *outbox) setWatch(f func(behind bool)) {
	o.mu.Lock()
	old, was := o.watch, o.behind
	o.watch = f
	if f == nil {
		o.behind = false
	}
	o.mu.Unlock()
	if f == nil && was && old != nil {
		old(false)
	}
}

func (o *outbox) init(w batchWriter, plain bool, maxEvents int, maxBytes int64) {
	o.w, o.plain, o.maxEvents, o.maxBytes = w, plain, maxEvents, maxBytes
	o.d, _ = w.(directWriter)
	o.loop = o.writeLoop // one allocation here, none per write burst
}

// enqueue queues e and starts the writer if none runs.
func (o *outbox) enqueue(e *event) {
	if !e.forClient(o.plain) {
		return
	}
	size := e.size(o.plain)
	o.mu.Lock()
	if o.closing || o.abort {
		o.mu.Unlock()
		return
	}
	if o.queue == nil {
		o.queue = getQueue()
	}
	n := len(*o.queue)
	if o.maxEvents > 0 && n >= o.maxEvents ||
		o.maxBytes > 0 && o.qbytes+o.inflight+size > o.maxBytes && (n > 0 || o.inflight > 0) {
		o.abort = true
		o.mu.Unlock()
		o.w.overflowed()
		return
	}
	*o.queue = append(*o.queue, e)
	o.qbytes += size
	o.startLocked()
	var tell func(bool)
	if !o.behind && o.watch != nil && o.past(behindAt) {
		o.behind, tell = true, o.watch
	}
	o.mu.Unlock()
	if tell != nil {
		tell(true)
	}
}

func (o *outbox) startLocked() {
	if o.writing || o.hold || o.abort || !o.tail && (o.queue == nil || len(*o.queue) == 0) {
		return
	}
	o.writing = true
	o.wg.Add(1)
	go o.loop()
}

// sendDirect writes e on the caller's goroutine when the client has
// nothing queued and its connection takes the frame at once: in a small
// room this saves a goroutine's start and hand-off per delivery, for one
// non-blocking system call. Otherwise e is queued as enqueue queues it, so
// the bounds and the slow-client policy hold the same.
func (o *outbox) sendDirect(e *event) {
	if !e.forClient(o.plain) {
		return
	}
	o.mu.Lock()
	if o.d == nil || o.writing || o.hold || o.closing || o.abort || o.tail || o.queue != nil && len(*o.queue) > 0 {
		o.mu.Unlock()
		o.enqueue(e)
		return
	}
	o.writing = true // what arrives meanwhile queues behind e
	o.wg.Add(1)      // close waits for this attempt as for a writer
	defer o.wg.Done()
	o.mu.Unlock()
	sent, tail, err := o.d.tryEvent(e)
	o.mu.Lock()
	o.writing = false
	if err != nil {
		o.abort = true
		o.mu.Unlock()
		o.w.writeFailed(err)
		return
	}
	if !sent {
		// First in line: what arrived meanwhile came after it.
		if o.queue == nil {
			o.queue = getQueue()
		}
		*o.queue = append(*o.queue, nil)
		copy((*o.queue)[1:], *o.queue)
		(*o.queue)[0] = e
		o.qbytes += e.size(o.plain)
	}
	o.tail = tail
	o.startLocked()
	o.mu.Unlock()
}

// writeLoop writes queued events until the queue is empty, then exits.
func (o *outbox) writeLoop() {
	defer o.wg.Done()
	o.mu.Lock()
	for {
		o.inflight = 0
		if o.tail && !o.abort {
			o.tail = false
			o.mu.Unlock()
			err := o.d.flushTail()
			o.mu.Lock()
			if err != nil {
				o.abort = true
				o.mu.Unlock()
				o.w.writeFailed(err)
				o.mu.Lock()
			}
			continue
		}
		q := o.queue
		if q == nil || len(*q) == 0 || o.abort || o.hold {
			o.writing = false // the next writer may start
			o.mu.Unlock()
			return
		}
		o.queue = nil
		o.inflight, o.qbytes = o.qbytes, 0
		o.mu.Unlock()

		err := o.w.writeBatch(*q)
		putQueue(q)
		o.mu.Lock()
		o.inflight = 0
		if err != nil {
			o.abort = true
			o.mu.Unlock()
			o.w.writeFailed(err)
			o.mu.Lock()
		}
		if o.behind && (o.abort || !o.past(caughtUpAt)) {
			o.behind = false
			if tell := o.watch; tell != nil {
				o.mu.Unlock()
				tell(false)
				o.mu.Lock()
			}
		}
	}
}

// depth returns the events and bytes waiting, counting what is being
// written.
func (o *outbox) depth() (events int, bytes int64) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.queue != nil {
		events = len(*o.queue)
	}
	return events, o.qbytes + o.inflight
}

// startHold makes the outbox queue events without writing them, until
// release.
func (o *outbox) startHold() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.hold = true
	o.holdAt = 0
	if o.queue != nil {
		o.holdAt = len(*o.queue)
	}
}

// release ends a hold: what was queued before it, then first (if not nil),
// then what arrived during it for which keep is true, go out in that order.
func (o *outbox) release(first *event, keep func(*event) bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	q := getQueue()
	if o.queue != nil {
		old := *o.queue
		*q = append(*q, old[:o.holdAt]...)
		if first != nil {
			*q = append(*q, first)
		}
		o.qbytes = 0
		for _, e := range old[o.holdAt:] {
			if keep(e) {
				*q = append(*q, e)
			}
		}
		for _, e := range *q {
			o.qbytes += e.size(o.plain)
		}
		putQueue(o.queue)
	} else if first != nil {
		*q = append(*q, first)
		o.qbytes = first.size(o.plain)
	}
	o.queue = q
	o.hold = false
	if !o.closing {
		o.startLocked()
	}
}

// shut stops the outbox from taking events. With drop, what is queued is
// dropped; otherwise the writer sends it (an error event explaining a
// close, say).
func (o *outbox) shut(drop bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.closing = true
	o.hold = false
	if drop {
		o.abort = true
	}
	o.startLocked()
}

// drop makes the writer drop what is queued: nothing more is worth writing.
func (o *outbox) drop() {
	o.mu.Lock()
	o.abort = true
	o.mu.Unlock()
}

// wait waits for the writing goroutine and frees the queue. Call it after
// shut.
func (o *outbox) wait() {
	o.wg.Wait()
	o.mu.Lock()
	q := o.queue
	o.queue = nil
	o.qbytes = 0
	o.mu.Unlock()
	putQueue(q)
}
