package wsroomredis

import (
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"
)

// The Lua scripts of a Store. Each runs atomically on the server (EVALSHA,
// falling back to EVAL once after a restart), and reads the time from the
// server's own clock (TIME), so that the servers' clocks do not matter.
//
// Every presence script declares KEYS[1..3] = leases, dead, expired and
// gets the presence prefix "{<Prefix>}" as ARGV[1]; it builds the names of
// the other presence keys it reaps from that prefix. They all share the
// hash tag {<Prefix>}, so that Redis Cluster keeps them in one slot.

// tombstoneTTL is how long an ended lease is remembered, so that its server
// learns it was lost.
const tombstoneTTL = time.Hour

// presenceLib is the start of every presence script: helpers, and reap,
// which ends every lease whose time is up. The reservations of an ended
// lease leave their rooms at once and wait in the expired hash until a
// Refresh hands them out; the lease id is kept as a tombstone for
// tombstoneTTL (Refresh, which every server calls periodically, forgets the
// older ones).
var presenceLib = `
if redis.replicate_commands then redis.replicate_commands() end
local P = ARGV[1]
local function int(n) return string.format('%d', n) end
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function unpair(s)
  local i = string.find(s, ':', 1, true)
  local n = tonumber(string.sub(s, 1, i - 1))
  return string.sub(s, i + 1, i + n), string.sub(s, i + n + 1)
end
local function reap(now)
  local ended = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', '(' .. int(now), 'WITHSCORES')
  for i = 1, #ended, 2 do
    local srv, ends = ended[i], ended[i + 1]
    local lkey = P .. 'lease:' .. srv
    for _, rk in ipairs(redis.call('SMEMBERS', lkey)) do
      local room, name = unpair(rk)
      local hkey = P .. 'holders:' .. room
      local owner = redis.call('HGET', hkey, name)
      if owner and unpair(owner) == srv then
        redis.call('HDEL', hkey, name)
        redis.call('ZREM', P .. 'members:' .. room, name)
        redis.call('HSET', KEYS[3], rk, owner)
      end
    end
    redis.call('DEL', lkey)
    redis.call('ZREM', KEYS[1], srv)
    redis.call('ZADD', KEYS[2], ends, srv)
  end
end
-- forget drops the tombstones of leases that ended over tombstoneTTL ago.
local function forget(now)
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', '(' .. int(now - ` + strconv.FormatInt(tombstoneTTL.Milliseconds(), 10) + `))
end
-- lost reports whether srv's lease has ended: it is a tombstone, or this
-- process had a lease under that id that Redis no longer knows (its data
-- was lost), which it then records as a tombstone.
local function lost(srv, known, now)
  if redis.call('ZSCORE', KEYS[2], srv) then return true end
  if known == '1' and not redis.call('ZSCORE', KEYS[1], srv) then
    redis.call('ZADD', KEYS[2], int(now), srv)
    return true
  end
  return false
end
`

// reserveScript: KEYS[4..6] = members(room), holders(room), lease(server);
// ARGV[2..9] = name, owner, server, reservation, max, lease ms, replace,
// known. Returns {"ok", replaced owner or ""}, {"taken"}, {"full"} or
// {"lost"}.
var reserveScript = redis.NewScript(presenceLib + `
local name, owner, srv, rk = ARGV[2], ARGV[3], ARGV[4], ARGV[5]
local now = now_ms()
reap(now)
if lost(srv, ARGV[9], now) then return {'lost'} end
local replaced = ''
local cur = redis.call('HGET', KEYS[5], name)
if cur then
  if cur ~= owner then
    if ARGV[8] ~= '1' then return {'taken'} end
    replaced = cur
    redis.call('SREM', P .. 'lease:' .. unpair(cur), rk)
  end
else
  local max = tonumber(ARGV[6])
  if max > 0 and redis.call('ZCARD', KEYS[4]) >= max then return {'full'} end
  -- A holder whose lease ended is replaced: its departure is not due.
  local gone = redis.call('HGET', KEYS[3], rk)
  if gone then
    replaced = gone
    redis.call('HDEL', KEYS[3], rk)
  end
  redis.call('ZADD', KEYS[4], 0, name)
end
redis.call('HSET', KEYS[5], name, owner)
redis.call('SADD', KEYS[6], rk)
local ends = now + tonumber(ARGV[7])
if ends > tonumber(redis.call('ZSCORE', KEYS[1], srv) or 0) then
  redis.call('ZADD', KEYS[1], int(ends), srv)
end
return {'ok', replaced}
`)

// releaseScript: KEYS[4..6] = members(room), holders(room), lease(server);
// ARGV[2..4] = name, owner, reservation. Returns 1 if released, 0 if the
// owner did not hold the name.
var releaseScript = redis.NewScript(presenceLib + `
reap(now_ms())
if redis.call('HGET', KEYS[5], ARGV[2]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[5], ARGV[2])
redis.call('ZREM', KEYS[4], ARGV[2])
redis.call('SREM', KEYS[6], ARGV[4])
return 1
`)

