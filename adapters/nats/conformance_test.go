package wsroomnats

import (
	"sync"
	"testing"

	"github.com/nats-io/nats.go"
	"wsroom.dev/wsroom"
	"wsroom.dev/wsroom/brokertest"
)

// harness runs the suite on brokers that new makes, breaking a broker's
// connection through the dialer it was made with.
func harness(new func(t *testing.T) (*Broker, *testDialer)) brokertest.Harness {
	var mu sync.Mutex
	dialers := map[wsroom.Broker]*testDialer{}
	return brokertest.Harness{
		PerBrokerOrder: true,
		New: func(t *testing.T) wsroom.Broker {
			b, d := new(t)
			mu.Lock()
			dialers[b] = d
			mu.Unlock()
			return b
		},
		Disrupt: func(t *testing.T, b wsroom.Broker) {
			mu.Lock()
			d := dialers[b]
			mu.Unlock()
			d.kill()
		},
	}
}

// TestConformance runs brokertest on brokers from OpenBroker, with their
// default reconnect settings, against the shared server.
func TestConformance(t *testing.T) {
	requireNATS(t)
	brokertest.Run(t, harness(func(t *testing.T) (*Broker, *testDialer) {
		return open(t, natsURL(), nil)
	}))
}

// TestConformanceAppConn runs brokertest on brokers from NewBroker, over
// connections made with nats.go's defaults, as an application would.
func TestConformanceAppConn(t *testing.T) {
	requireNATS(t)
	brokertest.Run(t, harness(func(t *testing.T) (*Broker, *testDialer) {
		d := &testDialer{}
		nc, err := nats.Connect(natsURL(), nats.SetCustomDialer(d))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		b, err := NewBroker(nc, &Options{Prefix: "wsroom-app.", Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b, d
	}))
}
