package main

import (
	"fmt"
	"io"
	"math"
	"slices"
	"sort"
	"strings"
	"time"
)

// configSummary records the run's settings in the summary.
type configSummary struct {
	URL            string  `json:"url"`
	Clients        int     `json:"clients"`
	ClientsPerKind int     `json:"clients_per_kind"`
	Kinds          string  `json:"kinds"`
	Senders        int     `json:"senders"`
	LinesPerSecond float64 `json:"lines_per_second"`
	ChurnPerSecond int     `json:"churn_per_second"`
	ChurnLife      string  `json:"churn_life"`
	Duration       string  `json:"duration"`
	SampleEvery    string  `json:"sample_every"`
	Window         string  `json:"window"`
	Tolerance      float64 `json:"tolerance"`
	Nodes          int     `json:"nodes"`
	RestartNode    int     `json:"restart_node,omitempty"`
	RestartAt      string  `json:"restart_at,omitempty"`
}

func (c *config) export() configSummary {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	cs := configSummary{
		URL: c.url, Clients: c.clients, ClientsPerKind: c.clients / len(kinds), Kinds: strings.Join(names, ", "),
		Senders: c.senders, LinesPerSecond: c.rate, ChurnPerSecond: c.churn, ChurnLife: c.churnLife.String(),
		Duration: c.duration.String(), SampleEvery: c.sample.String(), Window: c.window.String(), Tolerance: c.tolerance,
		Nodes: c.nodes,
	}
	if c.restarts() {
		cs.RestartNode, cs.RestartAt = c.restartNode, c.restartAt.String()
	}
	return cs
}

// flatness compares a metric over an early window of the run with the same
// metric over a late one: its median (memory) or its floor (goroutines).
type flatness struct {
	Stat   string  `json:"stat"`
	Second float64 `json:"early_window_value"`
	Last   float64 `json:"late_window_value"`
	Change float64 `json:"relative_change"`
}

// flatCheck is one flatness comparison of one node's metric within one
// phase of the run: the whole run, or before or after the restart.
type flatCheck struct {
	Node   string `json:"node,omitempty"`
	Phase  string `json:"phase"`
	Metric string `json:"metric"`
	Early  string `json:"early_window"` // e.g. "1m0s-2m0s" into the load
	Late   string `json:"late_window"`
	flatness
}

// reconnects is how the long-lived clients fared on a cluster.
type reconnects struct {
	Dropped          int    `json:"dropped"`            // long-lived clients whose connection ended
	ByRestart        int    `json:"dropped_by_restart"` // of them, only by the restart
	Unexpected       int    `json:"unexpected_drops"`   // connection ends the restart does not explain
	Recovered        int    `json:"eio4_recovered"`     // Engine.IO 4 reconnections that recovered the session
	NotRecovered     int    `json:"eio4_not_recovered"`
	EIO3Fresh        int    `json:"eio3_new_sessions"` // Engine.IO 3 reconnections: a new session, as they cannot recover
	EIO3WithGap      int    `json:"eio3_with_gap"`     // Engine.IO 3 clients that missed lines while away
	EIO3Missed       int64  `json:"eio3_lines_missed"`
	FailedAttempts   int    `json:"failed_attempts"`
	AwayP50          string `json:"away_p50,omitempty"` // from the end of a connection to the next one
	AwayMax          string `json:"away_max,omitempty"`
	SendersDropped   int    `json:"senders_dropped"`
	EIO3SendersNewID int    `json:"eio3_senders_new_client_id"`
}

