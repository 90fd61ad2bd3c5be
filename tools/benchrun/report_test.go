package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func res(f func(*loadResult)) *loadResult {
	r := &loadResult{Clients: 1000, Connected: 1000}
	f(r)
	return r
}

// sampleReport has one outcome per target scenario; the go and node
// arguments set the figures the targets are judged on.
func sampleReport(goSat, nodeSat, goP99, nodeP99, goMem, goPoll, nodePoll float64, goIdle *loadResult) *report {
	r := &report{Servers: map[string]string{"go": "ours", "node": "node"}, Started: time.Unix(0, 0)}
	add := func(sc, srv string, x *loadResult) {
		r.Outcomes = append(r.Outcomes, outcome{Scenario: sc, Title: sc, Server: srv, Result: x})
	}
	add("ws-sat-1000", "go", res(func(x *loadResult) { x.DeliveriesPerSec = goSat }))
	add("ws-sat-1000", "node", res(func(x *loadResult) { x.DeliveriesPerSec = nodeSat }))
	add("ws-20k-1000", "go", res(func(x *loadResult) { x.LatencyMs.P99 = goP99 }))
	add("ws-20k-1000", "node", res(func(x *loadResult) { x.LatencyMs.P99 = nodeP99 }))
	if goIdle == nil {
		goIdle = &loadResult{Clients: 10000, Connected: 10000, RSSPerConnKB: goMem}
	}
	add("ws-idle-10k", "go", goIdle)
	add("ws-idle-10k", "node", &loadResult{Clients: 10000, Connected: 10000, RSSPerConnKB: 27})
	add("poll-sat-1000", "go", res(func(x *loadResult) { x.DeliveriesPerSec = goPoll }))
	add("poll-sat-1000", "node", res(func(x *loadResult) { x.DeliveriesPerSec = nodePoll }))
	return r
}

func TestTargets(t *testing.T) {
	tests := []struct {
		name string
		rep  *report
		met  []bool // fan-out, p99, memory, polling, 10k
	}{
		{
			name: "all met",
			rep:  sampleReport(900e3, 100e3, 5, 20, 8, 1.2e6, 350e3, nil),
			met:  []bool{true, true, true, true, true},
		},
		{
			name: "all just missed",
			rep:  sampleReport(799e3, 100e3, 21, 20, 10.5, 1.0e6, 350e3, nil),
			met:  []bool{false, false, false, false, true},
		},
		{
			name: "exact boundaries count as met",
			rep:  sampleReport(800e3, 100e3, 20, 20, 10, 1.05e6, 350e3, nil),
			met:  []bool{true, true, true, true, true},
		},
		{
			name: "10k run with a dropped connection",
			rep: sampleReport(900e3, 100e3, 5, 20, 8, 1.2e6, 350e3,
				&loadResult{Clients: 10000, Connected: 10000, RSSPerConnKB: 8, DisconnectsIdle: 1, Errors: 1}),
			met: []bool{true, true, true, true, false},
		},
		{
			name: "10k run that did not connect everyone",
			rep: sampleReport(900e3, 100e3, 5, 20, 8, 1.2e6, 350e3,
				&loadResult{Clients: 10000, Connected: 9990, ConnectErrors: 10, Errors: 10, RSSPerConnKB: 8}),
			met: []bool{true, true, false, true, false},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.rep.targets()
			if len(got) != len(tt.met) {
				t.Fatalf("%d targets, want %d", len(got), len(tt.met))
			}
			for i, tg := range got {
				if tg.Met != tt.met[i] {
					t.Errorf("%s: met = %v, want %v (%+v)", tg.Name, tg.Met, tt.met[i], tg)
				}
			}
		})
	}
}

