package wsroomprom_test

import (
	"bufio"
	"context"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	wsroomprom "wsroom.dev/adapters/prometheus"
	"wsroom.dev/wsroom"
)

// A Server exporting its metrics on /metrics, next to its chat endpoint.
func ExampleExporter() {
	metrics := wsroomprom.New(nil)
	rooms, err := wsroom.New(&wsroom.Options{Metrics: metrics})
	if err != nil {
		log.Fatal(err)
	}
	metrics.Watch(rooms)
	reg := prometheus.NewRegistry() // or prometheus.MustRegister(metrics) and promhttp.Handler()
	reg.MustRegister(metrics)

	mux := http.NewServeMux()
	mux.Handle("/chat/{room}", rooms)
	mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	srv := httptest.NewServer(mux)
	defer srv.Close()
	defer rooms.Shutdown(context.Background())

	// A member joins.
	ctx := context.Background()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/chat/lobby",
		&websocket.DialOptions{Subprotocols: []string{wsroom.Subprotocol}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.CloseNow()
	c.Write(ctx, websocket.MessageText, []byte(`{"type":"join","name":"ann"}`))
	if _, _, err := c.Read(ctx); err != nil { // the welcome
		log.Fatal(err)
	}

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		log.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		switch line := sc.Text(); {
		case strings.HasPrefix(line, "wsroom_connections "),
			strings.HasPrefix(line, "wsroom_members "),
			strings.HasPrefix(line, "wsroom_rooms "),
			strings.HasPrefix(line, `wsroom_departures_total{reason="slow"}`):
			fmt.Println(line)
		}
	}
	// Output:
	// wsroom_connections 1
	// wsroom_departures_total{reason="slow"} 0
	// wsroom_members 1
	// wsroom_rooms 1
}