type summary struct {
	Config             configSummary      `json:"config"`
	RampUp             string             `json:"ramp_up"`
	LoadTime           string             `json:"load_time"`
	LinesSent          int64              `json:"lines_sent"`
	LinesAcked         int64              `json:"lines_acked"`
	Deliveries         int64              `json:"deliveries"`
	Lost               int64              `json:"lost"`
	LostClients        int                `json:"lost_clients"`
	OutOfOrder         int64              `json:"out_of_order"`
	UnackedMissing     int64              `json:"unacknowledged_missing"`
	SteadyDisconnected int                `json:"steady_disconnected"`
	SendErrors         int64              `json:"send_errors"`
	SenderIDChanges    int                `json:"sender_client_id_changes"`
	FirstProblem       string             `json:"first_problem,omitempty"`
	Restart            *restartReport     `json:"restart,omitempty"`
	Reconnect          reconnects         `json:"reconnect"`
	Recoveries         map[string]float64 `json:"server_recoveries,omitempty"`
	ChurnConnects      int64              `json:"churn_connects"`
	ChurnFailed        int64              `json:"churn_failed"`
	ChurnByRestart     int64              `json:"churn_by_restart"`
	ChurnDeliveries    int64              `json:"churn_deliveries"`
	ChurnLost          int64              `json:"churn_lost"`
	ChurnOutOfOrder    int64              `json:"churn_out_of_order"`
	ChurnProblem       string             `json:"churn_problem,omitempty"`
	LatencyP50         string             `json:"latency_p50"`
	LatencyP99         string             `json:"latency_p99"`
	LatencyMax         string             `json:"latency_max"`
	RSS                *flatness          `json:"rss,omitempty"` // one server: its only checks
	Goroutines         *flatness          `json:"goroutines,omitempty"`
	Flatness           []flatCheck        `json:"flatness"`
	Failures           []string           `json:"failures"`
	Pass               bool               `json:"pass"`
	Samples            []sample           `json:"samples"`
}

func (s *summary) fail(format string, args ...any) {
	s.Failures = append(s.Failures, fmt.Sprintf(format, args...))
}

// window returns a statistic (median or floor) of pick over node's
// samples taken in [from, to), and how many there were.
func window(samples []sample, node string, from, to time.Duration, pick func(sample) float64, stat func([]float64) float64) (float64, int) {
	var vs []float64
	for _, s := range samples {
		if s.Node == node && s.At >= from && s.At < to {
			vs = append(vs, pick(s))
		}
	}
	if len(vs) == 0 {
		return math.NaN(), 0
	}
	slices.Sort(vs)
	return stat(vs), len(vs)
}

// median of sorted values: a reading caught just before a garbage
// collection does not sway it.
func median(vs []float64) float64 {
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2
	}
	return vs[len(vs)/2]
}

// floor of sorted values: what the server holds when nothing passing is in
// flight. Goroutines come and go with the traffic (a writer per burst, two
// per held long poll), so their median swings by a third from one minute to
// the next; a leak raises the floor.
func floor(vs []float64) float64 { return vs[0] }

// phase is a stretch of the run in which each node's load stays the same,
// compared within itself: an early window, starting at early, against its
// last.
type phase struct {
	name       string
	start, end time.Duration
	early      time.Duration
}

// settle is when a phase is first measured, at the earliest: a server
// fills what it keeps for clients that left (the sessions of connection-
// state recovery, two minutes by default) during its first minutes under
// churn, and holds it steady from then on.
const settle = 2 * time.Minute

// afterRestartSettle is how long after the restart the phase after it is
// first measured: the reconnections open connections in a burst, and the
// idle ones close within the HTTP idle timeouts (90 s in the clients, 120 s
// in the servers).
const afterRestartSettle = 2 * time.Minute

// phases splits the run at the restart: memory and goroutines may step when
// a node's clients move to the others, but must be flat before and after.
// Without a restart, the window starting two minutes into the run (see
// settle; the second window in a short run) is compared with the last;
// before the restart, that window with the one just before the restart;
// after it, a window starting up to two minutes after the restarted node is
// ready again with the last.
func (s *summary) phases(w, loadTime time.Duration) []phase {
	early := func(end time.Duration) time.Duration { return max(w, min(settle, end-2*w)) }
	r := s.Restart
	if r == nil || r.ReadyAt == 0 {
		return []phase{{"whole run", 0, loadTime, early(loadTime)}}
	}
	after := max(w, min(afterRestartSettle, loadTime-r.ReadyAt-2*w))
	return []phase{{"before the restart", 0, r.SIGTERMAt, early(r.SIGTERMAt)}, {"after the restart", r.ReadyAt, loadTime, r.ReadyAt + after}}
}

