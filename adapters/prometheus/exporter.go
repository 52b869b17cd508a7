package wsroomprom

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"wsroom.dev/wsroom"
)

// Options configures an Exporter. The zero value (or nil) is ready to use.
type Options struct {
	// ConstLabels are added to every metric: set them to tell apart
	// several Servers of one process. Default none.
	ConstLabels prometheus.Labels

	// RoomSizes exports wsroom_room_members{room}, a gauge per room. Each
	// room is a series and clients name rooms: see the package
	// documentation on cardinality. Default false.
	RoomSizes bool

	// MaxRoomSeries is the most rooms RoomSizes exports per scrape, the
	// largest first. Default 100; negative: every room.
	MaxRoomSeries int

	// Buckets are the upper bounds, in seconds, of the backend call
	// latency histogram. Default 100µs to about 3.3s, doubling (16
	// buckets).
	Buckets []float64
}

// Exporter is a wsroom.Metrics and a prometheus.Collector. It is safe for
// concurrent use; its wsroom.Metrics methods never block.
type Exporter struct {
	opts Options

	server atomic.Pointer[wsroom.Server]

	departures *prometheus.CounterVec
	refusals   *prometheus.CounterVec
	calls      *prometheus.HistogramVec
	errs       *prometheus.CounterVec
	left       [wsroom.ReasonLost + 1]prometheus.Counter
	codes      sync.Map // refusal code -> prometheus.Counter
	ops        sync.Map // op -> *backendOp

	connections, members, rooms                 *prometheus.Desc
	recvMsgs, recvBytes, sentFrames, sentBytes  *prometheus.Desc
	deliveries, slow, queuedEvents, queuedBytes *prometheus.Desc
	roomMembers                                 *prometheus.Desc
}

type backendOp struct {
	d   prometheus.Observer
	err prometheus.Counter
}

var (
	_ wsroom.Metrics       = (*Exporter)(nil)
	_ prometheus.Collector = (*Exporter)(nil)
)

// New returns an Exporter configured by opts, which may be nil.
func New(opts *Options) *Exporter {
	var o Options
	if opts != nil {
		o = *opts
	}
	if o.MaxRoomSeries == 0 {
		o.MaxRoomSeries = 100
	}
	if o.Buckets == nil {
		o.Buckets = prometheus.ExponentialBuckets(0.0001, 2, 16)
	}
	cl := o.ConstLabels
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc("wsroom_"+name, help, labels, cl)
	}
	e := &Exporter{
		opts: o,
		departures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsroom_departures_total", ConstLabels: cl,
			Help: "Members that left a room, by reason (closed, slow, timeout, shutdown, removed, policy, error, replaced, lost).",
		}, []string{"reason"}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsroom_refusals_total", ConstLabels: cl,
			Help: "Upgrades refused for a connection cap (code 429 or 503) and frames refused (code rate_limited).",
		}, []string{"code"}),
		calls: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "wsroom_backend_call_duration_seconds", ConstLabels: cl, Buckets: o.Buckets,
			Help: "Duration of Store and Broker calls, by method.",
		}, []string{"op"}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "wsroom_backend_errors_total", ConstLabels: cl,
			Help: "Store and Broker calls that failed, by method.",
		}, []string{"op"}),

		connections:  desc("connections", "Open WebSocket connections, chat and echo."),
		members:      desc("members", "Members joined to a room on this server."),
		rooms:        desc("rooms", "Rooms with a member on this server."),
		recvMsgs:     desc("received_messages_total", "Messages received from clients."),
		recvBytes:    desc("received_bytes_total", "Payload bytes of the messages received from clients."),
		sentFrames:   desc("sent_frames_total", "Frames written to members and echo clients."),
		sentBytes:    desc("sent_bytes_total", "Bytes of the frames written to clients, headers included."),
		deliveries:   desc("deliveries_total", "Events queued for members."),
		slow:         desc("slow_drops_total", "Members closed (1013) because they could not keep up."),
		queuedEvents: desc("queued_events", "Events waiting in the members' queues, counting those being written."),
		queuedBytes:  desc("queued_bytes", "Bytes waiting in the members' queues, counting those being written."),
		roomMembers:  desc("room_members", "Members of a room on this server (the largest rooms, up to a bound).", "room"),
	}
	// Every reason and the core's refusal codes exist from the first
	// scrape, at zero, so that rates and alerts see them.
	for r := wsroom.ReasonClosed; r <= wsroom.ReasonLost; r++ {
		e.left[r] = e.departures.WithLabelValues(r.String())
	}
	for _, code := range []string{"429", "503", wsroom.CodeRateLimited} {
		e.codes.Store(code, e.refusals.WithLabelValues(code))
	}
	return e
}

