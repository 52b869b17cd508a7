package main

import (
	"net/http"
	"sync"

	"github.com/lxzan/gws"
)

// gwsChat serves chat with github.com/lxzan/gws: an Event handler, the
// member's name and room in its session (stored by Authorize, as gws's
// chatroom example does), and each event fanned out with one
// gws.Broadcaster, which frames the payload once for every member.
type gwsChat struct {
	gws.BuiltinEventHandler // OnPong does nothing

	mu    sync.Mutex
	rooms map[string]*gwsRoom
}

// gwsRoom is the members of a room.
type gwsRoom struct {
	mu      sync.RWMutex
	members map[*gws.Conn]struct{}
}

func newGWS() (chat, echo http.Handler, stop func()) {
	c := &gwsChat{rooms: make(map[string]*gwsRoom)}
	chatUpgrader := gws.NewUpgrader(c, &gws.ServerOption{
		ReadMaxPayloadSize: maxMessageSize,
		Authorize: func(r *http.Request, session gws.SessionStorage) bool {
			session.Store("room", r.PathValue("room"))
			session.Store("name", r.URL.Query().Get("name"))
			return true
		},
	})
	echoUpgrader := gws.NewUpgrader(gwsEcho{}, &gws.ServerOption{
		ReadMaxPayloadSize: maxMessageSize,
	})
	return gwsHandler(chatUpgrader), gwsHandler(echoUpgrader), func() {}
}

// gwsHandler upgrades and reads in a goroutine of its own, as the gws
// README's "Best Practice" does, so that the request can be collected.
func gwsHandler(upgrader *gws.Upgrader) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		socket, err := upgrader.Upgrade(w, r)
		if err != nil {
			return // Upgrade has replied
		}
		go socket.ReadLoop()
	})
}

func (c *gwsChat) OnOpen(socket *gws.Conn) {
	name, roomName := gwsLoad(socket, "name"), gwsLoad(socket, "room")
	c.mu.Lock()
	room := c.rooms[roomName]
	if room == nil {
		room = &gwsRoom{members: make(map[*gws.Conn]struct{})}
		c.rooms[roomName] = room
	}
	room.mu.Lock()
	room.members[socket] = struct{}{}
	room.mu.Unlock()
	c.mu.Unlock()
	socket.Session().Store("members", room)
	room.broadcast(joinEvent(name))
}

func (c *gwsChat) OnClose(socket *gws.Conn, err error) {
	name, roomName := gwsLoad(socket, "name"), gwsLoad(socket, "room")
	room := gwsMembers(socket)
	c.mu.Lock()
	room.mu.Lock()
	delete(room.members, socket)
	if len(room.members) == 0 {
		delete(c.rooms, roomName)
	}
	room.mu.Unlock()
	c.mu.Unlock()
	room.broadcast(leaveEvent(name))
}

// OnPing answers with the ping's payload, as gws's echo example does (the
// builtin handler's pong is empty).
func (c *gwsChat) OnPing(socket *gws.Conn, payload []byte) {
	_ = socket.WritePong(payload)
}

func (c *gwsChat) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	if message.Opcode != gws.OpcodeText {
		return
	}
	gwsMembers(socket).broadcast(chatEvent(gwsLoad(socket, "name"), message.Bytes()))
}

// broadcast sends payload to every member: Broadcast queues the frame on
// each connection without blocking.
func (r *gwsRoom) broadcast(payload []byte) {
	b := gws.NewBroadcaster(gws.OpcodeText, payload)
	defer b.Close()
	r.mu.RLock()
	defer r.mu.RUnlock()
	for socket := range r.members {
		_ = b.Broadcast(socket)
	}
}

func gwsLoad(socket *gws.Conn, key string) string {
	v, _ := socket.Session().Load(key)
	s, _ := v.(string)
	return s
}

func gwsMembers(socket *gws.Conn) *gwsRoom {
	v, _ := socket.Session().Load("members")
	return v.(*gwsRoom)
}

// gwsEcho is the Event handler of gws's echo example.
type gwsEcho struct {
	gws.BuiltinEventHandler
}

func (gwsEcho) OnPing(socket *gws.Conn, payload []byte) {
	_ = socket.WritePong(payload)
}

func (gwsEcho) OnMessage(socket *gws.Conn, message *gws.Message) {
	defer message.Close()
	_ = socket.WriteMessage(message.Opcode, message.Bytes())
}
