package main

import (
	"fmt"
	"strconv"
	"time"
)

// The scale suite (make bench-scale) measures what holding many idle
// clients costs each server, up to the most connections the open-file limit
// lets one process hold, and what reaching all of them takes:
//
//   - ws-scale: WebSocket clients connected up to the maximum, with the
//     server's memory read at 5k and 10k on the way and at the end; then
//     lines sent one at a time from one client to every client; then a line
//     a second for 60 s, with the server's CPU time.
//   - poll-idle-10k: idle HTTP long-polling sessions held over a heartbeat.

const (
	// loadgenMaxClients is the most clients loadgen takes.
	loadgenMaxClients = 50000
	// quickScaleClients is the maximum of a -quick scale run.
	quickScaleClients = 3000
	// scaleSettle is the pause before each memory reading of the scale
	// suite: the servers' runtimes cannot be made to collect garbage from
	// outside, so they get a few seconds to settle instead.
	scaleSettle = "5s"
	// scaleLines is how many one-to-all lines the scale suite sends.
	scaleLines = 5
	// pollHold is how long the idle polling sessions are held before the
	// reading: longer than the servers' 25 s heartbeat interval, so that
	// every session answers a ping over its long poll first.
	pollHold = "30s"
)

// maxClients is how many connections a process with the given open-file
// limit can hold: the limit less a reserve for everything else it has
// open, as the chat server reckons its own default -max-connections, and
// no more than loadgen takes.
func maxClients(limit uint64) int {
	reserve := min(limit/10, 1000)
	return int(min(limit-reserve, loadgenMaxClients))
}

// scaleScenarios are the scale suite's scenarios for most WebSocket
// clients at the maximum.
func scaleScenarios(quick bool, most int) []scenario {
	checkpoints := []int{5000, 10000}
	settle, lines, window := scaleSettle, scaleLines, "60s"
	pollClients := 10000
	if quick {
		checkpoints = []int{most / 3, 2 * most / 3}
		settle, lines, window = "2s", 3, "10s"
		pollClients = 2000
	}
	var cps string
	for _, c := range checkpoints {
		if c > 0 && c < most {
			cps += "," + strconv.Itoa(c)
		}
	}
	pollClients = min(pollClients, most)
	// Several loopback source addresses keep every address's ephemeral
	// ports far from running out: about 2,500 connections each.
	src := strconv.Itoa(min(254, max(8, most/2500)))
	// Both servers are started so that only the open-file limit stops
	// them; the Node server has no connection limit.
	ours := []string{"-max-connections", strconv.Itoa(most)}
	ws := []string{"-clients", strconv.Itoa(most), "-src", src, "-dial-concurrency", "100", "-connect-timeout", "30s",
		"-read-buffer", "4096", "-hold", settle}
	if cps != "" {
		ws = append(ws, "-checkpoints", cps[1:])
	}
	ws = append(ws, "-one-to-all", strconv.Itoa(lines), "-senders", "1", "-rate", "1", "-warmup", "2s", "-duration", window)
	return []scenario{
		{
			key:      "ws-scale",
			title:    fmt.Sprintf("WebSocket, %s clients: idle memory, one line to all, 1 line/s", thousands(most)),
			args:     ws,
			timeout:  6 * time.Minute,
			oursArgs: ours,
		},
		{
			key:   "poll-idle-10k",
			title: fmt.Sprintf("Polling, %s idle sessions", thousands(pollClients)),
			// A small idle pool keeps each session at one connection, its
			// pending poll, when it answers the heartbeat.
			args: []string{"-transport", "polling", "-clients", strconv.Itoa(pollClients), "-senders", "0", "-src", "8",
				"-dial-concurrency", "100", "-connect-timeout", "30s", "-idle-conns", "100", "-hold", pollHold},
			timeout:  3 * time.Minute,
			oursArgs: ours,
		},
	}
}

// thousands writes 19000 as 19,000.
func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

