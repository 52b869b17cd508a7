package wsroomredis

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// hashTag returns the part of key that Redis Cluster hashes: the text
// between the first '{' and the next '}', if not empty, else the whole key.
func hashTag(key string) string {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			return key[i+1 : i+1+j]
		}
	}
	return key
}

// slot is the Redis Cluster slot of key: CRC16 (XMODEM) of its hash tag,
// modulo 16384.
func slot(key string) int {
	var crc uint16
	for _, c := range []byte(hashTag(key)) {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) % 16384
}

// counter counts what goes through a client.
type counter struct {
	calls atomic.Int64 // commands sent
	dials atomic.Int64 // connections attempted
}

func (h *counter) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		h.dials.Add(1)
		return next(ctx, network, addr)
	}
}

func (h *counter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.calls.Add(1)
		return next(ctx, cmd)
	}
}

func (h *counter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.calls.Add(1)
		return next(ctx, cmds)
	}
}

// countCalls counts the round trips c makes from now on.
func countCalls(c *redis.Client) *atomic.Int64 {
	h := &counter{}
	c.AddHook(h)
	return &h.calls
}

// sleep lets time pass for what is being measured (an outage, a storm),
// bounded by the test's context.
func sleep(t testing.TB, d time.Duration) {
	select {
	case <-time.After(d):
	case <-testContext(t).Done():
		t.Fatal("test context ended")
	}
}
