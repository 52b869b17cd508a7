package wsroom

import "sync"

// Queues and write buffers are taken from pools when a member has something
// to send and given back when it has sent it, so an idle member holds
// neither.
var (
	queuePool = sync.Pool{New: func() any { q := make([]*event, 0, 16); return &q }}
	bufPool   = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}
)

func getQueue() *[]*event { return queuePool.Get().(*[]*event) }

func putQueue(q *[]*event) {
	if q == nil || cap(*q) > 1<<14 {
		return
	}
	clear(*q)
	*q = (*q)[:0]
	queuePool.Put(q)
}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > maxBatch*2 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}