// Watch makes the Exporter read s's Stats and queues when scraped. Until
// it is called, only what the Exporter is told as wsroom.Metrics is
// exported. A later call replaces the Server.
func (e *Exporter) Watch(s *wsroom.Server) { e.server.Store(s) }

// Left counts a departure; part of wsroom.Metrics.
func (e *Exporter) Left(reason wsroom.LeaveReason) {
	if int(reason) < len(e.left) && e.left[reason] != nil {
		e.left[reason].Inc()
		return
	}
	e.departures.WithLabelValues(reason.String()).Inc()
}

// Refused counts a refusal; part of wsroom.Metrics.
func (e *Exporter) Refused(code string) {
	if c, ok := e.codes.Load(code); ok {
		c.(prometheus.Counter).Inc()
		return
	}
	c, _ := e.codes.LoadOrStore(code, e.refusals.WithLabelValues(code))
	c.(prometheus.Counter).Inc()
}

// Backend times a Store or Broker call and counts its failure; part of
// wsroom.Metrics.
func (e *Exporter) Backend(op string, d time.Duration, err error) {
	b, ok := e.ops.Load(op)
	if !ok {
		b, _ = e.ops.LoadOrStore(op, &backendOp{d: e.calls.WithLabelValues(op), err: e.errs.WithLabelValues(op)})
	}
	bo := b.(*backendOp)
	bo.d.Observe(d.Seconds())
	if failed(err) {
		bo.err.Inc()
	}
}

// failed reports whether a backend call's error is a failure rather than
// an answer (a name taken, a full room) or the server's own cancellation.
func failed(err error) bool {
	switch {
	case err == nil,
		errors.Is(err, wsroom.ErrNameTaken),
		errors.Is(err, wsroom.ErrRoomFull),
		errors.Is(err, wsroom.ErrNotMember),
		errors.Is(err, context.Canceled):
		return false
	}
	return true
}

// Describe sends the descriptors of every metric; part of
// prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	e.departures.Describe(ch)
	e.refusals.Describe(ch)
	e.calls.Describe(ch)
	e.errs.Describe(ch)
	for _, d := range []*prometheus.Desc{
		e.connections, e.members, e.rooms, e.recvMsgs, e.recvBytes, e.sentFrames,
		e.sentBytes, e.deliveries, e.slow, e.queuedEvents, e.queuedBytes,
	} {
		ch <- d
	}
	if e.opts.RoomSizes {
		ch <- e.roomMembers
	}
}

// Collect reads the watched Server's counters, gauges and queues; part of
// prometheus.Collector.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	e.departures.Collect(ch)
	e.refusals.Collect(ch)
	e.calls.Collect(ch)
	e.errs.Collect(ch)
	s := e.server.Load()
	if s == nil {
		return
	}
	st := s.Stats()
	gauge := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(v))
	}
	counter := func(d *prometheus.Desc, v int64) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v))
	}
	gauge(e.connections, st.Connections)
	gauge(e.members, st.Members)
	gauge(e.rooms, st.Rooms)
	counter(e.recvMsgs, st.FramesIn)
	counter(e.recvBytes, st.BytesIn)
	counter(e.sentFrames, st.FramesOut)
	counter(e.sentBytes, st.BytesOut)
	counter(e.deliveries, st.Deliveries)
	counter(e.slow, st.Slow)
	events, bytes := s.QueueDepth()
	gauge(e.queuedEvents, events)
	gauge(e.queuedBytes, bytes)
	if e.opts.RoomSizes {
		e.collectRooms(ch, s)
	}
}

type roomSize struct {
	name string
	n    int
}

// collectRooms exports the largest rooms' sizes, up to MaxRoomSeries.
func (e *Exporter) collectRooms(ch chan<- prometheus.Metric, s *wsroom.Server) {
	var rooms []roomSize
	s.RoomSizes(func(room string, n int) bool {
		rooms = append(rooms, roomSize{room, n})
		return true
	})
	if limit := e.opts.MaxRoomSeries; limit > 0 && len(rooms) > limit {
		slices.SortFunc(rooms, func(a, b roomSize) int {
			return cmp.Or(cmp.Compare(b.n, a.n), cmp.Compare(a.name, b.name))
		})
		rooms = rooms[:limit]
	}
	for _, r := range rooms {
		ch <- prometheus.MustNewConstMetric(e.roomMembers, prometheus.GaugeValue, float64(r.n), r.name)
	}
}
