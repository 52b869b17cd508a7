// Package wsroompg is a wsroom.Store kept in PostgreSQL: member names reserved across every server of a cluster, under server
// leases, and a bounded message history per room that survives restarts.
//
//	store, err := wsroompg.OpenStore(ctx, "postgres://app@db/chat", nil)
//	if err != nil {
//		return err
//	}
//	defer store.Close()
//	rooms, err := wsroom.New(&wsroom.Options{Store: store /* , Broker: … */})
//
// NewStore takes the application's own *pgxpool.Pool instead. Every server
// that shares the database (and Options.Schema) shares the rooms. It is
// tested with PostgreSQL 15. The store starts no goroutine; every method is bounded by its context and
// safe for concurrent use by many goroutines and many servers.
//
// # Schema
//
// Migrate (run by the constructors unless Options.SkipMigrate) creates the
// schema, default "wsroom", and its tables, and records the version in
// migrations. It runs in one transaction under an advisory lock of the
// schema, so servers that start together migrate one after the other.
//
//	leases        server text PK, expires timestamptz, dead boolean
//	reservations  (room, name) PK, server, conn; index on server
//	rooms         room PK, first_id, last_id, dropped, prev_dropped: the history counter
//	messages      (room, id) PK, sender bytea, body bytea, sent timestamptz
//
// Room and member names are text COLLATE "C", so that Members sorts them
// byte-wise, as Go compares strings. Message fields are bytea: a message
// may hold any bytes, NUL included, which text cannot
// (convert_from(body, 'UTF8') reads it in SQL).
//
// # Presence
//
// A reservation lives as long as its server's lease: one row in leases,
// whose expires Refresh moves, in one statement whatever the number of
// reservations. Leases are measured by the database's clock
// (statement_timestamp()), never by a server's, so servers with skewed
// clocks agree on which lease has ended. A reservation whose lease has
// ended is ignored by Members, Reserve and Release at once.
//
// Reserve runs in one transaction, sent in one round trip and committed
// (or rolled back, when it is refused) in a second: it takes a
// transaction-level advisory lock of the room, so that the Reserves of a
// room decide one after the other and the member limit holds; it locks the
// row of the name, if any, and decides: the caller holds the name already,
// another live holder has it (taken, unless Replace), the room is full, or
// the name is free or its holder's lease ended (take it); then it starts or
// extends the lease, whose row lock stops a Refresh from reaping the lease
// under it. Release is one DELETE of the row owned by its
// caller, under a live lease.
//
// Refresh is one transaction in one round trip: it extends (or starts) the
// caller's lease, marks every ended lease dead, deletes the reservations
// of dead leases and returns them, and forgets dead leases an hour after
// they ended. Deleting a row is what hands a departure out: two Refreshes
// cannot both delete it, and a Reserve that takes a name over from an ended
// lease updates the row, so that no Refresh returns it. Rows are locked
// with SKIP LOCKED, so a Refresh never waits for another's reaping. A dead lease is
// a tombstone: its server's next Refresh and Reserve fail with
// wsroom.ErrLeaseExpired. The locks are taken in one order (room, name,
// lease), and Refresh waits for no lock after its own lease's, so the
// statements cannot deadlock.
//
// # History
//
// A room's counter row in rooms gives each Append its ID (last_id + 1) and
// stays locked until the Append commits, so the appends of a room commit
// one after the other in ID order: once a message is visible, every
// message with a lower ID is visible too, which a client resuming After
// the highest ID it saw relies on (a sequence would not do: a later ID can
// commit first). IDs have no gaps. The first ID of a room is the
// database's clock in microseconds, so if the counter row is ever deleted,
// the room starts again above the IDs it issued.
//
// The history is bounded per room by Options.History: each Append, in its
// own transaction, deletes the messages that fall out of the newest
// History, by ID range on the primary key (the range the counter row
// records in prev_dropped and dropped: one message, once the room is
// full), so a busy room stays at its bound without a background job and
// the delete costs an Append the same whatever the room's size. Reads use
// the primary key backwards with a LIMIT: the newest page, the page before
// an ID and the resume after an ID read only the rows they return, in a
// room of millions of messages too. The space of dropped messages is
// reclaimed by (auto)vacuum, as for any table with deletes. Rooms
// themselves are not forgotten: an idle room keeps its last History
// messages.
//
// After reports complete when no message after the given ID was dropped
// by the bound, none was cut by its limit, and the ID is not above the
// room's newest; in a room that never dropped a message, After(0) is
// complete.
//
// The appends of one room are serialised by the counter's lock, commit
// (and its WAL flush) included, so one room sustains about one append per
// commit latency of the database, whatever the number of senders; appends
// to different rooms run in parallel and share group commits.
//
// # Outages
//
// While the database cannot be reached, every call fails with an error
// that wraps the driver's, and returns when its context ends, whether the
// server refuses connections or hangs; the pool connects again by itself
// when the database is back, and no call needs a retry to recover. An
// Append that returned an ID was committed: with the server's default
// synchronous_commit, it survives a crash of the database. An Append (or a
// Reserve, Release or Refresh) that failed as the connection broke may
// have been committed all the same: a failed Append may leave a message
// with no sender told its ID, and a Refresh that failed after its commit
// loses the departures it was handing out (they are not handed out again).
//
// Leases run on the database's clock through an outage: if it lasts
// longer than a lease, the lease has ended when the database is back, and
// its server's next Refresh returns ErrLeaseExpired with the server's
// reservations, whose departures it announces; the server then takes a new
// lease id and its members join again.
package wsroompg
