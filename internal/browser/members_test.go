package browser

import (
	"fmt"
	"testing"
)

// testBigRoomMembers: in a room of 130 members (more than a welcome's
// first page of 100, and past the size from which arrivals and departures
// come coalesced as presence events) the page's member list is complete
// and follows departures.
func testBigRoomMembers(t *testing.T, e *env) {
	const crowd = 130
	srv := e.startChat(t)
	b := e.tab(t)
	members := make([]*member, crowd)
	names := make([]string, 0, crowd+1)
	for i := range members {
		name := fmt.Sprintf("m%03d", i)
		members[i] = joinRoom(t, srv.WS(), "big", name)
		names = append(names, name)
	}
	p := openChat(t, b, srv.URL(), "big", "zz-page")
	names = append(names, "zz-page")
	p.waitMembers(names...)
	waitJS(t, b, "the count", fmt.Sprintf(`document.getElementById("count").textContent === "(%d)"`, crowd+1))

	// Ten leave: one presence event or ten leave events, the list follows.
	for _, m := range members[:10] {
		m.leave()
	}
	p.waitMembers(names[10:]...)
	waitJS(t, b, "the count", fmt.Sprintf(`document.getElementById("count").textContent === "(%d)"`, crowd-9))
	// And one arrives.
	joinRoom(t, srv.WS(), "big", "late")
	p.waitMembers(append(names[10:], "late")...)
}
