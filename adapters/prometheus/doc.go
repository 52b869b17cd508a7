// Package wsroomprom exports what a wsroom.Server measures to Prometheus.
//
// An Exporter is both the server's wsroom.Metrics (told of departures,
// refusals and every Store and Broker call as they happen) and a
// prometheus.Collector (reading Server.Stats and Server.QueueDepth when
// scraped). Give it to the Server through Options.Metrics, point it at the
// Server with Watch, and register it:
//
//	metrics := wsroomprom.New(nil)
//	rooms, err := wsroom.New(&wsroom.Options{Metrics: metrics})
//	if err != nil { ... }
//	metrics.Watch(rooms)
//	prometheus.MustRegister(metrics)
//	mux.Handle("GET /metrics", promhttp.Handler())
//
// # Metrics
//
// Every name starts with wsroom_ and is stable:
//
//	wsroom_connections                       gauge    open WebSocket connections, chat and echo
//	wsroom_members                           gauge    members joined to a room on this server
//	wsroom_rooms                             gauge    rooms with a member on this server
//	wsroom_received_messages_total           counter  messages received from clients
//	wsroom_received_bytes_total              counter  their bytes (payload)
//	wsroom_sent_frames_total                 counter  frames written to clients
//	wsroom_sent_bytes_total                  counter  their bytes, headers included
//	wsroom_deliveries_total                  counter  events queued for members
//	wsroom_slow_drops_total                  counter  members closed because they could not keep up (1013)
//	wsroom_refusals_total{code}              counter  upgrades refused ("429", "503") and frames refused ("rate_limited")
//	wsroom_departures_total{reason}          counter  members that left, by wsroom.LeaveReason ("closed", "slow", "timeout", ...)
//	wsroom_queued_events                     gauge    events waiting in the members' queues
//	wsroom_queued_bytes                      gauge    their bytes
//	wsroom_backend_call_duration_seconds{op} histogram  Store and Broker calls by method ("Append", "Publish", ...)
//	wsroom_backend_errors_total{op}          counter  those calls that failed
//	wsroom_room_members{room}                gauge    members per room (Options.RoomSizes only)
//
// A Store's answers that are not failures (wsroom.ErrNameTaken,
// wsroom.ErrRoomFull, wsroom.ErrNotMember) and calls the server cancelled
// (context.Canceled, at shutdown) are timed but not counted as errors; a
// call that ran past Options.BackendTimeout is.
//
// # Cardinality
//
// Every label above takes a small, fixed set of values, except room.
// Options.RoomSizes adds one series per room, and a client may open a room
// by naming it: keep it off on a public server, or bound it with
// Options.MaxRoomSeries (the largest rooms are exported). Several Servers in
// one process each need an Exporter with its own Options.ConstLabels
// (server="a", say).
package wsroomprom