func (s *summary) judge(cfg *config, loadTime time.Duration, nodes int) {
	if s.Lost > 0 {
		s.fail("%d acknowledged lines never reached %d long-lived clients", s.Lost, s.LostClients)
	}
	if s.OutOfOrder > 0 {
		s.fail("%d lines repeated or out of order at long-lived clients", s.OutOfOrder)
	}
	if s.SteadyDisconnected > 0 {
		s.fail("%d long-lived clients were not connected at the end", s.SteadyDisconnected)
	}
	if s.Reconnect.Unexpected > 0 {
		s.fail("%d connections of long-lived clients ended other than by the restart", s.Reconnect.Unexpected)
	}
	if s.Reconnect.NotRecovered > 0 {
		s.fail("%d reconnections of Engine.IO 4 clients did not recover their session", s.Reconnect.NotRecovered)
	}
	if s.SenderIDChanges > 0 {
		s.fail("%d senders' acks changed clientID", s.SenderIDChanges)
	}
	if s.SendErrors > 0 && nodes == 1 {
		s.fail("%d lines could not be sent", s.SendErrors)
	}
	if s.LinesAcked == 0 {
		s.fail("no line was acknowledged")
	}
	if cfg.restarts() {
		switch {
		case s.Restart == nil:
			s.fail("the restart did not happen")
		case s.Reconnect.ByRestart == 0:
			s.fail("the restart dropped no long-lived client")
		}
	}
	if s.ChurnFailed > 0 || s.ChurnLost > 0 || s.ChurnOutOfOrder > 0 {
		s.fail("churn: %d clients failed to connect or were dropped, %d acknowledged lines missed, %d repeated or out of order",
			s.ChurnFailed, s.ChurnLost, s.ChurnOutOfOrder)
	}
	w := cfg.window
	metrics := []struct {
		name string
		pick func(sample) float64
		stat func([]float64) float64
		of   string
	}{
		{"RSS", func(x sample) float64 { return x.RSS }, median, "median"},
		{"goroutines", func(x sample) float64 { return x.Goroutines }, floor, "floor"},
	}
	ids := []string{""}
	if nodes > 1 {
		ids = ids[:0]
		for i := range nodes {
			ids = append(ids, fmt.Sprintf("node%d", i+1))
		}
	}
	for _, ph := range s.phases(w, loadTime) {
		early0, late0 := ph.early, ph.end-w
		for _, id := range ids {
			for _, m := range metrics {
				c := flatCheck{Node: id, Phase: ph.name, Metric: m.name,
					Early: fmt.Sprintf("%v-%v", early0.Round(time.Second), (early0 + w).Round(time.Second)),
					Late:  fmt.Sprintf("%v-%v", late0.Round(time.Second), ph.end.Round(time.Second))}
				// The last window of the run takes the reading at its very
				// end too.
				end := ph.end
				if ph.end == loadTime {
					end += time.Second
				}
				second, n2 := window(s.Samples, id, early0, early0+w, m.pick, m.stat)
				last, nl := window(s.Samples, id, late0, end, m.pick, m.stat)
				where := strings.TrimSpace(id + " " + m.name)
				if len(s.phases(w, loadTime)) > 1 {
					where += " " + ph.name
				}
				if n2 == 0 || nl == 0 {
					s.fail("%s: no readings in the windows compared (%d and %d)", where, n2, nl)
					continue
				}
				c.flatness = flatness{Stat: m.of, Second: second, Last: last, Change: (last - second) / second}
				s.Flatness = append(s.Flatness, c)
				if math.Abs(c.Change) > cfg.tolerance {
					s.fail("%s not flat: %s %.0f in %s is %+.1f%% off the %.0f of %s (tolerance %.0f%%)",
						where, m.of, last, c.Late, 100*c.Change, second, c.Early, 100*cfg.tolerance)
				}
			}
		}
	}
	if nodes == 1 {
		for _, c := range s.Flatness {
			f := c.flatness
			if c.Metric == "RSS" {
				s.RSS = &f
			} else {
				s.Goroutines = &f
			}
		}
	}
	s.Pass = len(s.Failures) == 0
}

