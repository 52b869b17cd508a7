package wsroomredis

import (
	"context"
	"fmt"
	"time"

	"wsroom.dev/wsroom"
)

// presenceKeys returns the keys every presence script declares first.
func (s *Store) presenceKeys(more ...string) []string {
	return append([]string{s.keys.leases, s.keys.dead, s.keys.expired}, more...)
}

// knows reports, as the scripts read it, whether this Store held a lease
// under server.
func (s *Store) knows(server string) string {
	if _, ok := s.known.Load(server); ok {
		return "1"
	}
	return "0"
}

// leaseMillis converts a lease to milliseconds, rounding up.
func leaseMillis(d time.Duration) int64 {
	if d <= 0 {
		return 0
	}
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}

// Reserve implements wsroom.Presence in one script: it reaps ended leases,
// checks the owner's lease, the name and the room's size, takes the name
// and extends the lease.
func (s *Store) Reserve(ctx context.Context, r wsroom.Reservation, o wsroom.ReserveOptions) (wsroom.Owner, error) {
	fail := func(err error) (wsroom.Owner, error) {
		return wsroom.Owner{}, fmt.Errorf("wsroomredis: reserve %q in %q: %w", r.Name, r.Room, err)
	}
	if err := ctx.Err(); err != nil {
		return fail(err)
	}
	replace := "0"
	if o.Replace {
		replace = "1"
	}
	res, err := reserveScript.Run(ctx, s.client,
		s.presenceKeys(s.keys.members(r.Room), s.keys.holders(r.Room), s.keys.lease(r.Owner.Server)),
		s.keys.presence, r.Name, pair(r.Owner.Server, r.Owner.Conn), r.Owner.Server, pair(r.Room, r.Name),
		o.Max, leaseMillis(o.Lease), replace, s.knows(r.Owner.Server),
	).Slice()
	if err != nil {
		return fail(err)
	}
	if len(res) < 2 {
		res = append(res, nil, nil)
	}
	switch status, _ := res[0].(string); status {
	case "ok":
		s.known.Store(r.Owner.Server, struct{}{})
		var replaced wsroom.Owner
		if enc, _ := res[1].(string); enc != "" {
			replaced.Server, replaced.Conn, _ = unpair(enc)
		}
		return replaced, nil
	case "taken":
		return fail(wsroom.ErrNameTaken)
	case "full":
		return fail(wsroom.ErrRoomFull)
	case "lost":
		s.known.Delete(r.Owner.Server)
		return fail(wsroom.ErrLeaseExpired)
	default:
		return fail(fmt.Errorf("unexpected reply %v", res))
	}
}

// Release implements wsroom.Presence.
func (s *Store) Release(ctx context.Context, r wsroom.Reservation) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("wsroomredis: release %q in %q: %w", r.Name, r.Room, err)
	}
	n, err := releaseScript.Run(ctx, s.client,
		s.presenceKeys(s.keys.members(r.Room), s.keys.holders(r.Room), s.keys.lease(r.Owner.Server)),
		s.keys.presence, r.Name, pair(r.Owner.Server, r.Owner.Conn), pair(r.Room, r.Name),
	).Int()
	switch {
	case err != nil:
		return fmt.Errorf("wsroomredis: release %q in %q: %w", r.Name, r.Room, err)
	case n == 0:
		return fmt.Errorf("wsroomredis: release %q in %q: %w", r.Name, r.Room, wsroom.ErrNotMember)
	}
	return nil
}

// Members implements wsroom.Presence.
func (s *Store) Members(ctx context.Context, room, after string, limit int) ([]string, int, error) {
	if err := ctx.Err(); err != nil {
		return nil, 0, fmt.Errorf("wsroomredis: members of %q: %w", room, err)
	}
	start := "-"
	if after != "" {
		start = "(" + after
	}
	if limit <= 0 {
		limit = -1
	}
	res, err := membersScript.Run(ctx, s.client, s.presenceKeys(s.keys.members(room)),
		s.keys.presence, start, limit).Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return nil, 0, fmt.Errorf("wsroomredis: members of %q: %w", room, err)
	}
	list, _ := res[0].([]any)
	total, _ := res[1].(int64)
	var names []string
	if len(list) > 0 {
		names = make([]string, len(list))
		for i, n := range list {
			names[i], _ = n.(string)
		}
	}
	return names, int(total), nil
}

// Refresh implements wsroom.Presence: one script extends the server's
// lease, and so every reservation under it, whatever their number.
func (s *Store) Refresh(ctx context.Context, server string, lease time.Duration) ([]wsroom.Reservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("wsroomredis: refresh lease %q: %w", server, err)
	}
	res, err := refreshScript.Run(ctx, s.client, s.presenceKeys(),
		s.keys.presence, server, leaseMillis(lease), s.knows(server)).Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("unexpected reply %v", res)
	}
	if err != nil {
		return nil, fmt.Errorf("wsroomredis: refresh lease %q: %w", server, err)
	}
	flat, _ := res[1].([]any)
	var expired []wsroom.Reservation
	for i := 0; i+1 < len(flat); i += 2 {
		rk, _ := flat[i].(string)
		enc, _ := flat[i+1].(string)
		room, name, ok1 := unpair(rk)
		srv, conn, ok2 := unpair(enc)
		if !ok1 || !ok2 {
			continue // not written by this package
		}
		expired = append(expired, wsroom.Reservation{Room: room, Name: name, Owner: wsroom.Owner{Server: srv, Conn: conn}})
	}
	if status, _ := res[0].(string); status == "lost" {
		s.known.Delete(server)
		return expired, fmt.Errorf("wsroomredis: refresh lease %q: %w", server, wsroom.ErrLeaseExpired)
	}
	s.known.Store(server, struct{}{})
	return expired, nil
}
