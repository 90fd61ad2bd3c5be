// Command benchrun runs the chat benchmark: it starts this project's chat
// server and the reference Node.js socket.io chat server one at a time on a
// loopback port chosen by the kernel, pinned to one CPU, drives each with
// tools/loadgen pinned to another CPU, and writes the results as JSON lines, a
// markdown table with the targets marked met or not met, and a PNG plot.
//
// It also compares other variants of our server with each other, e.g. with
// connection-state recovery on and off (go, go-norecovery), or a three-node
// cluster on the Redis Streams broker and on the pub/sub broker
// (go3-streams, go3-pubsub: redis-server and the three nodes all pinned to
// the server CPU, the load generator's clients spread over the nodes).
//
// With -suite scale (make bench-scale) it runs the scale suite instead:
// idle WebSocket connections up to the open-file limit, with the servers'
// memory per connection on the way, one line to every client, a line a
// second, and idle polling sessions (see scale.go).
//
// It is normally started by scripts/bench.sh (make bench), which builds the
// binaries and raises the open-file limit first.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"siogo/internal/proc"
)

// scenario is one loadgen invocation, run once against each server.
type scenario struct {
	key     string
	title   string
	args    []string
	timeout time.Duration
	repeat  int // rounds, servers alternating; the report takes each server's median
	// Arguments added to our server's command line, and to the Node
	// server's, for this scenario.
	oursArgs, nodeArgs []string
}

// serverArgs are the arguments the scenario adds to server v's command.
func (sc scenario) serverArgs(v variant) []string {
	if v.key == "node" {
		return sc.nodeArgs
	}
	return sc.oursArgs
}

// The suites: make bench, and make bench-scale.
const (
	suiteBench = "bench"
	suiteScale = "scale"
)

func benchScenarios(quick bool) []scenario {
	measure := []string{"-hold", "500ms", "-warmup", "2s", "-duration", "5s"}
	if quick {
		measure = []string{"-hold", "500ms", "-warmup", "1s", "-duration", "2s"}
	}
	var out []scenario
	sat := func(n int) []string {
		return append([]string{"-clients", fmt.Sprint(n), "-senders", "10", "-window", "16"}, measure...)
	}
	// The scenarios with a relative target run several times, so one
	// disturbed run (the machine may be shared) cannot decide the outcome.
	// Tail latency at a modest rate is the most easily disturbed figure.
	rounds := func(n, r int) int {
		if n == 1000 && !quick {
			return r
		}
		return 1
	}
	for _, n := range []int{100, 1000, 5000} {
		out = append(out, scenario{
			key:     fmt.Sprintf("ws-sat-%d", n),
			title:   fmt.Sprintf("WebSocket, %d clients, saturation", n),
			args:    sat(n),
			timeout: 90 * time.Second,
			repeat:  rounds(n, 3),
		})
	}
	for _, n := range []int{100, 1000, 5000} {
		out = append(out, scenario{
			key:   fmt.Sprintf("ws-20k-%d", n),
			title: fmt.Sprintf("WebSocket, %d clients, 20k deliveries/s", n),
			args: append([]string{"-clients", fmt.Sprint(n), "-senders", "10", "-delivery-rate", "20000"},
				measure...),
			timeout: 90 * time.Second,
			repeat:  rounds(n, 5),
		})
	}
	idle := scenario{
		key:   "ws-idle-10k",
		title: "WebSocket, 10,000 idle clients",
		// Eight source addresses keep 10k connections far from the limits of
		// any one address's ephemeral port range.
		args:    []string{"-clients", "10000", "-senders", "0", "-hold", "3s", "-src", "8", "-dial-concurrency", "100"},
		timeout: 120 * time.Second,
	}
	if quick {
		idle.title = "WebSocket, 2,000 idle clients (quick mode)"
		idle.args = []string{"-clients", "2000", "-senders", "0", "-hold", "1s", "-src", "8", "-dial-concurrency", "100"}
	}
	out = append(out, idle)
	out = append(out, scenario{
		key:     "poll-sat-1000",
		title:   "Polling only, 1000 clients, saturation",
		args:    append([]string{"-transport", "polling", "-clients", "1000", "-senders", "10", "-window", "16"}, measure...),
		timeout: 90 * time.Second,
		repeat:  rounds(1000, 3),
	})
	out = append(out, scenario{
		key:     "ws-eio3-sat-1000",
		title:   "WebSocket EIO3 (client 1.x/2.x), 1000 clients, saturation",
		args:    append([]string{"-eio", "3", "-clients", "1000", "-senders", "10", "-window", "16"}, measure...),
		timeout: 90 * time.Second,
	})
	// Node compresses every copy of a line on its own, an order of
	// magnitude slower than it sends plain ones: a smaller window and a
	// longer drain let its backlog arrive before the run ends.
	out = append(out, scenario{
		key:   "ws-deflate-1000",
		title: "WebSocket with permessage-deflate, 1000 clients, 2 KB lines, saturation (informational)",
		args: append([]string{"-deflate", "-size", "2048", "-clients", "1000", "-senders", "10", "-window", "4", "-drain", "40s"},
			measure...),
		timeout:  90 * time.Second,
		oursArgs: []string{"-per-message-deflate", "-per-message-deflate-threshold", "1024"},
		nodeArgs: []string{"--per-message-deflate"},
	})
	// What an idle connection costs once it has agreed on the extension.
	deflateIdle := scenario{
		key:      "ws-deflate-idle-5k",
		title:    "WebSocket with permessage-deflate, 5,000 idle clients (informational)",
		args:     []string{"-deflate", "-clients", "5000", "-senders", "0", "-hold", "3s", "-src", "8", "-dial-concurrency", "100"},
		timeout:  90 * time.Second,
		oursArgs: []string{"-per-message-deflate", "-per-message-deflate-threshold", "1024"},
		nodeArgs: []string{"--per-message-deflate"},
	}
	if quick {
		deflateIdle.title = "WebSocket with permessage-deflate, 1,000 idle clients (quick mode, informational)"
		deflateIdle.args = []string{"-deflate", "-clients", "1000", "-senders", "0", "-hold", "1s", "-src", "8", "-dial-concurrency", "100"}
	}
	return append(out, deflateIdle)
}

