package wsroomredis

import (
	"strconv"
	"strings"
)

// keys names the keys of a Store (see the package documentation for the
// layout). Presence keys share the hash tag {prefix}; a room's history keys
// share the hash tag of the room.
type keys struct {
	prefix   string // the Prefix option, as is: history keys start with it
	presence string // "{" + prefix + "}": presence keys start with it
	leases   string // ZSET server -> end of its lease (Unix ms)
	dead     string // ZSET server -> end of its lease, for leases that ended
	expired  string // HASH reservation -> owner: reaped, not yet handed out
}

func newKeys(prefix string) keys {
	p := "{" + prefix + "}"
	return keys{prefix: prefix, presence: p, leases: p + "leases", dead: p + "dead", expired: p + "expired"}
}

// members is the ZSET (all scores 0, so ordered by name) of a room's names.
func (k *keys) members(room string) string { return k.presence + "members:" + room }

// holders is the HASH name -> owner of a room.
func (k *keys) holders(room string) string { return k.presence + "holders:" + room }

// lease is the SET of the reservations held under a server's lease.
func (k *keys) lease(server string) string { return k.presence + "lease:" + server }

// log is the STREAM of a room's history, with IDs "<message ID>-0".
func (k *keys) log(room string) string { return k.prefix + "{" + tag(room) + "}:log" }

// meta is the HASH of a room's history: seq, the last ID issued, and bytes,
// what the log holds.
func (k *keys) meta(room string) string { return k.prefix + "{" + tag(room) + "}:meta" }

// sizes is the LIST of the costs of the messages in a room's log, oldest
// first.
func (k *keys) sizes(room string) string { return k.prefix + "{" + tag(room) + "}:sizes" }

// channel is the pub/sub channel of a room.
func channel(prefix, room string) string { return prefix + "{" + tag(room) + "}:pub" }

// tag encodes a room name for use inside a hash tag: '%', '{' and '}' are
// percent-encoded, so the tag is the whole name and ends where it should,
// and the empty name becomes "%" (an empty tag would make Redis Cluster hash
// the whole key). The encoding is one-to-one.
func tag(room string) string {
	if room == "" {
		return "%"
	}
	if !strings.ContainsAny(room, "%{}") {
		return room
	}
	var b strings.Builder
	b.Grow(len(room) + 8)
	for i := 0; i < len(room); i++ {
		switch c := room[i]; c {
		case '%':
			b.WriteString("%25")
		case '{':
			b.WriteString("%7B")
		case '}':
			b.WriteString("%7D")
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// pair encodes two strings as one, "<len(a)>:<a><b>", which the Lua
// scripts split again. It names a reservation (room, name) and an owner
// (server, conn).
func pair(a, b string) string {
	return strconv.Itoa(len(a)) + ":" + a + b
}

// unpair splits what pair encoded.
func unpair(s string) (a, b string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i < 0 {
		return "", "", false
	}
	n, err := strconv.Atoi(s[:i])
	if err != nil || n < 0 || n > len(s)-i-1 {
		return "", "", false
	}
	return s[i+1 : i+1+n], s[i+1+n:], true
}
