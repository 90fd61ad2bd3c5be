package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
)

// result is the JSON line printed for one run. Rates are per second of the
// measurement window; RSS figures are kilobytes.
type result struct {
	Label     string  `json:"label,omitempty"`
	URL       string  `json:"url"`
	EIO       int     `json:"eio"`
	Transport string  `json:"transport"`
	Clients   int     `json:"clients"`
	Senders   int     `json:"senders"`
	Mode      string  `json:"mode"` // idle, closed or open
	Window    int     `json:"window,omitempty"`
	TargetMsg float64 `json:"target_msgs_per_s,omitempty"`
	Size      int     `json:"size"`
	Deflate   bool    `json:"deflate,omitempty"` // permessage-deflate offered

	Connected      int     `json:"connected"`
	ConnectErrors  int     `json:"connect_errors"`
	ConnectSeconds float64 `json:"connect_s"`
	ConnectRate    float64 `json:"connect_per_s"`
	HandshakeP50Ms float64 `json:"handshake_p50_ms"`
	HandshakeP99Ms float64 `json:"handshake_p99_ms"`
	DeflateAgreed  int     `json:"deflate_agreed,omitempty"`
	// Checkpoints are the readings taken on the way to all clients
	// connected (-checkpoints).
	Checkpoints []checkpoint `json:"checkpoints,omitempty"`

	WindowSeconds    float64   `json:"window_s,omitempty"`
	Sent             uint64    `json:"sent,omitempty"`
	MsgsPerSec       float64   `json:"msgs_per_s,omitempty"`
	Deliveries       uint64    `json:"deliveries,omitempty"`
	DeliveriesPerSec float64   `json:"deliveries_per_s,omitempty"`
	LatencyMs        latencyMs `json:"latency_ms"`
	Expected         uint64    `json:"expected,omitempty"`
	Received         uint64    `json:"received,omitempty"`
	Missing          uint64    `json:"missing"`
	Foreign          uint64    `json:"foreign,omitempty"`

	ServerRSSStartKB int64     `json:"server_rss_start_kb,omitempty"`
	ServerRSSIdleKB  int64     `json:"server_rss_idle_kb,omitempty"`
	RSSPerConnKB     float64   `json:"rss_per_conn_kb,omitempty"`
	ServerFDsIdle    int       `json:"server_fds_idle,omitempty"` // files the server held open at that reading
	ServerRSSLoadKB  int64     `json:"server_rss_load_kb,omitempty"`
	OneToAll         *oneToAll `json:"one_to_all,omitempty"`
	ServerCPUSeconds float64   `json:"server_cpu_s,omitempty"`
	ServerCPUUtil    float64   `json:"server_cpu_util,omitempty"`
	LoadgenCPUUtil   float64   `json:"loadgen_cpu_util,omitempty"`
	// CPUTask is the share of the window each CPU of the machine spent
	// running tasks (user and system time, any process). Minus the server's
	// or the generator's own share, it shows other work competing with the run.
	CPUTask []float64 `json:"cpu_task,omitempty"`

	DisconnectsIdle int64  `json:"disconnects_idle"`
	Disconnects     int64  `json:"disconnects"`
	Errors          int    `json:"errors"`
	FirstError      string `json:"first_error,omitempty"`
	Error           string `json:"error,omitempty"`
}

// checkpoint is the state of the connect phase once the first Clients
// clients were dialled and the server had settled for -hold.
type checkpoint struct {
	Clients        int     `json:"clients"`
	Connected      int     `json:"connected"`
	ConnectErrors  int     `json:"connect_errors"`
	ConnectSeconds float64 `json:"connect_s"` // time spent connecting so far, pauses left out
	Disconnects    int64   `json:"disconnects"`
	ServerRSSKB    int64   `json:"server_rss_kb,omitempty"`
	RSSPerConnKB   float64 `json:"rss_per_conn_kb,omitempty"`
}