func main() {
	var (
		chatBin   = flag.String("chatserver", "bin/chatserver", "our chat server binary")
		loadBin   = flag.String("loadgen", "bin/loadgen", "load generator binary")
		nodeBin   = flag.String("node", "node", "Node.js executable")
		nodeJS    = flag.String("node-server", "bench/node-chat-server.js", "reference Node.js chat server script")
		outDir    = flag.String("out", "bench", "directory for results.json, RESULTS.md and results.png")
		only      = flag.String("servers", "go,node", "comma list of server variants to run, in turn: "+strings.Join(variantKeys, ", ")+"; the report compares the first two")
		redisBin  = flag.String("redis-server", "redis-server", "redis-server executable, for the cluster variants")
		rounds    = flag.Int("rounds", 0, "run every selected scenario this many times, the servers taking turns (0: each scenario's own count)")
		runOnly   = flag.String("run", "", "regexp: run only the scenarios whose key matches")
		budget    = flag.Duration("budget", 9*time.Minute, "total time budget; later scenarios are skipped once it is spent")
		quick     = flag.Bool("quick", false, "shorter windows and fewer clients (for trying the harness): bench 2k instead of 10k idle clients; scale 3k WebSocket clients and 2k polling sessions")
		suite     = flag.String("suite", suiteBench, "bench: the chat benchmark (make bench); scale: idle connections up to the open-file limit, one line to all, a line a second, idle polling sessions (make bench-scale)")
		scaleMax  = flag.Int("scale-clients", 0, "scale suite: WebSocket clients at the maximum (0: the open-file limit less a reserve, at most 50,000)")
		serverCPU = flag.String("server-cpu", "0", "CPU list the servers are pinned to")
		loadCPU   = flag.String("loadgen-cpu", "1", "CPU list the load generator is pinned to")
		quietRun  = flag.Duration("quiet-wait", 15*time.Second, "before each run, wait up to this long for other programs to leave the benchmark CPUs")
		quietAll  = flag.Duration("quiet-total", 2*time.Minute, "total allowance for those waits")
	)
	flag.Parse()
	if *suite != suiteBench && *suite != suiteScale {
		fatalf("unknown -suite %q: bench or scale", *suite)
	}
	budgetSet := false
	flag.Visit(func(f *flag.Flag) { budgetSet = budgetSet || f.Name == "budget" })
	if *suite == suiteScale && !budgetSet {
		*budget = 19 * time.Minute
	}
	// Every process started inherits the limit: servers and load
	// generator alike may hold as many connections as it allows.
	fileLimit, limitErr := raiseFileLimit()
	var list []scenario
	var limitNote string
	if *suite == suiteScale {
		most, how := *scaleMax, "set by -scale-clients"
		if most == 0 {
			if limitErr != nil {
				fatalf("open-file limit: %v; give -scale-clients", limitErr)
			}
			most, how = maxClients(fileLimit), fmt.Sprintf("the limit less %d for everything else", fileLimit-uint64(maxClients(fileLimit)))
		}
		if *quick && most > quickScaleClients {
			most, how = quickScaleClients, "quick mode"
		}
		if most < 2 || most > loadgenMaxClients {
			fatalf("-scale-clients must be 2 to %d, got %d", loadgenMaxClients, most)
		}
		list = scaleScenarios(*quick, most)
		limitNote = fmt.Sprintf("open-file limit %d per process (soft raised to hard); %d WebSocket clients at the maximum (%s)", fileLimit, most, how)
	} else {
		list = benchScenarios(*quick)
	}
	deadline := time.Now().Add(*budget)
	// On Ctrl-C or SIGTERM, stop the current server and loadgen, then still
	// write what was measured so far.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	all := variants(*chatBin, *nodeBin, *nodeJS)
	var servers []variant
	for _, k := range strings.Split(*only, ",") {
		s, ok := all[strings.TrimSpace(k)]
		if !ok {
			fatalf("unknown server %q; known: %s", k, strings.Join(variantKeys, ", "))
		}
		if s.nodes > 0 {
			if _, err := exec.LookPath(*redisBin); err != nil {
				fatalf("%s needs %s: %v", s.key, *redisBin, err)
			}
		}
		servers = append(servers, s)
	}
	if *rounds < 0 {
		fatalf("-rounds must not be negative")
	}
	var filter *regexp.Regexp
	if *runOnly != "" {
		filter = regexp.MustCompile(*runOnly)
	}

	pin := newPinner(*serverCPU, *loadCPU)
	quiet := &quietWaiter{perRun: *quietRun, left: *quietAll}
	for _, c := range []string{*serverCPU, *loadCPU} {
		if n, err := strconv.Atoi(c); err == nil {
			quiet.cpus = append(quiet.cpus, n)
		}
	}
	nodeVersion, _ := exec.Command(*nodeBin, "--version").Output()
	// The commit the binaries were built from, when run inside the repository.
	commit, _ := exec.Command("git", "describe", "--always", "--dirty").Output()
	rep := &report{Started: time.Now().UTC(), Machine: describeMachine(), Pinned: pin.ok, LoadBefore: loadAverage(),
		Software:  fmt.Sprintf("%s, Node.js %s", runtime.Version(), bytes.TrimSpace(nodeVersion)),
		Commit:    string(bytes.TrimSpace(commit)),
		ServerCPU: *serverCPU, LoadgenCPU: *loadCPU, Servers: map[string]string{},
		Suite: *suite, FileLimit: limitNote, Budget: *budget}
	for _, s := range servers {
		rep.Servers[s.key] = s.name
		rep.Order = append(rep.Order, s.key)
		rep.Commands = append(rep.Commands, s.command())
	}
	for _, sc := range list {
		if filter != nil && !filter.MatchString(sc.key) {
			continue
		}
		if *rounds > 0 {
			sc.repeat = *rounds
		}
		for round := range max(sc.repeat, 1) {
			for _, s := range servers {
				out := outcome{Scenario: sc.key, Title: sc.title, Server: s.key, Args: sc.args, Round: round,
					ServerArgs: sc.serverArgs(s)}
				switch {
				case ctx.Err() != nil:
					out.Err = "not run: interrupted"
				case time.Until(deadline) < sc.timeout/2:
					out.Err = "not run: time budget spent"
				default:
					if waited, busy := quiet.wait(); waited > time.Second || busy >= quietBelow {
						logf("   waited %.1fs for quiet CPUs (others at %.0f%%)", waited.Seconds(), 100*busy)
						rep.QuietWaited += waited
						if busy >= quietBelow {
							rep.NotQuiet++
						}
					}
					t0 := time.Now()
					logf("== %s on %s (round %d)", sc.key, s.name, round+1)
					out.Result, out.Err = runOne(ctx, pin, s, sc, round, *loadBin, *redisBin, deadline)
					logf("   %.1fs", time.Since(t0).Seconds())
				}
				if out.Err != "" {
					logf("   %s", out.Err)
				}
				rep.Outcomes = append(rep.Outcomes, out)
			}
		}
	}
	rep.Finished = time.Now().UTC()
	rep.LoadAfter = loadAverage()

	if err := os.MkdirAll(*outDir, 0o755); err != nil {
		fatalf("%v", err)
	}
	if err := writeJSONLines(filepath.Join(*outDir, "results.json"), rep); err != nil {
		fatalf("%v", err)
	}
	md := rep.markdown()
	if err := os.WriteFile(filepath.Join(*outDir, "RESULTS.md"), []byte(md), 0o644); err != nil {
		fatalf("%v", err)
	}
	if err := rep.plot(filepath.Join(*outDir, "results.png")); err != nil {
		fatalf("plot: %v", err)
	}
	fmt.Print(md)
}

