package main

import (
	"fmt"
	"io"
	"math"
	"slices"
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
}

func (c *config) export() configSummary {
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.String()
	}
	return configSummary{
		URL: c.url, Clients: c.clients, ClientsPerKind: c.clients / len(kinds), Kinds: strings.Join(names, ", "),
		Senders: c.senders, LinesPerSecond: c.rate, ChurnPerSecond: c.churn, ChurnLife: c.churnLife.String(),
		Duration: c.duration.String(), SampleEvery: c.sample.String(), Window: c.window.String(), Tolerance: c.tolerance,
	}
}

// flatness compares a metric's median over the second window of the run
// with its median over the last one.
type flatness struct {
	Second float64 `json:"second_window_median"`
	Last   float64 `json:"last_window_median"`
	Change float64 `json:"relative_change"`
}

type summary struct {
	Config             configSummary `json:"config"`
	RampUp             string        `json:"ramp_up"`
	LoadTime           string        `json:"load_time"`
	LinesSent          int64         `json:"lines_sent"`
	LinesAcked         int64         `json:"lines_acked"`
	Deliveries         int64         `json:"deliveries"`
	Lost               int64         `json:"lost"`
	OutOfOrder         int64         `json:"out_of_order"`
	SteadyDisconnected int           `json:"steady_disconnected"`
	SendErrors         int64         `json:"send_errors"`
	FirstProblem       string        `json:"first_problem,omitempty"`
	ChurnConnects      int64         `json:"churn_connects"`
	ChurnFailed        int64         `json:"churn_failed"`
	ChurnDropped       int64         `json:"churn_dropped"`
	ChurnDeliveries    int64         `json:"churn_deliveries"`
	ChurnOutOfOrder    int64         `json:"churn_out_of_order"`
	ChurnProblem       string        `json:"churn_problem,omitempty"`
	LatencyP50         string        `json:"latency_p50"`
	LatencyP99         string        `json:"latency_p99"`
	LatencyMax         string        `json:"latency_max"`
	RSS                flatness      `json:"rss"`
	Goroutines         flatness      `json:"goroutines"`
	Failures           []string      `json:"failures"`
	Pass               bool          `json:"pass"`
	Samples            []sample      `json:"samples"`
}

func (s *summary) fail(format string, args ...any) {
	s.Failures = append(s.Failures, fmt.Sprintf(format, args...))
}

// window returns the median of pick over the samples taken in [from, to):
// a median, so that a reading caught in a burst of short-lived goroutines
// or just before a garbage collection does not sway the comparison.
func window(samples []sample, from, to time.Duration, pick func(sample) float64) (float64, int) {
	var vs []float64
	for _, s := range samples {
		if s.At >= from && s.At < to {
			vs = append(vs, pick(s))
		}
	}
	if len(vs) == 0 {
		return math.NaN(), 0
	}
	slices.Sort(vs)
	if n := len(vs); n%2 == 0 {
		return (vs[n/2-1] + vs[n/2]) / 2, n
	}
	return vs[len(vs)/2], len(vs)
}

func (s *summary) judge(cfg *config, loadTime time.Duration) {
	if s.Lost > 0 {
		s.fail("%d acknowledged lines never reached a client connected for the whole run", s.Lost)
	}
	if s.OutOfOrder > 0 {
		s.fail("%d lines out of sequence at long-lived clients", s.OutOfOrder)
	}
	if s.SteadyDisconnected > 0 {
		s.fail("%d long-lived clients were disconnected", s.SteadyDisconnected)
	}
	if s.SendErrors > 0 {
		s.fail("%d senders could not send", s.SendErrors)
	}
	if s.LinesAcked == 0 {
		s.fail("no line was acknowledged")
	}
	if s.ChurnFailed > 0 || s.ChurnDropped > 0 || s.ChurnOutOfOrder > 0 {
		s.fail("churn: %d connects failed, %d clients dropped, %d lines out of sequence", s.ChurnFailed, s.ChurnDropped, s.ChurnOutOfOrder)
	}
	w := cfg.window
	for _, m := range []struct {
		name string
		dst  *flatness
		pick func(sample) float64
	}{
		{"RSS", &s.RSS, func(x sample) float64 { return x.RSS }},
		{"goroutines", &s.Goroutines, func(x sample) float64 { return x.Goroutines }},
	} {
		second, n2 := window(s.Samples, w, 2*w, m.pick)
		last, nl := window(s.Samples, loadTime-w, loadTime+time.Second, m.pick)
		if n2 == 0 || nl == 0 {
			s.fail("%s: no readings in the windows compared (%d and %d)", m.name, n2, nl)
			continue
		}
		*m.dst = flatness{Second: second, Last: last, Change: (last - second) / second}
		if math.Abs(m.dst.Change) > cfg.tolerance {
			s.fail("%s not flat: last window's median %.0f is %+.1f%% off the second window's %.0f (tolerance %.0f%%)",
				m.name, last, 100*m.dst.Change, second, 100*cfg.tolerance)
		}
	}
	s.Pass = len(s.Failures) == 0
}

func (s *summary) print(w io.Writer) {
	c := s.Config
	fmt.Fprintf(w, "soak: %d clients (%d each of %s), %d senders at %g lines/s in all, churn %d/s (each staying %s), %s after a %s ramp-up\n",
		c.Clients, c.ClientsPerKind, c.Kinds, c.Senders, c.LinesPerSecond, c.ChurnPerSecond, c.ChurnLife, s.LoadTime, s.RampUp)
	fmt.Fprintf(w, "  lines: %d sent, %d acknowledged, %d deliveries to long-lived clients; lost %d, out of order %d; latency p50 %s, p99 %s, max %s\n",
		s.LinesSent, s.LinesAcked, s.Deliveries, s.Lost, s.OutOfOrder, s.LatencyP50, s.LatencyP99, s.LatencyMax)
	fmt.Fprintf(w, "  churn: %d connects (%d failed), %d dropped early, %d deliveries, %d out of order\n",
		s.ChurnConnects, s.ChurnFailed, s.ChurnDropped, s.ChurnDeliveries, s.ChurnOutOfOrder)
	fmt.Fprintf(w, "  RSS: %.1f MB in the second %s, %.1f MB in the last (%+.2f%%)\n",
		s.RSS.Second/(1<<20), c.Window, s.RSS.Last/(1<<20), 100*s.RSS.Change)
	fmt.Fprintf(w, "  goroutines: %.0f in the second %s, %.0f in the last (%+.2f%%)\n",
		s.Goroutines.Second, c.Window, s.Goroutines.Last, 100*s.Goroutines.Change)
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
