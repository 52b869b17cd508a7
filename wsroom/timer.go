package wsroom

import (
	"sync"
	"time"
)

// ownedTimer is a time.AfterFunc whose owner can switch it off and wait for
// a callback in flight, so that no callback outlives the owner. The zero
// value is an idle timer.
type ownedTimer struct {
	mu  sync.Mutex
	t   *time.Timer
	f   func()
	off bool
	wg  sync.WaitGroup
}

// start arms the timer to call f after d, unless it is off.
func (o *ownedTimer) start(d time.Duration, f func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.off {
		return
	}
	o.f = f
	if o.t == nil {
		o.t = time.AfterFunc(d, o.fire)
	} else {
		o.t.Reset(d)
	}
}

// reset arms the timer again with its callback, unless it is off.
func (o *ownedTimer) reset(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.off && o.t != nil {
		o.t.Reset(d)
	}
}

// cancel disarms the timer; it may be started again.
func (o *ownedTimer) cancel() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.t != nil {
		o.t.Stop()
	}
}

func (o *ownedTimer) fire() {
	o.mu.Lock()
	if o.off {
		o.mu.Unlock()
		return
	}
	o.wg.Add(1)
	f := o.f
	o.mu.Unlock()
	defer o.wg.Done()
	f()
}

// halt switches the timer off for good; a callback in flight goes on.
func (o *ownedTimer) halt() {
	o.mu.Lock()
	o.off = true
	if o.t != nil {
		o.t.Stop()
	}
	o.mu.Unlock()
}

// wait waits for a callback in flight. Call it after halt, never from the
// callback.
func (o *ownedTimer) wait() { o.wg.Wait() }

// stop halts the timer and waits for a callback in flight.
func (o *ownedTimer) stop() {
	o.halt()
	o.wait()
}