// pinner prefixes commands with taskset when it is available.
type pinner struct {
	ok                bool
	serverCPU, loadCP string
}

func newPinner(serverCPU, loadCPU string) pinner {
	_, err := exec.LookPath("taskset")
	if err != nil {
		logf("taskset not found: running unpinned")
	}
	return pinner{ok: err == nil, serverCPU: serverCPU, loadCP: loadCPU}
}

func (p pinner) wrap(cpus string, argv []string) []string {
	if !p.ok {
		return argv
	}
	return append([]string{"taskset", "-c", cpus}, argv...)
}

// runOne starts a fresh server (or cluster), runs the loadgen against it
// and stops it. Fresh processes per scenario give every run the same
// starting memory and clientID counter.
func runOne(parent context.Context, pin pinner, s variant, sc scenario, round int, loadBin, redisBin string, deadline time.Time) (*loadResult, string) {
	ctx, cancel := context.WithDeadline(parent, deadline)
	defer cancel()
	s.argv = append(append([]string(nil), s.argv...), sc.serverArgs(s)...)
	srv, err := startVariant(ctx, pin, s, redisBin)
	if err != nil {
		return nil, fmt.Sprintf("server did not start: %v", err)
	}
	defer srv.stop()

	label := sc.key + "/" + s.key
	if sc.repeat > 1 {
		label += fmt.Sprintf("/round%d", round+1)
	}
	timeout := sc.timeout
	if rem := time.Until(deadline); rem < timeout {
		timeout = rem
	}
	args := append([]string{loadBin, "-url", srv.urls(), "-pid", srv.pids(),
		"-label", label, "-timeout", timeout.String()}, sc.args...)
	lctx, lcancel := context.WithTimeout(ctx, timeout+10*time.Second)
	defer lcancel()
	argv := pin.wrap(pin.loadCP, args)
	cmd := exec.CommandContext(lctx, argv[0], argv[1:]...)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &prefixWriter{w: os.Stderr, prefix: "   "}
	runErr := cmd.Run()
	line := lastLine(stdout.Bytes())
	if len(line) == 0 {
		return nil, fmt.Sprintf("loadgen produced no result: %v; server log tail: %s", runErr, srv.tails())
	}
	var res loadResult
	if err := json.Unmarshal(line, &res); err != nil {
		return nil, fmt.Sprintf("loadgen output %q: %v", line, err)
	}
	res.Raw = json.RawMessage(bytes.Clone(line))
	if died, logs := srv.exited(); died {
		res.ServerDied = true
		return &res, "server exited during the run; log tail: " + logs
	}
	if res.Error != "" {
		return &res, "loadgen: " + res.Error
	}
	return &res, ""
}