// scaleTargets judges the goals of the scale suite: memory per idle
// WebSocket connection at the maximum, the one-line-to-all tail latency
// and the server CPU at a line a second, the last two against Node's.
func (r *report) scaleTargets() []target {
	var out []target
	g, n := r.get("ws-scale", "go"), r.get("ws-scale", "node")
	clients := "the maximum"
	if x := firstUsable(g, n); x != nil {
		clients = clientCount(x.Clients) + " clients"
	}

	out = append(out, r.memoryTarget("RSS per idle WebSocket connection, "+clients, "≤ 8 KiB, 0 errors", "ws-scale", 8,
		func(g *loadResult) string {
			if g.Connected < g.Clients || g.ConnectErrors > 0 || g.DisconnectsIdle > 0 {
				return fmt.Sprintf("%d of %d connected, %d connect errors, %d dropped", g.Connected, g.Clients, g.ConnectErrors, g.DisconnectsIdle)
			}
			return ""
		}))

	missed := func(x *loadResult) string {
		if o := x.OneToAll; o == nil || o.Lines == 0 || o.Missing > 0 {
			return "one-to-all lines missing"
		}
		return ""
	}
	out = append(out, r.ratioTarget("One line to all "+clients+": p99 receipt latency", "≤ Node", "ws-scale",
		func(x *loadResult) float64 { return oneToAllOf(x).P99Ms }, millis,
		func(g, n float64) bool { return g <= n }, missed))
	out = append(out, r.ratioTarget("Server CPU at 1 line/s to "+clients, "< Node", "ws-scale",
		func(x *loadResult) float64 { return x.ServerCPUUtil }, percent,
		func(g, n float64) bool { return g < n }, nil))
	return out
}

func firstUsable(xs ...*loadResult) *loadResult {
	for _, x := range xs {
		if usable(x) {
			return x
		}
	}
	return nil
}

// oneToAllOf returns a run's one-to-all figures, zero when it has none.
func oneToAllOf(x *loadResult) oneToAll {
	if x.OneToAll == nil {
		return oneToAll{}
	}
	return *x.OneToAll
}

// checkpointCounts returns the client counts of the ws-scale run's memory
// readings, the maximum last, as the first usable run has them.
func (r *report) checkpointCounts() []int {
	for _, srv := range r.columns() {
		if x := r.get("ws-scale", srv); usable(x) {
			var out []int
			for _, c := range x.Checkpoints {
				out = append(out, c.Clients)
			}
			return append(out, x.Clients)
		}
	}
	return nil
}

// rssAt returns the RSS per connection of a ws-scale run at its i-th
// reading, the last one being all clients connected.
func rssAt(x *loadResult, i int) float64 {
	if i < len(x.Checkpoints) {
		return x.Checkpoints[i].RSSPerConnKB
	}
	if i == len(x.Checkpoints) {
		return x.RSSPerConnKB
	}
	return 0
}

