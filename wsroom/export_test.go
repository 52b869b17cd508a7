package wsroom

// HaltLease stops a Server's lease refresh, as a crash would, for tests.
func HaltLease(s *Server) { s.lease.halt() }