// tail is the last lines of a server's output on one line.
func tail(p *proc.Process) string {
	return strings.ReplaceAll(strings.TrimSpace(p.Tail(5)), "\n", " | ")
}

func lastLine(b []byte) []byte {
	b = bytes.TrimSpace(b)
	if i := bytes.LastIndexByte(b, '\n'); i >= 0 {
		b = b[i+1:]
	}
	return b
}

// prefixWriter indents another program's output. Writes may split lines
// anywhere, so it remembers whether the next byte starts a line.
type prefixWriter struct {
	w       io.Writer
	prefix  string
	midLine bool
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	var out []byte
	for _, line := range bytes.SplitAfter(b, []byte("\n")) {
		if len(line) == 0 {
			continue
		}
		if !p.midLine {
			out = append(out, p.prefix...)
		}
		out = append(out, line...)
		p.midLine = line[len(line)-1] != '\n'
	}
	if _, err := p.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

func writeJSONLines(path string, rep *report) error {
	var buf bytes.Buffer
	for _, o := range rep.Outcomes {
		if o.Result != nil {
			buf.Write(o.Result.Raw)
		} else {
			line, _ := json.Marshal(map[string]any{"label": o.Scenario + "/" + o.Server, "round": o.Round + 1, "error": o.Err})
			buf.Write(line)
		}
		buf.WriteByte('\n')
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}

func fatalf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "benchrun: "+format+"\n", args...)
	os.Exit(1)
}