func (s *summary) print(w io.Writer) {
	c := s.Config
	fmt.Fprintf(w, "soak: %d clients (%d each of %s), %d senders at %g lines/s in all, churn %d/s (each staying %s), %s after a %s ramp-up\n",
		c.Clients, c.ClientsPerKind, c.Kinds, c.Senders, c.LinesPerSecond, c.ChurnPerSecond, c.ChurnLife, s.LoadTime, s.RampUp)
	if c.Nodes > 1 {
		fmt.Fprintf(w, "  cluster: %d nodes on redis-server, Streams broker, clients spread over them", c.Nodes)
		if r := s.Restart; r != nil {
			fmt.Fprintf(w, "; %s restarted at %s: exited %s after SIGTERM, ready again %s later",
				r.Node, r.SIGTERMAt.Round(time.Second), (r.ExitedAt - r.SIGTERMAt).Round(time.Millisecond),
				(r.ReadyAt - r.ExitedAt).Round(time.Millisecond))
		}
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "  lines: %d sent, %d acknowledged, %d deliveries to long-lived clients; lost %d, repeated or out of order %d; latency p50 %s, p99 %s, max %s\n",
		s.LinesSent, s.LinesAcked, s.Deliveries, s.Lost, s.OutOfOrder, s.LatencyP50, s.LatencyP99, s.LatencyMax)
	if s.UnackedMissing > 0 {
		fmt.Fprintf(w, "  %d deliveries of lines never acknowledged did not happen (their sender's connection ended before the server took them)\n", s.UnackedMissing)
	}
	if r := s.Reconnect; c.Nodes > 1 {
		fmt.Fprintf(w, "  reconnects: %d long-lived clients dropped (%d by the restart only; %d unexpected drops), back after p50 %s, max %s, %d failed attempts\n",
			r.Dropped, r.ByRestart, r.Unexpected, dash(r.AwayP50), dash(r.AwayMax), r.FailedAttempts)
		fmt.Fprintf(w, "    Engine.IO 4: %d reconnections recovered, %d did not; Engine.IO 3 (cannot recover): %d new sessions, %d clients missed %d lines while away\n",
			r.Recovered, r.NotRecovered, r.EIO3Fresh, r.EIO3WithGap, r.EIO3Missed)
		fmt.Fprintf(w, "    senders: %d dropped; %d Engine.IO 3 senders got a new clientID; %d other clientID changes\n",
			r.SendersDropped, r.EIO3SendersNewID, s.SenderIDChanges)
		if len(s.Recoveries) > 0 {
			var parts []string
			for k, v := range s.Recoveries {
				parts = append(parts, fmt.Sprintf("%s %.0f", k, v))
			}
			sort.Strings(parts)
			fmt.Fprintf(w, "    servers counted (the restarted node since its restart): %s\n", strings.Join(parts, ", "))
		}
	}
	byRestart := ""
	if c.RestartNode > 0 {
		byRestart = fmt.Sprintf(", %d more on the restarting node", s.ChurnByRestart)
	}
	fmt.Fprintf(w, "  churn: %d connects (%d failed or dropped early%s), %d deliveries, %d acknowledged lines missed, %d repeated or out of order\n",
		s.ChurnConnects, s.ChurnFailed, byRestart, s.ChurnDeliveries, s.ChurnLost, s.ChurnOutOfOrder)
	for _, f := range s.Flatness {
		v := func(x float64) string {
			if f.Metric == "RSS" {
				return fmt.Sprintf("%.1f MB", x/(1<<20))
			}
			return fmt.Sprintf("%.0f", x)
		}
		where := f.Metric
		if c.Nodes > 1 {
			where = f.Node + " " + f.Metric + ", " + f.Phase
		}
		fmt.Fprintf(w, "  %s (%s): %s in %s, %s in %s (%+.2f%%)\n", where, f.Stat,
			v(f.Second), f.Early, v(f.Last), f.Late, 100*f.Change)
	}
	if s.FirstProblem != "" {
		fmt.Fprintf(w, "  first problem: %s\n", s.FirstProblem)
	}
	if s.ChurnProblem != "" {
		fmt.Fprintf(w, "  first churn problem: %s\n", s.ChurnProblem)
	}
	for _, f := range s.Failures {
		fmt.Fprintf(w, "  FAIL: %s\n", f)
	}
	if s.Pass {
		fmt.Fprintln(w, "  PASS")
	}
}

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}
