//go:build unix

package wsroomredis

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/redis/go-redis/v9"

	"wsroom.dev/internal/assert"
	"wsroom.dev/wsroom"
	"wsroom.dev/wsroom/brokertest"
	"wsroom.dev/wsroom/storetest"
)

// startPrivateCluster starts a Redis Cluster of three masters, each
// serving a third of the slots, and returns a client of it.
func startPrivateCluster(t *testing.T) (*redis.ClusterClient, []*privateRedis) {
	t.Helper()
	ctx := testContext(t)
	var nodes []*privateRedis
	var addrs []string
	for range 3 {
		n := startPrivateRedis(t, true)
		nodes = append(nodes, n)
		addrs = append(addrs, fmt.Sprintf("127.0.0.1:%d", n.port))
	}
	for i, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		assert.Success(t, c.ClusterAddSlotsRange(ctx, i*16384/3, (i+1)*16384/3-1).Err())
		if i > 0 {
			assert.Success(t, c.Do(ctx, "cluster", "meet", "127.0.0.1", nodes[0].port, nodes[0].busPort).Err())
		}
		c.Close()
	}
	for _, addr := range addrs {
		c := redis.NewClient(&redis.Options{Addr: addr})
		waitUntil(t, "cluster_state:ok on "+addr, func() bool {
			info, err := c.ClusterInfo(ctx).Result()
			return err == nil && strings.Contains(info, "cluster_state:ok") && strings.Contains(info, "cluster_known_nodes:3")
		})
		c.Close()
	}
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: addrs, ContextTimeoutEnabled: true})
	t.Cleanup(func() { cc.Close() })
	return cc, nodes
}

// TestCluster runs both conformance suites on a Redis Cluster: every script
// touches keys of one slot only (Redis refuses others with CROSSSLOT), and
// a room's publications keep their order across nodes. It does not run in
// parallel with the other tests, for the reason TestStoreConformance does
// not.
func TestCluster(t *testing.T) {
	cc, nodes := startPrivateCluster(t)
	t.Run("Store", func(t *testing.T) {
		storetest.Run(t, func(t *testing.T, history int) wsroom.Store {
			s, err := NewStore(cc, &StoreOptions{Prefix: "wsroomtest-" + random() + ":", History: history})
			assert.Success(t, err)
			return s
		})
	})
	t.Run("Broker", func(t *testing.T) {
		brokertest.Run(t, brokertest.Harness{
			New: func(t *testing.T) wsroom.Broker {
				b, err := NewBroker(cc, &BrokerOptions{ClientName: "wsroomtest-broker-" + random()})
				assert.Success(t, err)
				t.Cleanup(func() { b.Close() })
				return b
			},
			Disrupt: func(t *testing.T, b wsroom.Broker) {
				ctx := testContext(t)
				name := b.(*Broker).opts.ClientName
				killed := 0
				for _, n := range nodes {
					c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", n.port)})
					for _, conn := range pubsubConns(ctx, t, c, name) {
						k, err := c.ClientKillByFilter(ctx, "ID", conn["id"]).Result()
						assert.Success(t, err)
						killed += int(k)
					}
					c.Close()
				}
				if killed != 1 {
					t.Fatalf("killed %d connections named %q, want the broker's one", killed, name)
				}
			},
		})
	})
	// The history keys of rooms spread over the nodes.
	ctx := context.Background()
	s, err := NewStore(cc, &StoreOptions{Prefix: "wsroomtest-" + random() + ":"})
	assert.Success(t, err)
	used := map[string]bool{}
	for i := range 30 {
		room := fmt.Sprint("spread-", i)
		_, err := s.Append(ctx, room, wsroom.Message{Text: "x"})
		assert.Success(t, err)
		for _, n := range nodes {
			c := redis.NewClient(&redis.Options{Addr: fmt.Sprintf("127.0.0.1:%d", n.port)})
			if c.Exists(ctx, s.keys.log(room)).Val() == 1 {
				used[n.url] = true
			}
			c.Close()
		}
	}
	if len(used) != len(nodes) {
		t.Fatalf("30 rooms' histories on %d of %d nodes", len(used), len(nodes))
	}
}
