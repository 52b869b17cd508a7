// Package wsroomredis keeps wsroom's rooms in Redis, so that several
// servers share them: Store holds member names and history
// (wsroom.Store), Broker carries events between the servers over Redis
// pub/sub (wsroom.Broker). Both pass the conformance suites
// wsroom.dev/wsroom/storetest and wsroom.dev/wsroom/brokertest, on a
// single Redis and on a Redis Cluster.
//
//	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
//	store, err := wsroomredis.NewStore(client, nil)
//	...
//	broker, err := wsroomredis.NewBroker(client, nil)
//	...
//	defer broker.Close()
//	rooms, err := wsroom.New(&wsroom.Options{Store: store, Broker: broker})
//
// NewStore and NewBroker take the application's own client, which may be a
// *redis.Client, a failover client (redis.NewFailoverClient, for Sentinel)
// or a *redis.ClusterClient; OpenStore and OpenBroker open a client of
// their own from a redis:// URL and close it in Close. Set
// ContextTimeoutEnabled on a client of your own: without it go-redis bounds
// a call by its ReadTimeout and WriteTimeout, not by the context.
// Redis 5.0 or later is needed (streams); the tests run on Redis 7.0.
//
// # Key layout
//
// Every name starts with StoreOptions.Prefix (P, default "wsroom:"). A room
// name R is used as is where it follows a fixed prefix, and percent-encoded
// ('%', '{' and '}') as T where it sits inside a hash tag, so that any
// UTF-8 name makes valid, distinct keys in the slot of its room:
//
//	{P}leases          ZSET  lease id -> end of the lease, Unix ms (Redis time)
//	{P}dead            ZSET  lease id -> end, for leases that ended (kept 1h)
//	{P}expired         HASH  reservation -> owner: reaped, not yet handed out
//	{P}lease:<id>      SET   the reservations held under a lease
//	{P}members:R       ZSET  the room's names, all scored 0: sorted by bytes
//	{P}holders:R       HASH  name -> owner
//	P{T}:log           STREAM the room's messages, entry ID "<message ID>-0"
//	P{T}:meta          HASH  seq (the last ID issued) and bytes (kept)
//	P{T}:sizes         LIST  the cost of each message in the log, oldest first
//	P{T}:pub           the room's pub/sub channel, P being BrokerOptions.Prefix
//
// Reservations and owners are stored as "<len(a)>:<a><b>", which no name
// can make ambiguous. All presence keys share the hash tag {P}, so a Lua
// script can reserve, release, reap and refresh atomically on Redis Cluster
// too; the price is that presence lives on one node of a cluster (history,
// the bulk of the data, spreads over the nodes by room).
//
// # Lua scripts
//
// Each Store operation that writes is one Lua script, run with EVALSHA (and
// EVAL once after a restart flushed the script cache), so that it is atomic
// and costs one round trip:
//
//   - Every presence script first reaps: it ends every lease whose
//     time is up, moves its reservations out of their rooms into the
//     expired hash and keeps the lease id as a tombstone. An expired member
//     is therefore gone for Reserve and Members at once, before any Refresh.
//   - Reserve checks the owner's lease, the name (taken, or held by an
//     expired owner, which it replaces silently) and the room's size, then
//     takes the name and extends the lease.
//   - Refresh extends one lease, and with it every reservation of the
//     server, with one ZADD whatever their number, and hands out the whole
//     expired hash, emptied in the same script: each expired reservation
//     reaches exactly one caller (if that reply is lost on the network, its
//     departure is never announced: at most once).
//   - Append issues the ID with HINCRBY in the same script as the XADD, so
//     IDs become visible in order, and trims the room's log to History
//     messages and RoomBytes bytes, then sets its TTL (HistoryTTL).
//   - After reads the last ID issued, the oldest ID kept and the messages
//     after the given ID in one script, to report completeness at one
//     instant.
//
// Recent and Before are single XREVRANGE commands.
//
// # Clock
//
// Leases are measured in milliseconds by Redis's clock (TIME, read inside
// the scripts), so the servers' clocks do not matter, only that Redis's
// does not jump. The first ID of a room's history is Redis's time in
// microseconds; IDs then increase by one, so they keep increasing when a
// history expires or is lost, and a client resuming from an old ID is told
// that its gap could not be filled.
//
// # Outages
//
// While Redis is unreachable, every Store call fails with an error within
// its context (go-redis retries inside that bound), and so does Publish, so
// that a server can refuse what it cannot record. When Redis comes back
// with its data (a restart with persistence, a failover to an
// up-to-date replica) everything carries on, and leases that ended in the
// meantime are reaped as usual. When it comes back without its data, a
// server's next Refresh or Reserve under a lease id this Store used fails
// with wsroom.ErrLeaseExpired, exactly as if the lease had ended: the
// server takes a new lease id and its members join again.
//
// Presence keys have no TTL and history keys do (HistoryTTL): with
// maxmemory-policy volatile-lru (or volatile-ttl), Redis under memory
// pressure evicts old histories and never a reservation. Do not use an
// allkeys policy: it may evict a part of the presence data.
//
// The Broker's pub/sub connection is opened again by the Broker itself,
// waiting from ReconnectMin up to ReconnectMax (doubling, with jitter)
// between attempts, and every subscription that was live before receives a
// wsroom.PubResync publication once its room is subscribed again, so the
// server catches its members up from the store. A Subscribe that waits
// through an outage returns once the room is subscribed, or with its
// context's error. A connection that stops answering without being closed
// is caught by a PING every PingInterval of silence.
//
// # Redis Cluster
//
// Store keys are laid out for Cluster as above. The Broker uses classic
// pub/sub, which a cluster broadcasts to every node, so its one connection
// may be to any node; it sends each PUBLISH to the master of the channel's
// slot, so that a room's publications pass through one node and every
// subscriber sees them in one order. A redis.Ring is not supported by the
// Broker: its shards do not share pub/sub.
package wsroomredis
