package metrics

import (
	"net"
	"net/http"
	"strconv"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics holds the server's collectors. Its methods are safe for
// concurrent use; the observer methods are on the hot path and only touch
// pre-resolved counters where they can.
type Metrics struct {
	reg *prometheus.Registry

	connected    *prometheus.GaugeVec   // transport, protocol
	sessions     *prometheus.CounterVec // transport, protocol
	upgrades     *prometheus.CounterVec // protocol
	closes       *prometheus.CounterVec // reason
	queueDrops   prometheus.Counter
	rateDrops    prometheus.Counter
	refused      *prometheus.CounterVec // status
	messagesIn   prometheus.Counter
	messagesOut  prometheus.Counter
	fanout       prometheus.Histogram
	forwarded    *prometheus.CounterVec // transport
	forwardFails prometheus.Counter
	handoffs     prometheus.Counter
	httpCloses   *prometheus.CounterVec // state
	recoveries   *prometheus.CounterVec // result
	replayed     prometheus.Counter
	fdRefused    prometheus.Counter

	// connStates remembers each HTTP connection's last state, to tell
	// how it ended.
	connStates sync.Map // net.Conn -> http.ConnState

	// The connected gauge by protocol revision, resolved once: sessions
	// open and close on every connection.
	polling, websocket [5]prometheus.Gauge
}

// New returns metrics registered on a fresh registry, together with the Go
// runtime and process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		connected: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "siogo_connected_clients",
			Help: "Open Engine.IO sessions, by current transport and Engine.IO protocol revision (3: socket.io-client 1.x and 2.x, 4: 3.x and 4.x), and plain WebSocket connections (transport plain, no protocol).",
		}, []string{"transport", "protocol"}),
		sessions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siogo_sessions_opened_total",
			Help: "Engine.IO sessions opened on this node, by handshake transport and protocol revision, and plain WebSocket connections (transport plain, no protocol).",
		}, []string{"transport", "protocol"}),
		upgrades: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siogo_upgrades_total",
			Help: "Sessions upgraded from polling to WebSocket, by protocol revision.",
		}, []string{"protocol"}),
		closes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siogo_sessions_closed_total",
			Help: "Engine.IO sessions and plain WebSocket connections closed, by reason.",
		}, []string{"reason"}),
		queueDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_send_queue_drops_total",
			Help: "Clients disconnected because their send queue was full (they could not keep up).",
		}),
		rateDrops: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_packet_rate_drops_total",
			Help: "Clients disconnected for sending packets faster than allowed.",
		}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siogo_requests_refused_total",
			Help: "Requests refused by a limit, by HTTP status (403: origin not allowed, 413: body over the payload limit, 429: handshake rate, 503: connection limit).",
		}, []string{"status"}),
		messagesIn: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_messages_in_total",
			Help: "Socket.IO packets, and plain WebSocket messages, received from clients.",
		}),
		messagesOut: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_messages_out_total",
			Help: "Socket.IO packets, and plain WebSocket messages, queued to local clients by broadcasts (one per recipient).",
		}),
		fanout: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "siogo_broadcast_recipients",
			Help:    "Local recipients of each broadcast (the broadcast fan-out).",
			Buckets: []float64{0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000},
		}),
		forwarded: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siogo_forwarded_requests_total",
			Help: "Requests for sessions owned by another node that this node forwarded to the owner, by transport.",
		}, []string{"transport"}),
		forwardFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_forward_errors_total",
			Help: "Forwarded requests that failed because the owning node could not be reached.",
		}),
		handoffs: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_poll_handoffs_total",
			Help: "Polling requests of this node's sessions, forwarded by another node, that lost their carrier while their session stayed open: long polls, also those that gave way to the client's next poll, and POSTs whose retry was answered without handling them twice.",
		}),
		recoveries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siogo_recoveries_total",
			Help: "Connection-state recoveries attempted, by result: succeeded, or why not (unknown pid, expired, offset too old, broker failure).",
		}, []string{"result"}),
		replayed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_recovery_replayed_packets_total",
			Help: "Missed broadcasts sent to recovered sockets.",
		}),
		fdRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "siogo_accept_refused_total",
			Help: "Connections that found the node out of file descriptors (EMFILE, ENFILE): answered 503 and closed, or left to wait.",
		}),
		httpCloses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "siogo_http_connections_closed_total",
			Help: "HTTP connections closed by either side, by their state when closed: new (nothing received), active (in the middle of a request: slow headers cut by the read-header timeout, a client gone mid-request), idle (between requests: the idle timeout or the client).",
		}, []string{"state"}),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.connected, m.sessions, m.upgrades, m.closes, m.queueDrops, m.rateDrops, m.refused,
		m.messagesIn, m.messagesOut, m.fanout,
		m.forwarded, m.forwardFails, m.handoffs, m.httpCloses, m.recoveries, m.replayed, m.fdRefused,
	)
	for _, p := range []int{3, 4} {
		v := strconv.Itoa(p)
		m.polling[p] = m.connected.WithLabelValues("polling", v)
		m.websocket[p] = m.connected.WithLabelValues("websocket", v)
	}
	return m
}