// scaleFigures are the rows of a scale scenario's table.
func (r *report) scaleFigures(scenario string) []figure {
	counts := []figure{
		{name: "connected", value: func(x *loadResult) float64 { return float64(x.Connected) }, format: count},
		{name: "connect errors", value: func(x *loadResult) float64 { return float64(x.ConnectErrors) }, format: count},
		{name: "time to connect all", value: func(x *loadResult) float64 { return x.ConnectSeconds }, format: seconds},
		{name: "connections/s", value: func(x *loadResult) float64 { return x.ConnectRate }, format: count},
		{name: "handshake p50", value: func(x *loadResult) float64 { return x.HandshakeP50Ms }, format: millis},
		{name: "handshake p99", value: func(x *loadResult) float64 { return x.HandshakeP99Ms }, format: millis},
		{name: "server RSS at start", value: func(x *loadResult) float64 { return float64(x.ServerRSSStartKB) }, format: mib},
		{name: "server RSS, all connected", value: func(x *loadResult) float64 { return float64(x.ServerRSSIdleKB) }, format: mib},
		{name: "server open files, all connected", value: func(x *loadResult) float64 { return float64(x.ServerFDsIdle) }, format: count},
	}
	if scenario != "ws-scale" {
		return append(counts,
			figure{name: "RSS per session", value: func(x *loadResult) float64 { return x.RSSPerConnKB }, format: kib},
			figure{name: "errors", value: func(x *loadResult) float64 { return float64(x.Errors) }, format: count},
			figure{name: "dropped while idle", value: func(x *loadResult) float64 { return float64(x.DisconnectsIdle) }, format: count})
	}
	figs := counts
	for i, n := range r.checkpointCounts() {
		name := "RSS per connection, " + clientCount(n) + " connected"
		if i == len(r.checkpointCounts())-1 {
			name += " (all)"
		}
		figs = append(figs, figure{name: name, value: func(x *loadResult) float64 { return rssAt(x, i) }, format: kib})
	}
	one := func(name string, f func(oneToAll) float64, format func(float64) string) figure {
		return figure{name: "one line to all: " + name, value: func(x *loadResult) float64 { return f(oneToAllOf(x)) }, format: format}
	}
	figs = append(figs,
		figure{name: "dropped while idle", value: func(x *loadResult) float64 { return float64(x.DisconnectsIdle) }, format: count},
		one("lines sent", func(o oneToAll) float64 { return float64(o.Lines) }, count),
		one("last client has it after (median)", func(o oneToAll) float64 { return o.LastMedianMs }, millis),
		one("receipt latency p50", func(o oneToAll) float64 { return o.P50Ms }, millis),
		one("receipt latency p99", func(o oneToAll) float64 { return o.P99Ms }, millis),
		one("receipt latency max", func(o oneToAll) float64 { return o.MaxMs }, millis),
		one("missing receipts", func(o oneToAll) float64 { return float64(o.Missing) }, count),
	)
	for _, f := range r.trafficFigures() {
		f.name = "1 line/s: " + f.name
		figs = append(figs, f)
	}
	return append(figs, figure{name: "errors", value: func(x *loadResult) float64 { return float64(x.Errors) }, format: count})
}

// scalePanels are the plot of the scale suite.
func (r *report) scalePanels() []panel {
	counts := r.checkpointCounts()
	if len(counts) == 0 {
		counts = []int{5000, 10000, 0}
	}
	var rss []group
	for i, n := range counts {
		label := clientCount(n)
		if i == len(counts)-1 {
			label = "all (" + label + ")"
		}
		rss = append(rss, group{label: label, scenario: "ws-scale", value: func(x *loadResult) float64 { return rssAt(x, i) }})
	}
	one := func(label string, f func(oneToAll) float64) group {
		return group{label: label, scenario: "ws-scale", value: func(x *loadResult) float64 { return f(oneToAllOf(x)) }}
	}
	return []panel{
		{title: "RSS per idle WebSocket connection", xlabel: "clients connected", ylabel: "KiB", limit: 8, limitLabel: "target ≤ 8 KiB", groups: rss},
		{title: "Time to connect every WebSocket client", ylabel: "s",
			groups: []group{{scenario: "ws-scale", value: func(x *loadResult) float64 { return x.ConnectSeconds }}}},
		{title: "One line to all WebSocket clients", ylabel: "ms", groups: []group{
			one("receipt p50", func(o oneToAll) float64 { return o.P50Ms }),
			one("receipt p99", func(o oneToAll) float64 { return o.P99Ms }),
			one("last client (median)", func(o oneToAll) float64 { return o.LastMedianMs }),
		}},
		{title: "1 line/s to all: latency", ylabel: "ms", groups: []group{
			{label: "p50", scenario: "ws-scale", value: func(x *loadResult) float64 { return x.LatencyMs.P50 }},
			{label: "p99", scenario: "ws-scale", value: func(x *loadResult) float64 { return x.LatencyMs.P99 }},
		}},
		{title: "1 line/s to all: server CPU", ylabel: "% of one core",
			groups: []group{{scenario: "ws-scale", value: func(x *loadResult) float64 { return 100 * x.ServerCPUUtil }}}},
		{title: "RSS per idle polling session", ylabel: "KiB",
			groups: []group{{scenario: "poll-idle-10k", value: func(x *loadResult) float64 { return x.RSSPerConnKB }}}},
	}
}

func seconds(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f s", v)
	}
	return fmt.Sprintf("%.1f s", v)
}
