// Package wsroom adds WebSocket chat rooms to an existing net/http
// application: members join with a name, receive a welcome with the member
// list and recent history, see everyone arrive, speak and leave. It also
// serves an echo endpoint.
//
// A Server is an http.Handler; mount it on any router.
//
//	package main
//
//	import (
//		"log"
//		"net/http"
//
//		"wsroom.dev/wsroom"
//	)
//
//	func main() {
//		rooms, err := wsroom.New(nil) // nil: the safe defaults
//		if err != nil {
//			log.Fatal(err)
//		}
//		mux := http.NewServeMux()
//		mux.Handle("/chat/{room}", rooms) // the room is r.PathValue("room")
//		mux.Handle("/chat", rooms)        // the default room, "lobby"
//		mux.Handle("/echo", rooms.Echo())
//		log.Fatal(http.ListenAndServe("127.0.0.1:8080", mux))
//	}
//
// Under chi (v5.0.12 or later, which sets PathValue) the same handler works
// with r.Handle("/chat/{room}", rooms). Under a router that sets no path
// values, Options.RoomFromRequest names the room; a route whose room the
// Server cannot tell is refused (500) and logged, never served as the
// default room. A Room from Server.Room serves one fixed room wherever it
// is mounted.
//
// # Protocol
//
// A client that offers the subprotocol "wsroom.v1" speaks JSON. It sends one
// object per text frame:
//
//	{"type":"join","name":"alice"}                  join; "since":"<id>" resumes
//	{"type":"message","text":"hello"}               say something
//	{"type":"history","before":"<id>","limit":50}   page back through history
//	{"type":"members","after":"<name>","limit":100} page through the members
//
// The server sends one or more objects per text frame, separated by "\n":
// it batches what is queued for a member into one frame. Types:
//
//	welcome   room, name, members (the first page), count, history (oldest first), gap (resume incomplete)
//	join      name
//	leave     name
//	presence  joined, left: arrivals and departures coalesced in a big room
//	message   id, from, text, ts (Unix milliseconds)
//	history   messages, more
//	members   members, count, more
//	error     code, message
//
// The server sets from, id and ts; a client cannot forge them. IDs are
// decimal strings that increase within a room. Error codes are the Code
// constants, each with a fixed message; after an error event the connection
// stays open.
//
// A client without the subprotocol speaks the plain-text protocol of the
// original chat page: its first text "login:NAME" joins, every later text is
// a message, and every event reaches it as one line of text per frame, with
// names and texts HTML-escaped. See TextFormat. Both kinds of clients share
// rooms.
//
// Binary messages are relayed to the other members of the room as binary
// frames, unless Options.NoBinary is set.
//
// # Hooks
//
// Hooks, fixed at construction, let the application identify members from
// the request before the upgrade, refuse or rename a join, refuse, rewrite
// or drop a message, and learn why a member left. They run on the member's
// goroutine and must not block for long; their context keeps the request's
// values but not its deadline. A hook that panics closes its member with
// 1011.
//
// # Security
//
// The defaults are meant for the internet. Only same-origin pages may
// connect (a cross-site Origin gets 403), unless Options.OriginPatterns
// allows more; Options.InsecureSkipVerify turns the check off. Messages are
// limited in size (32 KiB of text, 1 MiB of binary; 1009, decided at the
// frame header), text must be valid UTF-8 (1007), each connection is rate
// limited (1008 when sustained), names are trimmed and may not hold control,
// format or bidi characters, rooms and servers are bounded, a connection
// must join within a deadline, and what one connection can make the server
// hold is bounded in bytes (its queue, a history page, the store's budget).
// Plain-text lines are HTML-escaped. Compression is never negotiated.
// Handshakes of old protocol versions get 426 with Sec-WebSocket-Version:
// 13, plain GETs a 4xx. The HTTP fallback's streams and POSTs pass the same
// origin check (and a stream request without an Origin that the browser
// marks cross-site is refused); a POST acts only for the stream whose
// unguessable token it carries, within the same size limits (413, and the
// stream closes with 1009) and rate limit.
//
// # Delivery
//
// Every member has a queue bounded in events and bytes. Broadcast never
// waits for a connection and no lock is held while writing to one or while
// calling a networked store or broker; a writer goroutine runs only while a
// member has something queued. A member that cannot keep up is closed with
// 1013 and leaves with ReasonSlow, so one slow client never holds up a room.
// The server pings every connection and drops one that does not answer. A
// departure is announced exactly once, whatever the cause.
//
// A member's messages reach everyone in the order it sent them. The
// messages of different members reach everyone in the order the broker
// delivers them: one order for all with the in-process broker (where it is
// also the order of their IDs) and with Redis; with NATS, messages sent at
// the same moment on two servers may reach two servers in different
// orders.
//
// # HTTP fallback
//
// Some proxies and firewalls strip the Upgrade header or pass nothing after
// it. For their users the same handlers serve the protocol over plain HTTP:
// a GET with "Accept: text/event-stream" opens a Server-Sent Events stream of
// the member's events (one JSON event per SSE event; a message's ID is the
// SSE id, so an EventSource that reconnects with Last-Event-ID resumes after
// it; binary messages arrive as {"type":"binary","data":"<base64>"}), and
// POSTs carry the client's frames, naming the stream by the token its first
// event gave in the Wsroom-Token header (TokenHeader): text frames one a
// line, or one binary message as application/octet-stream. A fallback
// member is a member like any other: admission, hooks, limits, presence,
// history, the slow-consumer policy, Room.Remove and Shutdown are the same,
// and the stream's last event gives the close code and reason a WebSocket
// would have got. Behind a load balancer without sticky sessions, a POST
// that reaches another server is forwarded through the Broker to the one
// holding the stream. The browser client (ClientHandler) falls back by
// itself. Options.NoFallback turns it off.
//
// # Several servers
//
// Names and history live in a Store, and events travel through a Broker:
// message IDs come from the store, and a message goes store, broker, then
// the members connected to each server. The defaults keep both in memory;
// the modules under wsroom.dev/adapters provide Redis and PostgreSQL stores
// and Redis and NATS brokers. The names a server's members hold live as
// long as the server's lease (Options.LeaseTime), which it refreshes: the
// members of a server that crashed leave every member list within a lease.
// The packages storetest and brokertest are the conformance suites.
//
// # Shutdown
//
// Server.Shutdown refuses new connections, closes every connection with
// 1001 and waits for all of them. http.Server.Shutdown does not wait for
// WebSocket connections (they are hijacked): register the Server's Shutdown
// with http.Server.RegisterOnShutdown, and call it again after
// http.Server.Shutdown to wait, as ExampleServer_Shutdown shows.
//
// # Logging
//
// Diagnostics go to Options.Logger (log/slog), slog.Default() if nil.
// Per-connection events log at Debug; a member the server closed, at Info;
// store and broker failures, hook panics and a router the Server cannot
// work under, at Error. Message bodies and tokens are never logged.
package wsroom