// AdminRefused names the count of connections to the Socket.IO Admin UI
// namespace refused for want of valid credentials, exported with
// AddCounterFunc when the admin namespace is served.
const AdminRefused = "siogo_admin_refused_total"

// Registerer is where other components register their collectors.
func (m *Metrics) Registerer() prometheus.Registerer { return m.reg }

// Gatherer gives the registered metrics, for tests and custom exporters.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.reg }

// AddCounterFunc exports a counter that another component keeps itself
// (the Redis adapter counts its reconnections) under name.
func (m *Metrics) AddCounterFunc(name, help string, value func() uint64) {
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
		func() float64 { return float64(value()) }))
}

// AddGaugeFunc exports a gauge that another component keeps itself.
func (m *Metrics) AddGaugeFunc(name, help string, value func() int64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
		func() float64 { return float64(value()) }))
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{})
}

func (m *Metrics) gauge(transport string, protocol int) prometheus.Gauge {
	if protocol == 3 || protocol == 4 {
		if transport == "websocket" {
			return m.websocket[protocol]
		}
		if transport == "polling" {
			return m.polling[protocol]
		}
	}
	return m.connected.WithLabelValues(transport, protocolLabel(protocol))
}

// protocolLabel is the protocol label of an Engine.IO revision. Plain
// WebSocket connections, revision 0, have none: an empty label.
func protocolLabel(protocol int) string {
	if protocol == 0 {
		return ""
	}
	return strconv.Itoa(protocol)
}

// SessionOpened implements engineio.Observer.
func (m *Metrics) SessionOpened(transport string, protocol int) {
	m.gauge(transport, protocol).Inc()
	m.sessions.WithLabelValues(transport, protocolLabel(protocol)).Inc()
}

// SessionUpgraded implements engineio.Observer.
func (m *Metrics) SessionUpgraded(protocol int) {
	m.gauge("polling", protocol).Dec()
	m.gauge("websocket", protocol).Inc()
	m.upgrades.WithLabelValues(strconv.Itoa(protocol)).Inc()
}

// SessionClosed implements engineio.Observer.
func (m *Metrics) SessionClosed(transport string, protocol int, reason string) {
	m.gauge(transport, protocol).Dec()
	m.closes.WithLabelValues(reason).Inc()
}

// QueueOverflow implements engineio.Observer.
func (m *Metrics) QueueOverflow() { m.queueDrops.Inc() }

// PacketRateExceeded implements engineio.Observer.
func (m *Metrics) PacketRateExceeded() { m.rateDrops.Inc() }

// RequestRefused implements engineio.Observer.
func (m *Metrics) RequestRefused(status int) { m.refused.WithLabelValues(strconv.Itoa(status)).Inc() }

// PacketIn implements socketio.Observer.
func (m *Metrics) PacketIn() { m.messagesIn.Inc() }

// Broadcast implements socketio.Observer.
func (m *Metrics) Broadcast(recipients int) {
	m.messagesOut.Add(float64(recipients))
	m.fanout.Observe(float64(recipients))
}

// Forwarded implements cluster.Observer.
func (m *Metrics) Forwarded(transport string) { m.forwarded.WithLabelValues(transport).Inc() }

// ForwardFailed implements cluster.Observer.
func (m *Metrics) ForwardFailed() { m.forwardFails.Inc() }

// AcceptRefused counts a connection that found the node out of file
// descriptors.
func (m *Metrics) AcceptRefused() { m.fdRefused.Inc() }

// Recovery implements socketio.Observer.
func (m *Metrics) Recovery(result string) { m.recoveries.WithLabelValues(result).Inc() }

// Replayed implements socketio.Observer.
func (m *Metrics) Replayed(packets int) { m.replayed.Add(float64(packets)) }

// PollHandedOff implements engineio.Observer.
func (m *Metrics) PollHandedOff() { m.handoffs.Inc() }

// ConnState is an http.Server ConnState hook: it counts connections by the
// state they were in when they closed, which makes the HTTP server's own
// timeouts (read-header, idle) visible.
func (m *Metrics) ConnState(c net.Conn, st http.ConnState) {
	switch st {
	case http.StateClosed:
		if prev, ok := m.connStates.LoadAndDelete(c); ok {
			m.httpCloses.WithLabelValues(prev.(http.ConnState).String()).Inc()
		}
	case http.StateHijacked:
		// A WebSocket now; its end is counted as a session close.
		m.connStates.Delete(c)
	default:
		m.connStates.Store(c, st)
	}
}
