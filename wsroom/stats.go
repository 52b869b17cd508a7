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
	conns, members, rooms, in, deliveries, frames, slow atomic.Int64
}

// Stats returns the Server's counters.
func (s *Server) Stats() Stats {
	return Stats{
		Connections: s.stats.conns.Load(),
		Members:     s.stats.members.Load(),
		Rooms:       s.stats.rooms.Load(),
		FramesIn:    s.stats.in.Load(),
		Deliveries:  s.stats.deliveries.Load(),
		FramesOut:   s.stats.frames.Load(),
		Slow:        s.stats.slow.Load(),
	}
}
