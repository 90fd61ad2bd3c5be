package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// scaleRun is a ws-scale result: rss per connection at 5k, 10k and 19k,
// the one-to-all p99 and the server CPU at a line a second.
func scaleRun(rss [3]float64, p99, cpu float64) *loadResult {
	x := &loadResult{Clients: 19000, Connected: 19000, ConnectSeconds: 12, RSSPerConnKB: rss[2],
		OneToAll: &oneToAll{Lines: 5, P50Ms: p99 / 2, P99Ms: p99, MaxMs: p99 * 1.1, LastMedianMs: p99 * 1.05}, ServerCPUUtil: cpu}
	x.Checkpoints = []checkpoint{{5000, rss[0]}, {10000, rss[1]}}
	return x
}

func scaleReport(ours, node *loadResult) *report {
	r := &report{Suite: suiteScale, Servers: map[string]string{"go": "siogo", "node": "Node socket.io 4.8.4"},
		Order: []string{"go", "node"}, Started: time.Unix(0, 0), ServerCPU: "0", LoadgenCPU: "1",
		FileLimit: "open-file limit 20000 per process (soft raised to hard); 19000 WebSocket clients at the maximum (the limit less 1000 for everything else)"}
	for _, sc := range scaleScenarios(false, 19000) {
		for _, srv := range []string{"go", "node"} {
			x := ours
			if srv == "node" {
				x = node
			}
			if sc.key == "poll-idle-10k" {
				x = &loadResult{Clients: 10000, Connected: 10000, RSSPerConnKB: map[string]float64{"go": 9, "node": 20}[srv]}
			}
			r.Outcomes = append(r.Outcomes, outcome{Scenario: sc.key, Title: sc.title, Server: srv, Args: sc.args,
				ServerArgs: sc.serverArgs(variant{key: srv}), Result: x})
		}
	}
	return r
}

func TestScaleTargets(t *testing.T) {
	node := scaleRun([3]float64{16, 15.5, 15}, 200, 0.30)
	for _, tc := range []struct {
		name string
		ours *loadResult
		met  []bool   // memory, one-to-all p99, CPU
		why  []string // a part of each undecided reason, "" when decided
	}{
		{"all met", scaleRun([3]float64{9, 8.5, 7.9}, 50, 0.05), []bool{true, true, true}, []string{"", "", ""}},
		{"exact boundaries", scaleRun([3]float64{9, 8.5, 8}, 200, 0.30), []bool{true, true, false}, []string{"", "", ""}},
		{"all missed", scaleRun([3]float64{9, 8.5, 8.1}, 201, 0.31), []bool{false, false, false}, []string{"", "", ""}},
		{"connect errors", func() *loadResult {
			x := scaleRun([3]float64{7, 7, 7}, 50, 0.05)
			x.Connected, x.ConnectErrors, x.Errors = 18990, 10, 10
			return x
		}(), []bool{false, false, false}, []string{"18990 of 19000 connected, 10 connect errors", "10 errors", "10 errors"}},
		{"missing one-to-all receipts", func() *loadResult {
			x := scaleRun([3]float64{7, 7, 7}, 50, 0.05)
			x.OneToAll.Missing = 3
			return x
		}(), []bool{true, false, true}, []string{"", "one-to-all lines missing", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := scaleReport(tc.ours, node).targets()
			if len(got) != 3 {
				t.Fatalf("%d targets, want 3", len(got))
			}
			for i, tg := range got {
				if tg.Met != tc.met[i] || (tc.why[i] == "") != (tg.Undecided == "") || !strings.Contains(tg.Undecided, tc.why[i]) {
					t.Errorf("%s: met %v (%q), want %v (%q)", tg.Name, tg.Met, tg.Undecided, tc.met[i], tc.why[i])
				}
			}
		})
	}
}