type latencyMs struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func newResult(cfg *config) *result {
	res := &result{
		Label:     cfg.label,
		URL:       joinURLs(cfg.bases),
		EIO:       cfg.eio,
		Transport: cfg.transport,
		Clients:   cfg.clients,
		Senders:   cfg.senders,
		Size:      cfg.size,
		Deflate:   cfg.deflate,
		Mode:      "idle",
	}
	switch {
	case cfg.senders == 0:
	case cfg.msgRate > 0:
		res.Mode = "open"
		res.TargetMsg = cfg.msgRate
	default:
		res.Mode = "closed"
		res.Window = cfg.window
	}
	return res
}

func joinURLs(us []*url.URL) string {
	s := make([]string, len(us))
	for i, u := range us {
		s[i] = u.String()
	}
	return strings.Join(s, ",")
}

func printSummary(w io.Writer, r *result) {
	fmt.Fprintf(w, "loadgen %s EIO%d %s, %d clients (%s)\n", r.URL, r.EIO, r.Transport, r.Clients, r.Mode)
	for _, c := range r.Checkpoints {
		fmt.Fprintf(w, "  at %-7d %d connected in %.2fs, %d errors, %d dropped, server RSS %d kB (%.2f kB/conn)\n",
			c.Clients, c.Connected, c.ConnectSeconds, c.ConnectErrors, c.Disconnects, c.ServerRSSKB, c.RSSPerConnKB)
	}
	fmt.Fprintf(w, "  connect    %d/%d in %.2fs (%.0f/s), handshake p50 %.2fms p99 %.2fms, %d errors\n",
		r.Connected, r.Clients, r.ConnectSeconds, r.ConnectRate, r.HandshakeP50Ms, r.HandshakeP99Ms, r.ConnectErrors)
	if r.Deflate {
		fmt.Fprintf(w, "  deflate    agreed on %d of %d connections\n", r.DeflateAgreed, r.Connected)
	}
	if o := r.OneToAll; o != nil {
		fmt.Fprintf(w, "  one-to-all %d lines to %d clients: last receipt after %v ms (median %.2f), receipt p50 %.2fms p99 %.2fms max %.2fms, %d missing\n",
			o.Lines, o.Receivers, o.LastMs, o.LastMedianMs, o.P50Ms, o.P99Ms, o.MaxMs, o.Missing)
	}
	traffic := r.Mode != "idle" && r.WindowSeconds > 0
	if traffic {
		fmt.Fprintf(w, "  traffic    %d senders, %.0f msgs/s, %.0f deliveries/s over %.1fs\n",
			r.Senders, r.MsgsPerSec, r.DeliveriesPerSec, r.WindowSeconds)
		fmt.Fprintf(w, "  latency    p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms\n",
			r.LatencyMs.P50, r.LatencyMs.P90, r.LatencyMs.P99, r.LatencyMs.Max)
		fmt.Fprintf(w, "  delivery   %d of %d expected (%d missing), %d foreign\n", r.Received, r.Expected, r.Missing, r.Foreign)
	}
	if r.ServerRSSStartKB > 0 {
		fmt.Fprintf(w, "  server     RSS start %d kB, idle %d kB (%.2f kB/conn), %d open files", r.ServerRSSStartKB, r.ServerRSSIdleKB, r.RSSPerConnKB, r.ServerFDsIdle)
		if traffic {
			fmt.Fprintf(w, ", under load %d kB, CPU %.2fs (%.0f%%)", r.ServerRSSLoadKB, r.ServerCPUSeconds, 100*r.ServerCPUUtil)
		}
		fmt.Fprintln(w)
	}
	if traffic {
		fmt.Fprintf(w, "  loadgen    CPU %.0f%%", 100*r.LoadgenCPUUtil)
		if r.LoadgenCPUUtil > 0.9 {
			fmt.Fprint(w, " (saturated: the figures above may be limited by the load generator)")
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  status     %d disconnects (%d while idle), %d errors", r.Disconnects, r.DisconnectsIdle, r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(w, "; first: %s", r.FirstError)
	}
	fmt.Fprintln(w)
	if r.Error != "" {
		fmt.Fprintf(w, "  FAILED     %s\n", r.Error)
	}
}
