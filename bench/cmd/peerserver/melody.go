package main

import (
	"net/http"
	"sync"

	"github.com/olahol/melody"
)

// newMelody serves chat and echo with github.com/olahol/melody: one Melody
// per endpoint with its defaults except MaxMessageSize (512 B by default),
// rooms by session keys and BroadcastFilter. A session whose 256-message
// buffer is full misses the message, as melody does.
func newMelody() (chat, echo http.Handler, stop func()) {
	var conns sync.WaitGroup // handlers running, so stop can wait for them

	m := melody.New()
	m.Config.MaxMessageSize = maxMessageSize
	m.HandleConnect(func(s *melody.Session) {
		room, name := s.MustGet("room"), s.MustGet("name").(string)
		m.BroadcastFilter(joinEvent(name), inRoom(room))
	})
	m.HandleMessage(func(s *melody.Session, msg []byte) {
		room, name := s.MustGet("room"), s.MustGet("name").(string)
		m.BroadcastFilter(chatEvent(name, msg), inRoom(room))
	})
	m.HandleDisconnect(func(s *melody.Session) {
		room, name := s.MustGet("room"), s.MustGet("name").(string)
		m.BroadcastFilter(leaveEvent(name), inRoom(room))
	})
	chat = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		defer conns.Done()
		m.HandleRequestWithKeys(w, r, map[string]any{
			"room": r.PathValue("room"),
			"name": r.URL.Query().Get("name"),
		})
	})

	e := melody.New()
	e.Config.MaxMessageSize = maxMessageSize
	e.HandleMessage(func(s *melody.Session, msg []byte) { s.Write(msg) })
	e.HandleMessageBinary(func(s *melody.Session, msg []byte) { s.WriteBinary(msg) })
	echo = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		defer conns.Done()
		e.HandleRequest(w, r)
	})

	// Melody's hub goroutine ends with Close. A handler still running
	// could block on the closed hub, so stop waits for them first.
	stop = func() {
		conns.Wait()
		m.Close()
		e.Close()
	}
	return chat, echo, stop
}

// inRoom selects the sessions of room.
func inRoom(room any) func(*melody.Session) bool {
	return func(q *melody.Session) bool {
		r, _ := q.Get("room")
		return r == room
	}
}
