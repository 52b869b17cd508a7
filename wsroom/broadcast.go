package wsroom

// BroadcastOption narrows who receives a broadcast.
type BroadcastOption func(*route)

type route struct {
	to     []string
	except []string
	filter func(MemberInfo) bool
}

// To limits a broadcast to the named members, wherever they are connected.
// A message sent To someone is not kept in the room's history.
func To(names ...string) BroadcastOption {
	return func(r *route) { r.to = append(r.to, names...) }
}

// Except skips the named members.
func Except(names ...string) BroadcastOption {
	return func(r *route) { r.except = append(r.except, names...) }
}

// Filter limits a broadcast to the members for which keep returns true.
// keep runs in this process, so a filtered broadcast reaches only members
// connected to this server (use To and Except to address members anywhere),
// and a filtered message is not kept in the room's history. keep is called
// with the room's member list locked: it must be quick and must not call
// back into the Server.
func Filter(keep func(MemberInfo) bool) BroadcastOption {
	return func(r *route) { r.filter = keep }
}

func makeRoute(opts []BroadcastOption) route {
	var r route
	for _, o := range opts {
		if o != nil {
			o(&r)
		}
	}
	return r
}

// skips reports whether the route leaves out the member called name.
func (r *route) skips(name string) bool {
	for _, n := range r.except {
		if n == name {
			return true
		}
	}
	return false
}
