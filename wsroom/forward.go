package wsroom

import (
	"context"
	"net/http"
)

// Forwarding: behind a load balancer without sticky sessions, a fallback
// POST may reach a server other than the one holding its stream. The
// token names the holder (its first part is the holder's Server id): the
// POST is published, as a PubPost, on the holder's own topic, which every
// Server serving streams subscribes to, and the holder answers with a
// PubPostReply on the asker's topic, carrying the status the POST gets.
// The client sends its POSTs one after another, each after the answer to
// the one before, so that forwarding keeps their order.

// serverTopic is the Broker topic of a Server's forwarded POSTs: it starts
// with a NUL byte, which no room name can hold (checkName).
func serverTopic(id string) string { return "\x00wsroom/server/" + id }

// listen subscribes this server to its topic, once (a failed subscription
// is tried again at the next call).
func (f *fallback) listen(s *Server) error {
	f.subMu.Lock() // not mu, which POSTs take: this may wait on the broker
	defer f.subMu.Unlock()
	f.mu.Lock()
	done := f.unsub != nil || f.closed
	f.mu.Unlock()
	if done {
		return nil
	}
	ctx, cancel := context.WithTimeout(s.ctx, s.backendTimeout())
	defer cancel()
	unsub, err := s.opts.Broker.Subscribe(ctx, serverTopic(s.id), s.receiveForward)
	if err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		unsub()
		return nil
	}
	f.unsub = unsub
	return nil
}

// close ends the subscription and waits for the replies being published.
// Shutdown calls it once every stream has ended.
func (f *fallback) close() {
	f.subMu.Lock()
	defer f.subMu.Unlock()
	f.mu.Lock()
	f.closed = true
	unsub := f.unsub
	f.unsub = nil
	f.mu.Unlock()
	if unsub != nil {
		unsub()
	}
	f.replies.Wait()
}

// receiveForward is the subscription to this server's topic. It never
// blocks: a POST is queued for its stream, and the reply published from a
// goroutine of its own (a Broker's deliver must not wait on another
// publication, which could wait on this one).
func (s *Server) receiveForward(p *Publication) {
	f := &s.fb
	switch p.Type {
	case PubPost:
		status := http.StatusNotFound
		if c := f.lookup(p.Token); c != nil {
			status = c.enqueue(sseFrames{data: p.Data, binary: p.Binary, tooBig: p.Status == http.StatusRequestEntityTooLarge})
		}
		reply := &Publication{Room: serverTopic(p.Origin), Type: PubPostReply, Seq: p.Seq, Status: status, Origin: s.id}
		f.mu.Lock()
		if f.closed {
			f.mu.Unlock()
			return
		}
		f.replies.Add(1)
		f.mu.Unlock()
		go func() {
			defer f.replies.Done()
			ctx, cancel := context.WithTimeout(context.Background(), s.backendTimeout())
			defer cancel()
			if err := s.opts.Broker.Publish(ctx, reply); err != nil {
				s.log.Warn("wsroom: could not answer a forwarded POST", "to", p.Origin, "err", err)
			}
		}()
	case PubPostReply:
		f.mu.Lock()
		ch := f.pending[p.Seq]
		f.mu.Unlock()
		if ch != nil {
			select {
			case ch <- p.Status:
			default:
			}
		}
	}
}

// forward hands a POST to the server holding its stream and returns the
// status it answered, or 503 when it did not within BackendTimeout.
func (s *Server) forward(ctx context.Context, server, token string, fr sseFrames) int {
	f := &s.fb
	if err := f.listen(s); err != nil { // the reply comes on our topic
		s.log.Warn("wsroom: cannot forward a POST: subscribing failed", "err", err)
		return http.StatusServiceUnavailable
	}
	ch := make(chan int, 1)
	f.mu.Lock()
	f.seq++
	seq := f.seq
	if f.pending == nil {
		f.pending = make(map[uint64]chan int)
	}
	f.pending[seq] = ch
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.pending, seq)
		f.mu.Unlock()
	}()
	p := &Publication{Room: serverTopic(server), Type: PubPost, Token: token, Seq: seq, Data: fr.data, Binary: fr.binary, Origin: s.id}
	if fr.tooBig {
		p.Status = http.StatusRequestEntityTooLarge
	}
	ctx, cancel := context.WithTimeout(ctx, s.backendTimeout())
	defer cancel()
	if err := s.opts.Broker.Publish(ctx, p); err != nil {
		s.log.Warn("wsroom: could not forward a POST", "to", server, "err", err)
		return http.StatusServiceUnavailable
	}
	select {
	case status := <-ch:
		return status
	case <-ctx.Done():
		return http.StatusServiceUnavailable
	case <-s.ctx.Done():
		return http.StatusServiceUnavailable
	}
}