func TestTargetsWithFailedRuns(t *testing.T) {
	rep := sampleReport(900e3, 100e3, 5, 20, 8, 1.2e6, 350e3, nil)
	// Our polling run failed and the server died during the saturation run.
	for i := range rep.Outcomes {
		o := &rep.Outcomes[i]
		if o.Server != "go" {
			continue
		}
		switch o.Scenario {
		case "poll-sat-1000":
			o.Result, o.Err = nil, "server did not start: boom"
		case "ws-sat-1000":
			o.Result.ServerDied = true
			o.Err = "server exited during the run"
		}
	}
	for _, tg := range rep.targets() {
		if strings.Contains(tg.Name, "Polling") || strings.Contains(tg.Name, "Fan-out") {
			if tg.Met || tg.Undecided == "" {
				t.Errorf("%s: a failed run must not count as met (%+v)", tg.Name, tg)
			}
		}
	}
	md := rep.markdown()
	for _, want := range []string{"server did not start: boom", "**not met** (our run failed"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestMarkdownShowsBothServersAndRatio(t *testing.T) {
	rep := sampleReport(900e3, 100e3, 5, 20, 8, 1.2e6, 350e3, nil)
	md := rep.markdown()
	for _, want := range []string{
		"| Fan-out deliveries/s, 1000 WebSocket clients, saturation | ≥ 8× Node | 900k | 100k | 9.00× | met |",
		"| p99 latency, 1000 WebSocket clients at 20k deliveries/s | ≤ Node | 5.00 ms | 20 ms | 0.25× | met |",
		"| RSS per idle WebSocket connection, 10k clients | ≤ 10 KiB | 8.0 KiB | 27.0 KiB | 0.30× | met |",
		"| Polling-only deliveries/s, 1000 clients, saturation | ≥ 3× Node | 1.20M | 350k | 3.43× | met |",
		"| deliveries/s | 900k | 100k | 9.00× |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct{ got, want string }{
		{count(999), "999"},
		{count(1500), "1.5k"},
		{count(123456), "123k"},
		{count(2.5e6), "2.50M"},
		{count(0.5), "0.5"},
		{ratio(10, 4), "2.50×"},
		{ratio(123, 4), "31×"},
		{ratio(1, 0), "–"},
		{millis(1.234), "1.23 ms"},
		{millis(123.4), "123 ms"},
		{kib(9.96), "10.0 KiB"},
		{mib(2048), "2 MiB"},
		{percent(0.995), "100%"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}

func TestPlotWritesPNG(t *testing.T) {
	rep := sampleReport(900e3, 100e3, 5, 20, 8, 1.2e6, 350e3, nil)
	path := filepath.Join(t.TempDir(), "results.png")
	if err := rep.plot(path); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("not a PNG: %d bytes starting %q", len(b), b[:min(8, len(b))])
	}
}

func TestLastLine(t *testing.T) {
	for in, want := range map[string]string{
		"{\"a\":1}\n":             `{"a":1}`,
		"noise\n{\"a\":1}\n\n":    `{"a":1}`,
		"":                        "",
		"only line without break": "only line without break",
	} {
		if got := string(lastLine([]byte(in))); got != want {
			t.Errorf("lastLine(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestContentionIsFlagged(t *testing.T) {
	rep := sampleReport(900e3, 100e3, 5, 20, 8, 1.2e6, 350e3, nil)
	rep.ServerCPU, rep.LoadgenCPU = "0", "1"
	quiet := "| Fan-out deliveries/s, 1000 WebSocket clients, saturation | ≥ 8× Node | 900k | 100k | 9.00× | met |"
	if md := rep.markdown(); !strings.Contains(md, quiet) {
		t.Fatalf("quiet run flagged or missing:\n%s", md)
	}
	// During Node's run, CPU 0 ran tasks 90% of the time but Node only 50%.
	n := rep.get("ws-sat-1000", "node")
	n.ServerCPUUtil, n.LoadgenCPUUtil, n.CPUTask = 0.5, 0.3, []float64{0.9, 0.35}
	md := rep.markdown()
	if !strings.Contains(md, "| met ⚠ other tasks took up to 40% of a benchmark CPU |") {
		t.Fatalf("contended run not flagged:\n%s", md)
	}
	if !strings.Contains(md, "| other tasks on CPU 0 (server's) | – | 40% | – |") {
		t.Fatalf("other-task row missing:\n%s", md)
	}
}

func TestRepeatedRunsUseTheMedian(t *testing.T) {
	r := &report{Servers: map[string]string{"go": "ours", "node": "node"}}
	for i, v := range []float64{900e3, 300e3, 1.1e6} {
		r.Outcomes = append(r.Outcomes,
			outcome{Scenario: "ws-sat-1000", Server: "go", Round: i, Result: res(func(x *loadResult) { x.DeliveriesPerSec = v })},
			outcome{Scenario: "ws-sat-1000", Server: "node", Round: i, Result: res(func(x *loadResult) { x.DeliveriesPerSec = v / 10 })})
	}
	for i, v := range []float64{30, 10, 20} {
		r.Outcomes = append(r.Outcomes,
			outcome{Scenario: "ws-20k-1000", Server: "go", Round: i, Result: res(func(x *loadResult) { x.LatencyMs.P99 = v })})
	}
	if got := r.get("ws-sat-1000", "go").DeliveriesPerSec; got != 900e3 {
		t.Errorf("median deliveries/s = %v, want 900k", got)
	}
	if got := r.get("ws-20k-1000", "go").LatencyMs.P99; got != 20 {
		t.Errorf("median p99 = %v, want 20", got)
	}
	note := r.roundsNote("ws-sat-1000")
	if !strings.Contains(note, "Run 3 times") || !strings.Contains(note, "ours 900k, 300k, 1.10M") {
		t.Errorf("rounds note = %q", note)
	}

	// A failed round wins over a good median: failures are never hidden.
	r.Outcomes[2].Err = "server exited during the run"
	r.Outcomes[2].Result.ServerDied = true
	if got := r.get("ws-sat-1000", "go"); usable(got) {
		t.Errorf("get returned a usable run although round 2 failed: %+v", got)
	}
	if e := r.errFor("ws-sat-1000", "go"); e != "round 2: server exited during the run" {
		t.Errorf("errFor = %q", e)
	}
	if tg := r.targets()[0]; tg.Met || tg.Undecided == "" {
		t.Errorf("fan-out target with a failed round: %+v", tg)
	}
}

func TestCPUTimes(t *testing.T) {
	a := parseCPUTimes([]byte("cpu  9 9 9 9 9\ncpu0 10 0 10 100 0 0 5 0\ncpu1 0 0 0 100 0 0 0 0\nintr 5\n"))
	b := parseCPUTimes([]byte("cpu  9 9 9 9 9\ncpu0 40 0 20 150 0 0 10 0\ncpu1 0 0 0 200 0 0 0 0\n"))
	if len(a) != 2 || a[0] != (cpuTime{task: 20, total: 125}) {
		t.Fatalf("parsed %+v", a)
	}
	// CPU 0: 40 task ticks out of 95.
	if got := busyShare(a, b, 0); got < 0.42 || got > 0.43 {
		t.Errorf("busyShare(cpu0) = %v, want 40/95", got)
	}
	if got := busyShare(a, b, 1); got != 0 {
		t.Errorf("busyShare(cpu1) = %v, want 0", got)
	}
	if got := busyShare(a, b, 7); got != 0 {
		t.Errorf("busyShare of a missing CPU = %v, want 0", got)
	}
}

// compareReport has ws-sat-1000 and ws-20k-1000 run on two variants, named
// in order.
func compareReport(order []string, satA, satB float64) *report {
	r := &report{Servers: map[string]string{}, Order: order, Started: time.Unix(0, 0)}
	for _, k := range order {
		r.Servers[k] = "name of " + k
	}
	vals := map[string]float64{order[0]: satA, order[1]: satB}
	for _, k := range order {
		r.Outcomes = append(r.Outcomes,
			outcome{Scenario: "ws-sat-1000", Title: "WebSocket, 1000 clients, saturation", Server: k,
				Result: res(func(x *loadResult) { x.DeliveriesPerSec = vals[k] })},
			outcome{Scenario: "ws-20k-1000", Title: "WebSocket, 1000 clients, 20k deliveries/s", Server: k,
				Result: res(func(x *loadResult) { x.LatencyMs.P99 = 10 })})
	}
	return r
}

func TestComparisonOfVariants(t *testing.T) {
	for _, tc := range []struct {
		name  string
		order []string
		a, b  float64 // ws-sat-1000 deliveries/s of order[0], order[1]
		row   string
		runs  string
	}{
		{
			name: "recovery within 10%", order: []string{"go", "go-norecovery"}, a: 1.8e6, b: 2e6,
			row:  "| WebSocket, 1000 clients, saturation | deliveries/s | 1.80M | 2.00M | 0.90× | ≥ 0.90× (within 10% of recovery off) | met |",
			runs: "| figure | go | go-norecovery | go/go-norecovery |\n|---|---|---|---|\n",
		},
		{
			name: "named the other way round", order: []string{"go-norecovery", "go"}, a: 2e6, b: 1.7e6,
			row:  "| WebSocket, 1000 clients, saturation | deliveries/s | 1.70M | 2.00M | 0.85× | ≥ 0.90× (within 10% of recovery off) | **not met** |",
			runs: "| deliveries/s | 1.70M | 2.00M | 0.85× |",
		},
		{
			name: "streams against pub/sub", order: []string{"go3-pubsub", "go3-streams"}, a: 1e6, b: 820e3,
			row:  "| WebSocket, 1000 clients, saturation | deliveries/s | 820k | 1.00M | 0.82× | ≥ 0.80× pub/sub | met |",
			runs: "## Comparison: go3-streams vs go3-pubsub",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			md := compareReport(tc.order, tc.a, tc.b).markdown()
			for _, want := range []string{tc.row, tc.runs,
				"| WebSocket, 1000 clients, 20k deliveries/s | latency p99 | 10 ms | 10 ms | 1.00× | – | – |"} {
				if !strings.Contains(md, want) {
					t.Errorf("markdown lacks %q:\n%s", want, md)
				}
			}
			if strings.Contains(md, "## Targets") || strings.Contains(md, "ours/Node") {
				t.Errorf("a comparison of variants shows the targets against Node:\n%s", md)
			}
		})
	}
}

func TestComparisonWithFailedRun(t *testing.T) {
	r := compareReport([]string{"go3-streams", "go3-pubsub"}, 1e6, 1e6)
	r.Outcomes[0].Result.Missing = 12
	c := r.comparisons()[0]
	if c.Met || !strings.Contains(c.Undecided, "12 missing deliveries") {
		t.Errorf("a run with missing deliveries judged: %+v", c)
	}
	r.Outcomes[2].Err = "server did not start: boom" // go3-pubsub, ws-sat-1000
	r.Outcomes[2].Result = nil
	if c := r.comparisons()[0]; c.Met || !strings.Contains(c.Undecided, "go3-pubsub run failed: server did not start: boom") {
		t.Errorf("failed run: %+v", c)
	}
	path := filepath.Join(t.TempDir(), "results.png")
	if err := r.plot(path); err != nil {
		t.Fatal(err)
	}
}
