package wsroom

import "sync/atomic"

// Stats are a Server's counters, for metrics and tests.
type Stats struct {
	Connections int64 // open WebSocket connections, chat and echo
	Members     int64 // members joined to a room on this server
	Rooms       int64 // rooms with a member on this server
	FramesIn    int64 // frames received from clients
	Deliveries  int64 // events queued for members
	FramesOut   int64 // frames written to chat members
	Slow        int64 // members dropped because they could not keep up
}

type counters struct {
	conns, members, rooms, deliveries, slow atomic.Int64
	in, frames                              striped // counted on every frame: kept apart per connection
}

// striped is a counter that connections add to without sharing a cache
// line, so that two cores counting frames do not slow each other down.
type striped [8]struct {
	n atomic.Int64
	_ [56]byte
}

func (s *striped) add(stripe uint32, n int64) { s[stripe%uint32(len(s))].n.Add(n) }

func (s *striped) load() int64 {
	var t int64
	for i := range s {
		t += s[i].n.Load()
	}
	return t
}

// nextStripe spreads connections over the stripes.
var nextStripe atomic.Uint32

// Stats returns the Server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections: s.stats.conns.Load(),
		Members:     s.stats.members.Load(),
		Rooms:       s.stats.rooms.Load(),
		FramesIn:    s.stats.in.load(),
		Deliveries:  s.stats.deliveries.Load(),
		FramesOut:   s.stats.frames.load(),
		Slow:        s.stats.slow.Load(),
	}
}
