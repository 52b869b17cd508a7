package wsroom

import "sync/atomic"

// Stats are a Server's counters and gauges, for metrics and tests.
type Stats struct {
	Connections int64 // open connections: WebSocket (chat and echo) and fallback streams (a gauge)
	Streams     int64 // of them, the HTTP fallback's event streams (a gauge)
	Members     int64 // members joined to a room on this server (a gauge)
	Rooms       int64 // rooms with a member on this server (a gauge)
	FramesIn    int64 // messages received from clients
	BytesIn     int64 // their bytes
	Deliveries  int64 // events queued for members
	FramesOut   int64 // frames written to members and echo clients
	BytesOut    int64 // their bytes, headers included
	Slow        int64 // members dropped because they could not keep up
	Throttled   int64 // messages after which a publisher waited for a congested room
	Refused     int64 // upgrades refused for a cap, and frames for the rate limit
	// Left counts the departures by reason (indexed by LeaveReason).
	Left [ReasonLost + 1]int64
}

type counters struct {
	conns, streams, members, rooms, deliveries, slow, refused, throttled atomic.Int64
	left                                                                 [ReasonLost + 1]atomic.Int64
	in, inBytes, frames, outBytes                                        striped // counted on every frame: kept apart per connection
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
	st := Stats{
		Connections: s.stats.conns.Load(),
		Streams:     s.stats.streams.Load(),
		Members:     s.stats.members.Load(),
		Rooms:       s.stats.rooms.Load(),
		FramesIn:    s.stats.in.load(),
		BytesIn:     s.stats.inBytes.load(),
		Deliveries:  s.stats.deliveries.Load(),
		FramesOut:   s.stats.frames.load(),
		BytesOut:    s.stats.outBytes.load(),
		Slow:        s.stats.slow.Load(),
		Throttled:   s.stats.throttled.Load(),
		Refused:     s.stats.refused.Load(),
	}
	for i := range st.Left {
		st.Left[i] = s.stats.left[i].Load()
	}
	return st
}

// QueueDepth returns what waits in the members' queues, in events and in
// bytes, counting what is being written. It visits every connection: call
// it when scraped, not on a hot path.
func (s *Server) QueueDepth() (events, bytes int64) {
	s.mu.Lock()
	conns := make([]*wsConn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		e, b := c.out.depth()
		events += int64(e)
		bytes += b
	}
	e, b := s.fb.depth()
	return events + e, bytes + b
}

// RoomSizes calls f with each room that has members on this server and
// how many, for an exporter that wants a gauge per room (beware of the
// number of rooms). It stops when f returns false.
func (s *Server) RoomSizes(f func(room string, members int) bool) {
	s.mu.Lock()
	hubs := make([]*hub, 0, len(s.hubs))
	for _, h := range s.hubs {
		hubs = append(hubs, h)
	}
	s.mu.Unlock()
	for _, h := range hubs {
		if !f(h.name, h.size()) {
			return
		}
	}
}
