package main

import (
	"net/http"
	"sync"

	"github.com/olahol/melody"
)

// newMelody serves chat and echo with github.com/olahol/melody: one Melody
// per endpoint with its defaults except MaxMessageSize (512 B by default).
// Rooms are melody's multi-channel chat of its README: every broadcast is
// a BroadcastFilter selecting the sessions whose request path is the
// sender's, so melody's hub goroutine tests every session of every room. A
// session whose 256-message buffer is full misses the message, as melody
// does.
func newMelody() (chat, echo http.Handler, stop func()) {
	var conns sync.WaitGroup // handlers running, so stop can wait for them

	m := melody.New()
	m.Config.MaxMessageSize = maxMessageSize
	m.HandleConnect(func(s *melody.Session) {
		m.BroadcastFilter(joinEvent(s.MustGet("name").(string)), inRoom(s))
	})
	m.HandleMessage(func(s *melody.Session, msg []byte) {
		m.BroadcastFilter(chatEvent(s.MustGet("name").(string), msg), inRoom(s))
	})
	m.HandleDisconnect(func(s *melody.Session) {
		m.BroadcastFilter(leaveEvent(s.MustGet("name").(string)), inRoom(s))
	})
	chat = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conns.Add(1)
		defer conns.Done()
		m.HandleRequestWithKeys(w, r, map[string]any{"name": r.URL.Query().Get("name")})
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

// inRoom selects the sessions of s's room: those whose request path
// (/chat/{room}) is s's, as melody's README does.
func inRoom(s *melody.Session) func(*melody.Session) bool {
	return func(q *melody.Session) bool {
		return q.Request.URL.Path == s.Request.URL.Path
	}
}
