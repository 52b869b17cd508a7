package main

import (
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// The chat example of github.com/gorilla/websocket (examples/chat, hub.go
// and client.go) with one Hub per room, made on demand and stopped once its
// last client has left. Its constants and policies are the example's: a
// client whose send channel is full is closed and dropped, and writePump
// joins the messages queued for a client into one frame with newlines.

const (
	// Time allowed to write a message to the peer.
	writeWait = 10 * time.Second

	// Time allowed to read the next pong message from the peer.
	pongWait = 60 * time.Second

	// Send pings to peer with this period. Must be less than pongWait.
	pingPeriod = (pongWait * 9) / 10
)

var newline = []byte{'\n'}

// gorillaChat is the set of rooms, each served by its Hub.
type gorillaChat struct {
	upgrader websocket.Upgrader

	mu   sync.Mutex
	hubs map[string]*gorillaHub
}

func newGorilla() (chat, echo http.Handler, stop func()) {
	g := &gorillaChat{
		upgrader: websocket.Upgrader{
			ReadBufferSize:  1024,
			WriteBufferSize: 1024,
			CheckOrigin:     func(r *http.Request) bool { return true },
		},
		hubs: make(map[string]*gorillaHub),
	}
	return g, gorillaEcho(), func() {}
}

// hub returns the Hub of room, starting it if the room is new, and counts
// the caller in; release counts it out.
func (g *gorillaChat) hub(room string) *gorillaHub {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.hubs[room]
	if h == nil {
		h = newGorillaHub()
		g.hubs[room] = h
		go h.run()
	}
	h.refs++
	return h
}

// release counts a client out of room and stops the Hub when it was the
// last: every client has unregistered and sent its last broadcast by then.
func (g *gorillaChat) release(room string, h *gorillaHub) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h.refs--
	if h.refs == 0 {
		delete(g.hubs, room)
		close(h.stop)
	}
}

// ServeHTTP is the example's serveWs.
func (g *gorillaChat) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	conn, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		return // Upgrade has replied
	}
	room := r.PathValue("room")
	client := &gorillaClient{
		chat: g,
		room: room,
		name: r.URL.Query().Get("name"),
		hub:  g.hub(room),
		conn: conn,
		send: make(chan []byte, sendBuffer),
	}
	client.hub.register <- client
	client.hub.broadcast <- joinEvent(client.name)

	// Allow collection of memory referenced by the caller by doing all work in
	// new goroutines.
	go client.writePump()
	go client.readPump()
}

// gorillaHub maintains the set of active clients and broadcasts messages to
// the clients.
type gorillaHub struct {
	// Registered clients.
	clients map[*gorillaClient]bool

	// Inbound messages from the clients.
	broadcast chan []byte

	// Register requests from the clients.
	register chan *gorillaClient

	// Unregister requests from clients.
	unregister chan *gorillaClient

	// Closed when the last client has left.
	stop chan struct{}

	// Clients that hold the Hub, guarded by gorillaChat.mu.
	refs int
}

func newGorillaHub() *gorillaHub {
	return &gorillaHub{
		broadcast:  make(chan []byte),
		register:   make(chan *gorillaClient),
		unregister: make(chan *gorillaClient),
		stop:       make(chan struct{}),
		clients:    make(map[*gorillaClient]bool),
	}
}

func (h *gorillaHub) run() {
	for {
		select {
		case client := <-h.register:
			h.clients[client] = true
		case client := <-h.unregister:
			if _, ok := h.clients[client]; ok {
				delete(h.clients, client)
				close(client.send)
			}
		case message := <-h.broadcast:
			for client := range h.clients {
				select {
				case client.send <- message:
				default:
					close(client.send)
					delete(h.clients, client)
				}
			}
		case <-h.stop:
			return
		}
	}
}

// gorillaClient is a middleman between the websocket connection and the hub.
type gorillaClient struct {
	chat *gorillaChat
	room string
	name string

	hub *gorillaHub

	// The websocket connection.
	conn *websocket.Conn

	// Buffered channel of outbound messages.
	send chan []byte
}

// readPump pumps messages from the websocket connection to the hub.
//
// The application runs readPump in a per-connection goroutine. The application
// ensures that there is at most one reader on a connection by executing all
// reads from this goroutine.
func (c *gorillaClient) readPump() {
	defer func() {
		c.hub.unregister <- c
		c.hub.broadcast <- leaveEvent(c.name)
		c.chat.release(c.room, c.hub)
		c.conn.Close()
	}()
	c.conn.SetReadLimit(maxMessageSize)
	c.conn.SetReadDeadline(time.Now().Add(pongWait))
	c.conn.SetPongHandler(func(string) error { c.conn.SetReadDeadline(time.Now().Add(pongWait)); return nil })
	for {
		mt, message, err := c.conn.ReadMessage()
		if err != nil {
			break
		}
		if mt != websocket.TextMessage {
			continue
		}
		// The example replaces newlines by spaces here so that they cannot
		// split its frames; the JSON encoding escapes them instead.
		c.hub.broadcast <- chatEvent(c.name, message)
	}
}

// writePump pumps messages from the hub to the websocket connection.
//
// A goroutine running writePump is started for each connection. The
// application ensures that there is at most one writer to a connection by
// executing all writes from this goroutine.
func (c *gorillaClient) writePump() {
	ticker := time.NewTicker(pingPeriod)
	defer func() {
		ticker.Stop()
		c.conn.Close()
	}()
	for {
		select {
		case message, ok := <-c.send:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if !ok {
				// The hub closed the channel.
				c.conn.WriteMessage(websocket.CloseMessage, []byte{})
				return
			}

			w, err := c.conn.NextWriter(websocket.TextMessage)
			if err != nil {
				return
			}
			w.Write(message)

			// Add queued chat messages to the current websocket message.
			n := len(c.send)
			for i := 0; i < n; i++ {
				w.Write(newline)
				w.Write(<-c.send)
			}

			if err := w.Close(); err != nil {
				return
			}
		case <-ticker.C:
			c.conn.SetWriteDeadline(time.Now().Add(writeWait))
			if err := c.conn.WriteMessage(websocket.PingMessage, nil); err != nil {
				return
			}
		}
	}
}

// gorillaEcho is gorilla's examples/echo: ReadMessage, WriteMessage.
func gorillaEcho() http.Handler {
	upgrader := websocket.Upgrader{CheckOrigin: func(r *http.Request) bool { return true }}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		c.SetReadLimit(maxMessageSize)
		for {
			mt, message, err := c.ReadMessage()
			if err != nil {
				return
			}
			if err := c.WriteMessage(mt, message); err != nil {
				return
			}
		}
	})
}
