// Package wsroomnats is a wsroom.Broker over NATS core publish/subscribe,
// for running a chat across several servers: each server's Broker
// publishes the events of its rooms, and receives those of the rooms it has
// members in, through a NATS server (or cluster).
//
//	broker, err := wsroomnats.OpenBroker(ctx, "nats://127.0.0.1:4222", nil)
//	...
//	defer broker.Close()
//	rooms, err := wsroom.New(&wsroom.Options{Broker: broker, Store: sharedStore})
//
// OpenBroker dials and owns its connection; NewBroker uses the
// application's own *nats.Conn and leaves it open. Delivery is at most
// once: the Store, not the Broker, is the record of what was said, and a
// subscription that may have missed publications is told so with a
// PubResync, after which its server catches its members up from the store.
//
// # Subjects
//
// A room's publications go to Options.Prefix ("wsroom." by default)
// followed by the room's name escaped into one subject token: ASCII
// letters, digits and '-' stand for themselves, and every other byte of the
// name's UTF-8 encoding, '_' included, is '_' and two upper-case hex
// digits; the empty name is "_". So "lobby" is "wsroom.lobby", "a.b c" is
// "wsroom.a_2Eb_20c", "*" is "wsroom._2A": no room name holds a dot, a
// wildcard or white space, so none can reach or match another room's
// subject, and the escape is reversible. A name whose token would be
// longer than 1,024 bytes is refused with wsroom.ErrBadName (wsroom's room
// names, 64 characters at most, take 768 at most). Monitor a room with
// `nats sub 'wsroom.lobby'`, or all of them with `nats sub 'wsroom.>'`.
//
// Each Broker holds one NATS subscription per room it subscribes to, shared
// by its subscriptions to the room; the last cancel unsubscribes.
//
// Subscribe returns once the NATS server the Broker is connected to has the
// subscription. In a NATS cluster, the other nodes learn of it a moment
// later (typically well under a millisecond, longer across gateways): a
// publication sent through another node in that moment can miss it, and
// no PubResync says so. Brokers connected to one NATS server have no such
// gap.
//
// # Encoding and size
//
// A publication travels as Publication.MarshalBinary encodes it (JSON;
// binary Data in base64, so 4/3 of its size). The NATS server refuses
// messages over its max_payload, 1 MB (1,048,576 bytes) by default: Publish
// of a larger publication fails at once with ErrTooLarge, saying both
// sizes. Binary messages up to about 780 KB fit the default; for wsroom's
// binary messages of up to 1 MiB, set `max_payload: 2MB` in the NATS
// server's configuration (and on every server of a cluster), or keep
// wsroom's MaxMessageBytes under 760 KiB.
//
// # Ordering
//
// One publisher's publications to a room reach every subscriber in the
// order Publish was called (NATS keeps the order of one connection's
// messages), and deliver runs one publication at a time per subscription.
// A Broker receives its own publications through the NATS server like any
// other (the connection must not be NoEcho), and all of a Broker's
// subscriptions to a room see exactly one order, that of the room's NATS
// subscription.
//
// Across Brokers, the NATS server does not promise one order: two
// publications from different servers within microseconds of each other
// can reach two servers in opposite orders (the NATS server delivers each
// publisher's messages on that publisher's own goroutine). Members on
// different servers can then see two such messages swapped; message IDs,
// from the store, tell the true order. This is weaker than the
// wsroom.Broker contract, "every subscriber of a room sees one order":
// brokertest's OneOrderForAll, which publishes 200 publications from each
// of two Brokers at once, fails on it now and then (2 to 6 runs in 100).
//
// # Reconnecting, and what an outage does
//
// nats.go reconnects by itself. A Broker from OpenBroker retries without
// limit, waiting between rounds of attempts from 50-100 ms, doubling up to
// 1-2 s (jittered, so that servers do not come back in step); one from
// NewBroker follows the application's connection options.
//
// While the connection is down:
//   - Publish queues publications in nats.go's reconnect buffer (8 MiB by
//     default; nats.ReconnectBufSize) and returns nil; they are sent when
//     the connection is back. Once the buffer is full, Publish fails at
//     once with an error wrapping nats.ErrReconnectBufExceeded.
//   - Subscribe cannot make a subscription live, so it waits for the
//     connection and fails when its context ends (or after Options.Timeout,
//     if the context has no deadline).
//   - Publications sent by other servers are lost for this one.
//
// Publish never waits for the server to answer. It blocks only when
// nats.go's write buffer (32 KiB) is full and the server does not read (a
// hung host): then for at most the connection's write deadline
// (Options.Timeout for OpenBroker's connection, a minute by nats.go's
// default), after which that Publish fails and the connection counts as
// lost, as above. A dead host that sends no reset is found by the pings
// (within a minute for OpenBroker's connection).
//
// After a reconnect, nats.go resends the subscriptions; the Broker makes a
// round trip to be sure the server has them, then delivers one PubResync to
// every subscription, before any publication received after that. A
// subscription whose deliver falls so far behind that more than
// Options.MaxPending publications wait for it loses publications too
// (nats.go drops them as a slow consumer): the room's subscriptions get a
// PubResync as well. After a resync, publications that the store already
// returned may still arrive (this server's own, sent from the reconnect
// buffer, for one): the server should skip message IDs it has delivered.
//
// # Goroutines
//
// A Broker runs one goroutine, which watches the connection's status;
// nats.go runs one per NATS subscription (per room), which calls deliver.
// Close cancels every subscription, waits for a deliver in progress,
// stops the Broker's goroutine and, for OpenBroker, closes the connection.
package wsroomnats
