package wsroom

import (
	"context"
	"encoding/json"
	"fmt"
)

// Publication types.
const (
	PubMessage  = "message"  // a chat message: Message is set
	PubJoin     = "join"     // Name joined
	PubLeave    = "leave"    // Name left
	PubPresence = "presence" // Joined and Left, coalesced for a big room
	PubBinary   = "binary"   // Data from Name, relayed as a binary frame
	PubRemove   = "remove"   // the server that holds Name (and Owner, if set) must close it
	PubResync   = "resync"   // from a Broker: publications to the room may have been lost

	// PubPost carries a POST of the HTTP fallback that reached a server
	// other than the one holding its event stream (no sticky sessions): Room
	// is the holder's server topic, Token names the stream, Data is the
	// request body (Binary: one binary message; else frames, one a line),
	// Seq numbers the request for its reply, Origin is the server waiting
	// for it, and Status is 413 when the body was over its limit (Data is
	// then empty and the stream is closed with 1009).
	PubPost = "post"
	// PubPostReply answers a PubPost: Room is the asking server's topic,
	// Seq the request's, and Status the HTTP status for the POST.
	PubPostReply = "post-reply"
)

// Publication is one event on its way from the server where it happened to
// the members of its room on every server, through a Broker. It is plain
// data so that a Broker can carry it between processes; MarshalBinary and
// UnmarshalBinary give it a stable encoding.
type Publication struct {
	Room    string   `json:"room"`
	Type    string   `json:"type"`
	Message Message  `json:"message,omitzero"`
	Name    string   `json:"name,omitempty"`
	Joined  []string `json:"joined,omitempty"`
	Left    []string `json:"left,omitempty"`
	Data    []byte   `json:"data,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	// Owner, for PubRemove, limits the removal to the connection it names.
	Owner Owner `json:"owner,omitzero"`
	// To, when not empty, limits delivery to these members.
	To []string `json:"to,omitempty"`
	// Except lists members the publication skips.
	Except []string `json:"except,omitempty"`
	// Origin identifies the Server that published.
	Origin string `json:"origin,omitempty"`
	// Token, Seq, Status and Binary are set only for PubPost and
	// PubPostReply, which travel on a server's own topic, never a room's.
	Token  string `json:"token,omitempty"`
	Seq    uint64 `json:"seq,omitempty"`
	Status int    `json:"status,omitempty"`
	Binary bool   `json:"binary,omitempty"`
}

// MarshalBinary encodes p for a Broker that carries bytes.
func (p *Publication) MarshalBinary() ([]byte, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return nil, fmt.Errorf("wsroom: encode publication: %w", err)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary encoded.
func (p *Publication) UnmarshalBinary(b []byte) error {
	if err := json.Unmarshal(b, p); err != nil {
		return fmt.Errorf("wsroom: decode publication: %w", err)
	}
	return nil
}

// Broker carries publications to every server that has members in the room,
// at most once: the Store, not the Broker, is the record of what was said.
// The default is an in-process broker; wsroom.dev/adapters hold brokers over
// Redis pub/sub and NATS. The conformance suite
// wsroom.dev/wsroom/brokertest states the contract as tests.
//
// Besides rooms, each Server that serves the HTTP fallback subscribes to a
// topic of its own, which carries the POSTs that other servers forward to it
// (PubPost) and their replies: its name starts with a NUL byte, so that no
// room can have it. A Broker must carry any string as a room's name.
//
// Implementations must be safe for concurrent use. A subscription's deliver
// function receives a room's publications one at a time; the publications
// of one publisher (one Broker value) to one room arrive in the order they
// were published, and the subscribers of one Broker value see one order.
// The in-process broker and the Redis broker give every subscriber of a
// room one order; NATS core does not promise it across servers (see
// brokertest.Harness.PerBrokerOrder). Deliver never blocks for long.
//
// When a subscription may have missed publications (its connection to the
// backend dropped and came back), the broker delivers a publication of type
// PubResync to it once it receives again, before the publications it
// receives from then on; the server then catches its members up from the
// store, from the last message it delivered.
//
// Publications travel by pointer (they are large, and a broadcast's path is
// deep) and are read-only: Publish must not change p nor keep it after it
// returns, and deliver's argument is valid only during the call, except
// its byte slices (Data), which the subscriber may keep: a broker must not
// reuse them.
type Broker interface {
	// Publish sends p to every subscriber of p.Room, including those of
	// this Broker.
	Publish(ctx context.Context, p *Publication) error
	// Subscribe calls deliver for each publication to room until cancel is
	// called. When Subscribe returns, the subscription is live: it receives
	// every publication published after that, from any server. ctx bounds
	// the subscribing, not the subscription. When cancel returns, deliver
	// is no longer running and will not be called again; cancel may be
	// called more than once.
	Subscribe(ctx context.Context, room string, deliver func(*Publication)) (cancel func(), err error)
}