// membersScript: KEYS[4] = members(room); ARGV[2..3] = the lexicographic
// start ("-" or "(" .. after), limit (-1: all). Returns {names, total}.
var membersScript = redis.NewScript(presenceLib + `
reap(now_ms())
local names = redis.call('ZRANGEBYLEX', KEYS[4], ARGV[2], '+', 'LIMIT', 0, ARGV[3])
return {names, redis.call('ZCARD', KEYS[4])}
`)

// refreshScript: ARGV[2..4] = server, lease ms, known. Returns {"ok" or
// "lost", expired} where expired is the flat field/value list of the
// expired hash, which it empties.
var refreshScript = redis.NewScript(presenceLib + `
local srv = ARGV[2]
local now = now_ms()
local ends = redis.call('ZSCORE', KEYS[1], srv)
local ended = (ends and tonumber(ends) < now) or lost(srv, ARGV[4], now)
reap(now)
forget(now)
local expired = redis.call('HGETALL', KEYS[3])
if #expired > 0 then redis.call('DEL', KEYS[3]) end
if ended then return {'lost', expired} end
redis.call('ZADD', KEYS[1], int(now + tonumber(ARGV[3])), srv)
return {'ok', expired}
`)

// appendScript: KEYS = log(room), meta(room), sizes(room); ARGV = from,
// text, time (Unix ms, "" for none), cost, most messages (-1: no bound),
// most bytes (-1: no bound), TTL ms (0: none). Returns the new message's ID
// as a string.
//
// The ID comes from HINCRBY on the room's seq in the same script as the
// XADD, so IDs become visible in order. A room without a seq starts it at
// the current time in microseconds (and above its log's last ID), so that
// IDs keep increasing after the history expired or was lost. The sizes
// list holds the cost of each message in the log, oldest first, so that
// trimming need not read the messages it drops (reading the head of a
// stream trimmed one entry at a time costs a scan of the entries already
// marked deleted).
var appendScript = redis.NewScript(`
if redis.replicate_commands then redis.replicate_commands() end
local log, meta, sizes = KEYS[1], KEYS[2], KEYS[3]
local function int(n) return string.format('%d', n) end
local seq = redis.call('HGET', meta, 'seq')
if not seq then
  local t = redis.call('TIME')
  local start = tonumber(t[1]) * 1000000 + tonumber(t[2])
  local last = redis.call('XREVRANGE', log, '+', '-', 'COUNT', 1)[1]
  if last then
    start = math.max(start, tonumber(string.match(last[1], '^%d+')))
  end
  redis.call('HSET', meta, 'seq', int(start), 'bytes', 0)
end
local id = int(redis.call('HINCRBY', meta, 'seq', 1))
redis.call('XADD', log, id .. '-0', 'f', ARGV[1], 't', ARGV[2], 'ts', ARGV[3])
local n = redis.call('XLEN', log)
local bytes = tonumber(ARGV[4])
if n > 1 then
  bytes = bytes + tonumber(redis.call('HGET', meta, 'bytes') or 0)
else
  redis.call('DEL', sizes) -- a new log: older sizes are stale
end
redis.call('RPUSH', sizes, ARGV[4])
local maxn, maxb = tonumber(ARGV[5]), tonumber(ARGV[6])
local drop = 0
if maxn >= 1 and n > maxn then drop = n - maxn end
for _ = 1, drop do
  bytes = bytes - tonumber(redis.call('LPOP', sizes) or 0)
end
while maxb >= 0 and bytes > maxb and n - drop > 1 do
  bytes = bytes - tonumber(redis.call('LPOP', sizes) or 0)
  drop = drop + 1
end
if drop > 0 then redis.call('XTRIM', log, 'MAXLEN', n - drop) end
redis.call('HSET', meta, 'bytes', int(bytes))
local ttl = tonumber(ARGV[7])
if ttl > 0 then
  redis.call('PEXPIRE', log, ttl)
  redis.call('PEXPIRE', meta, ttl)
  redis.call('PEXPIRE', sizes, ttl)
end
return id
`)

// afterScript: KEYS = log(room), meta(room); ARGV = the exclusive start
// "<id>-1", count. Returns {last ID issued or "0", oldest ID kept or "",
// the newest count entries after the start, newest first}, all read at one
// instant.
var afterScript = redis.NewScript(`
local seq = redis.call('HGET', KEYS[2], 'seq') or '0'
local oldest = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
local msgs = redis.call('XREVRANGE', KEYS[1], '+', ARGV[1], 'COUNT', ARGV[2])
return {seq, oldest and oldest[1] or '', msgs}
`)