func TestScaleMarkdown(t *testing.T) {
	md := scaleReport(scaleRun([3]float64{9, 8.5, 7.9}, 50, 0.05), scaleRun([3]float64{16, 15.5, 15}, 200, 0.30)).markdown()
	for _, want := range []string{
		"# Scale benchmark: siogo vs Node socket.io 4.8.4",
		"19000 WebSocket clients at the maximum",
		"settled for a few seconds",
		"| RSS per idle WebSocket connection, 19k clients | ≤ 8 KiB, 0 errors | 7.9 KiB | 15.0 KiB | 0.53× | met |",
		"| One line to all 19k clients: p99 receipt latency | ≤ Node | 50 ms | 200 ms | 0.25× | met |",
		"| Server CPU at 1 line/s to 19k clients | < Node | 5% | 30% | 0.17× | met |",
		"### WebSocket, 19,000 clients: idle memory, one line to all, 1 line/s",
		"-checkpoints 5000,10000 -one-to-all 5 -senders 1 -rate 1 -warmup 2s -duration 60s",
		"Added to the server's command line: siogo `-max-connections 19000`.",
		"| time to connect all | 12.0 s | 12.0 s | 1.00× |",
		"| RSS per connection, 5k connected | 9.0 KiB | 16.0 KiB | 0.56× |",
		"| RSS per connection, 19k connected (all) | 7.9 KiB | 15.0 KiB | 0.53× |",
		"| one line to all: receipt latency p99 | 50 ms | 200 ms | 0.25× |",
		"| one line to all: last client has it after (median) | 52 ms | 210 ms | 0.25× |",
		"| 1 line/s: server CPU | 5% | 30% | 0.17× |",
		"### Polling, 10,000 idle sessions",
		"-idle-conns 100 -hold 30s",
		"| RSS per session | 9.0 KiB | 20.0 KiB | 0.45× |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	path := filepath.Join(t.TempDir(), "results.png")
	rep := scaleReport(scaleRun([3]float64{9, 8.5, 7.9}, 50, 0.05), nil)
	if err := rep.plot(path); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || len(b) < 1000 || string(b[1:4]) != "PNG" {
		t.Fatalf("plot: %d bytes, %v", len(b), err)
	}
}

func TestScaleScenarios(t *testing.T) {
	for limit, want := range map[uint64]int{20000: 19000, 5000: 4500, 1 << 20: loadgenMaxClients} {
		if got := maxClients(limit); got != want {
			t.Errorf("maxClients(%d) = %d, want %d", limit, got, want)
		}
	}
	for _, tc := range []struct {
		quick      bool
		most       int
		ws, poll   string // parts of the loadgen arguments
		notWS      string
		oursServer string
	}{
		{false, 19000, "-clients 19000 -src 8 ", "-clients 10000 ", "", "-max-connections 19000"},
		{false, 50000, "-clients 50000 -src 20 ", "-clients 10000 ", "", "-max-connections 50000"},
		{false, 8000, "-checkpoints 5000 -one-to-all", "-clients 8000 ", "10000", "-max-connections 8000"},
		{true, 3000, "-checkpoints 1000,2000 -one-to-all 3", "-clients 2000 ", "-duration 60s", "-max-connections 3000"},
	} {
		list := scaleScenarios(tc.quick, tc.most)
		ws, poll := strings.Join(list[0].args, " ")+" ", strings.Join(list[1].args, " ")+" "
		if !strings.Contains(ws, tc.ws) || !strings.Contains(poll, tc.poll) || (tc.notWS != "" && strings.Contains(ws, tc.notWS)) {
			t.Errorf("%+v: ws %q, poll %q", tc, ws, poll)
		}
		for _, sc := range list {
			if got := strings.Join(sc.serverArgs(variant{key: "go"}), " "); got != tc.oursServer || sc.serverArgs(variant{key: "node"}) != nil {
				t.Errorf("%s: ours %q, Node %q", sc.key, got, sc.serverArgs(variant{key: "node"}))
			}
		}
	}
}

func TestDeflateScenarioStartsBothServersWithCompression(t *testing.T) {
	i := slices.IndexFunc(benchScenarios(false), func(sc scenario) bool { return sc.key == "ws-deflate-1000" })
	if i < 0 {
		t.Fatal("no ws-deflate-1000 scenario")
	}
	sc := benchScenarios(false)[i]
	args := " " + strings.Join(sc.args, " ") + " "
	if !strings.Contains(args, " -deflate ") || !strings.Contains(args, " -size 2048 ") || !strings.Contains(args, " -clients 1000 ") {
		t.Errorf("loadgen arguments %q", args)
	}
	if got := strings.Join(sc.serverArgs(variant{key: "go-norecovery"}), " "); got != "-per-message-deflate -per-message-deflate-threshold 1024" {
		t.Errorf("our server's arguments %q", got)
	}
	if got := strings.Join(sc.serverArgs(variant{key: "node"}), " "); got != "--per-message-deflate" {
		t.Errorf("Node's arguments %q", got)
	}
}

// TestFileLimitReachesChildren: after raiseFileLimit, what benchrun starts
// gets the hard open-file limit as its soft limit.
func TestFileLimitReachesChildren(t *testing.T) {
	limit, err := raiseFileLimit()
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("sh", "-c", "ulimit -Sn; ulimit -Hn").Output()
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 || f[0] != f[1] || (f[0] != "unlimited" && f[0] != strconv.FormatUint(limit, 10)) {
		t.Errorf("a child's soft and hard limits: %q; raiseFileLimit returned %d", out, limit)
	}
}
