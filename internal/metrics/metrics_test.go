package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"siogo/engineio"
	"siogo/internal/cluster"
	"siogo/socketio"
)

// The observer interfaces of the layers that report here.
var (
	_ engineio.Observer = (*Metrics)(nil)
	_ socketio.Observer = (*Metrics)(nil)
	_ cluster.Observer  = (*Metrics)(nil)
)

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want the text exposition format", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMetrics(t *testing.T) {
	m := New()
	// Three EIO4 polling sessions, one of which upgrades and one closes;
	// one EIO3 WebSocket session.
	for range 3 {
		m.SessionOpened("polling", 4)
	}
	m.SessionUpgraded(4)
	m.SessionClosed("polling", 4, "transport close")
	m.SessionOpened("websocket", 3)
	// Two plain WebSocket connections, one closed.
	m.SessionOpened("plain", 0)
	m.SessionOpened("plain", 0)
	m.SessionClosed("plain", 0, "binary messages not accepted")
	m.QueueOverflow()
	m.PacketRateExceeded()
	m.RequestRefused(429)
	for range 5 {
		m.PacketIn()
	}
	m.Broadcast(4)
	m.Broadcast(0)
	m.Forwarded("polling")
	m.Forwarded("polling")
	m.Forwarded("websocket")
	m.ForwardFailed()
	m.PollHandedOff()
	var reconnects atomic.Uint64
	reconnects.Store(7)
	m.AddCounterFunc("siogo_redis_reconnects_total", "Redis reconnections.", reconnects.Load)

	out := scrape(t, m)
	for _, want := range []string{
		`siogo_connected_clients{protocol="4",transport="polling"} 1`,
		`siogo_connected_clients{protocol="4",transport="websocket"} 1`,
		`siogo_connected_clients{protocol="3",transport="websocket"} 1`,
		`siogo_connected_clients{protocol="3",transport="polling"} 0`,
		`siogo_sessions_opened_total{protocol="4",transport="polling"} 3`,
		`siogo_connected_clients{protocol="",transport="plain"} 1`,
		`siogo_sessions_opened_total{protocol="",transport="plain"} 2`,
		`siogo_sessions_closed_total{reason="binary messages not accepted"} 1`,
		`siogo_upgrades_total{protocol="4"} 1`,
		`siogo_sessions_closed_total{reason="transport close"} 1`,
		`siogo_send_queue_drops_total 1`,
		`siogo_packet_rate_drops_total 1`,
		`siogo_requests_refused_total{status="429"} 1`,
		`siogo_messages_in_total 5`,
		`siogo_messages_out_total 4`,
		`siogo_broadcast_recipients_count 2`,
		`siogo_broadcast_recipients_sum 4`,
		`siogo_broadcast_recipients_bucket{le="0"} 1`,
		`siogo_broadcast_recipients_bucket{le="5"} 2`,
		`siogo_forwarded_requests_total{transport="polling"} 2`,
		`siogo_forwarded_requests_total{transport="websocket"} 1`,
		`siogo_forward_errors_total 1`,
		`siogo_poll_handoffs_total 1`,
		`siogo_redis_reconnects_total 7`,
		`go_goroutines `,
		`process_cpu_seconds_total `,
	} {
		if !strings.Contains(out, "\n"+want) {
			t.Errorf("metrics lack %q", want)
		}
	}
	if t.Failed() {
		t.Logf("scraped:\n%s", out)
	}
	reconnects.Store(8)
	if out := scrape(t, m); !strings.Contains(out, "\nsiogo_redis_reconnects_total 8\n") {
		t.Errorf("counter func not read at scrape time")
	}
}
