package wsroom

import (
	"context"
	"slices"
	"sync"
)

// MemoryBroker is the default Broker: it delivers publications to the
// subscribers in this process, synchronously, one room at a time. Several
// Servers in one process may share it.
type MemoryBroker struct {
	mu     sync.Mutex
	topics map[string]*memTopic
}

type memTopic struct {
	mu   sync.Mutex // held while delivering, so a room's order is total
	subs []*memSub
}

type memSub struct{ deliver func(*Publication) }

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns a MemoryBroker with no subscribers.
func NewMemoryBroker() *MemoryBroker {
	return &MemoryBroker{topics: make(map[string]*memTopic)}
}

func (b *MemoryBroker) topic(room string, create bool) *memTopic {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.topics[room]
	if t == nil && create {
		t = &memTopic{}
		b.topics[room] = t
	}
	return t
}

// Publish implements Broker. It returns once every subscriber's deliver has
// returned.
func (b *MemoryBroker) Publish(ctx context.Context, p *Publication) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	t := b.topic(p.Room, false)
	if t == nil {
		return nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, s := range t.subs {
		s.deliver(p)
	}
	return nil
}

// Subscribe implements Broker.
func (b *MemoryBroker) Subscribe(ctx context.Context, room string, deliver func(*Publication)) (func(), error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s := &memSub{deliver: deliver}
	for {
		t := b.topic(room, true)
		t.mu.Lock()
		b.mu.Lock()
		live := b.topics[room] == t
		b.mu.Unlock()
		if live {
			t.subs = append(t.subs, s)
			t.mu.Unlock()
			break
		}
		t.mu.Unlock() // the topic was dropped while we waited; take the new one
	}
	var once sync.Once
	return func() { once.Do(func() { b.unsubscribe(room, s) }) }, nil
}

func (b *MemoryBroker) unsubscribe(room string, s *memSub) {
	t := b.topic(room, false)
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.subs = slices.DeleteFunc(t.subs, func(x *memSub) bool { return x == s })
	if len(t.subs) == 0 {
		b.mu.Lock()
		if b.topics[room] == t {
			delete(b.topics, room)
		}
		b.mu.Unlock()
	}
}
