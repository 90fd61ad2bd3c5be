package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// loadResult holds the fields of a loadgen JSON line the report uses.
type loadResult struct {
	Label            string  `json:"label"`
	Clients          int     `json:"clients"`
	Connected        int     `json:"connected"`
	ConnectErrors    int     `json:"connect_errors"`
	ConnectSeconds   float64 `json:"connect_s"`
	ConnectRate      float64 `json:"connect_per_s"`
	HandshakeP50Ms   float64 `json:"handshake_p50_ms"`
	HandshakeP99Ms   float64 `json:"handshake_p99_ms"`
	Mode             string  `json:"mode"`
	MsgsPerSec       float64 `json:"msgs_per_s"`
	DeliveriesPerSec float64 `json:"deliveries_per_s"`
	LatencyMs        struct {
		P50 float64 `json:"p50"`
		P90 float64 `json:"p90"`
		P99 float64 `json:"p99"`
		Max float64 `json:"max"`
	} `json:"latency_ms"`
	Missing          uint64       `json:"missing"`
	ServerRSSStartKB int64        `json:"server_rss_start_kb"`
	ServerRSSIdleKB  int64        `json:"server_rss_idle_kb"`
	RSSPerConnKB     float64      `json:"rss_per_conn_kb"`
	ServerFDsIdle    int          `json:"server_fds_idle"`
	Checkpoints      []checkpoint `json:"checkpoints"`
	OneToAll         *oneToAll    `json:"one_to_all"`
	DeflateAgreed    int          `json:"deflate_agreed"`
	ServerRSSLoadKB  int64        `json:"server_rss_load_kb"`
	ServerCPUUtil    float64      `json:"server_cpu_util"`
	LoadgenCPUUtil   float64      `json:"loadgen_cpu_util"`
	CPUTask          []float64    `json:"cpu_task"`
	DisconnectsIdle  int64        `json:"disconnects_idle"`
	Disconnects      int64        `json:"disconnects"`
	Errors           int          `json:"errors"`
	FirstError       string       `json:"first_error"`
	Error            string       `json:"error"`

	Raw        json.RawMessage `json:"-"`
	ServerDied bool            `json:"-"`
}

// checkpoint is a memory reading loadgen took on the way to all clients
// connected.
type checkpoint struct {
	Clients      int     `json:"clients"`
	RSSPerConnKB float64 `json:"rss_per_conn_kb"`
}

// oneToAll holds the figures of loadgen's one-to-all lines.
type oneToAll struct {
	Lines        int     `json:"lines"`
	Missing      int64   `json:"missing"`
	LastMedianMs float64 `json:"last_median_ms"`
	P50Ms        float64 `json:"p50_ms"`
	P99Ms        float64 `json:"p99_ms"`
	MaxMs        float64 `json:"max_ms"`
}

// outcome is one scenario run against one server.
type outcome struct {
	Scenario, Title, Server string
	Args                    []string // the scenario's loadgen arguments
	ServerArgs              []string // what the scenario added to the server's command line
	Round                   int      // 0-based, for repeated scenarios
	Result                  *loadResult
	Err                     string
}

type report struct {
	Started, Finished     time.Time
	Machine               string
	Software              string   // Go and Node.js versions
	Commit                string   // git describe of the working tree, if known
	LoadBefore, LoadAfter string   // /proc/loadavg at the start and the end
	Commands              []string // how each server was started
	QuietWaited           time.Duration
	NotQuiet              int // runs started although other programs were busy on the benchmark CPUs
	Pinned                bool
	ServerCPU, LoadgenCPU string
	Servers               map[string]string // key -> display name
	Order                 []string          // the server keys as -servers named them
	Outcomes              []outcome
	Suite                 string        // suiteBench ("" too) or suiteScale
	FileLimit             string        // scale suite: the open-file limit and the client count it allows
	Budget                time.Duration // the time the run was given
}

// order returns the servers run, in the order -servers named them.
func (r *report) order() []string {
	if len(r.Order) > 0 {
		return r.Order
	}
	var keys []string
	for _, k := range variantKeys {
		if _, ok := r.Servers[k]; ok {
			keys = append(keys, k)
		}
	}
	return keys
}

// versusNode reports whether the run is the benchmark proper, our server
// against the reference Node.js server (or one of the two alone), whose
// report has the targets table and columns "ours" and "Node".
func (r *report) versusNode() bool {
	for _, k := range r.order() {
		if k != "go" && k != "node" {
			return false
		}
	}
	return true
}

// columns returns the servers in the order the tables show them: ours and
// Node in the benchmark proper; otherwise the compared pair first, then
// the others as named.
func (r *report) columns() []string {
	if r.versusNode() {
		return []string{"go", "node"}
	}
	cols := r.order()
	if a, b, ok := r.pair(); ok {
		cols = append([]string{a, b}, slices.DeleteFunc(slices.Clone(cols), func(k string) bool { return k == a || k == b })...)
	}
	return cols
}

// label is a server's column heading.
func (r *report) label(key string) string {
	if r.versusNode() {
		if key == "go" {
			return "ours"
		}
		return "Node"
	}
	return key
}

// ratioGoal is a stated bound on the ratio of two variants' key figure in a
// scenario: a's figure divided by b's must be at least min.
type ratioGoal struct {
	a, b, scenario string
	text           string
	min            float64
}

// ratioGoals are the goals of the comparisons between variants.
var ratioGoals = []ratioGoal{
	{a: "go", b: "go-norecovery", scenario: "ws-sat-1000", text: "≥ 0.90× (within 10% of recovery off)", min: 0.90},
	{a: "go3-streams", b: "go3-pubsub", scenario: "ws-sat-1000", text: "≥ 0.80× pub/sub", min: 0.80},
}

// pair returns the two servers a comparison run compares, a over b: the
// first two named, swapped when a goal states them the other way round.
func (r *report) pair() (a, b string, ok bool) {
	o := r.order()
	if len(o) < 2 {
		return "", "", false
	}
	a, b = o[0], o[1]
	for _, g := range ratioGoals {
		if g.a == b && g.b == a {
			return b, a, true
		}
	}
	return a, b, true
}

// comparison is one scenario's key figure for the compared pair.
type comparison struct {
	Title, Figure string
	A, B, Ratio   string
	Goal          string // "" when none is stated
	Met           bool
	Undecided     string
	Contended     float64
}

// comparisons judges every scenario run by its key figure, a over b.
func (r *report) comparisons() []comparison {
	a, b, ok := r.pair()
	if !ok {
		return nil
	}
	var out []comparison
	seen := map[string]bool{}
	for _, o := range r.Outcomes {
		if seen[o.Scenario] {
			continue
		}
		seen[o.Scenario] = true
		name, value, format := keyFigure(o.Scenario)
		c := comparison{Title: o.Title, Figure: name}
		var goal *ratioGoal
		for i, g := range ratioGoals {
			if g.a == a && g.b == b && g.scenario == o.Scenario {
				goal = &ratioGoals[i]
				c.Goal = g.text
			}
		}
		x, y := r.get(o.Scenario, a), r.get(o.Scenario, b)
		if x != nil {
			c.A = format(value(x))
		}
		if y != nil {
			c.B = format(value(y))
		}
		switch {
		case !usable(x):
			c.Undecided = a + " run failed: " + r.errFor(o.Scenario, a)
		case !usable(y):
			c.Undecided = b + " run failed: " + r.errFor(o.Scenario, b)
		default:
			c.Ratio = ratio(value(x), value(y))
			for _, z := range []struct {
				key string
				res *loadResult
			}{{a, x}, {b, y}} {
				if z.res.Disconnects > 0 || z.res.Errors > 0 || z.res.Missing > 0 {
					c.Undecided = fmt.Sprintf("the %s run had %d disconnects, %d errors and %d missing deliveries",
						z.key, z.res.Disconnects, z.res.Errors, z.res.Missing)
					break
				}
			}
			if goal != nil && c.Undecided == "" {
				c.Met = value(x) >= goal.min*value(y)
			}
		}
		c.Contended = max(r.contention(x), r.contention(y))
		out = append(out, c)
	}
	return out
}

// runs returns every outcome of a scenario on a server, in round order.
func (r *report) runs(scenario, server string) []outcome {
	var out []outcome
	for _, o := range r.Outcomes {
		if o.Scenario == scenario && o.Server == server {
			out = append(out, o)
		}
	}
	return out
}

// keyFigure is the figure a scenario is judged on, which also picks the
// median of repeated runs.
func keyFigure(scenario string) (name string, value func(*loadResult) float64, format func(float64) string) {
	switch {
	case strings.Contains(scenario, "idle") || strings.Contains(scenario, "scale"):
		return "RSS per connection", func(x *loadResult) float64 { return x.RSSPerConnKB }, kib
	case strings.Contains(scenario, "20k"):
		return "latency p99", func(x *loadResult) float64 { return x.LatencyMs.P99 }, millis
	default:
		return "deliveries/s", func(x *loadResult) float64 { return x.DeliveriesPerSec }, count
	}
}

// get returns the run that represents a scenario on a server: the only one,
// or the median by the scenario's key figure when it was repeated. When any
// round failed it returns a failed round, so a failure is never hidden
// behind a good median.
func (r *report) get(scenario, server string) *loadResult {
	runs := r.runs(scenario, server)
	var ok []*loadResult
	for _, o := range runs {
		if o.Err != "" || !usable(o.Result) {
			return o.Result
		}
		ok = append(ok, o.Result)
	}
	if len(ok) == 0 {
		return nil
	}
	_, value, _ := keyFigure(scenario)
	sort.SliceStable(ok, func(i, j int) bool { return value(ok[i]) < value(ok[j]) })
	return ok[(len(ok)-1)/2]
}

// errFor joins the errors of a scenario's runs on a server.
func (r *report) errFor(scenario, server string) string {
	runs := r.runs(scenario, server)
	if len(runs) == 0 {
		return "not run"
	}
	var errs []string
	for _, o := range runs {
		if o.Err == "" {
			continue
		}
		if len(runs) > 1 {
			errs = append(errs, fmt.Sprintf("round %d: %s", o.Round+1, o.Err))
		} else {
			errs = append(errs, o.Err)
		}
	}
	return strings.Join(errs, "; ")
}

// target is one goal of the benchmark, judged from the results.
type target struct {
	Contended float64 // largest share of a benchmark CPU taken by other tasks in the runs compared
	Name      string
	Goal      string
	Ours      string
	Node      string
	Ratio     string
	Met       bool
	Undecided string // why the target could not be judged, if so
}

// usable reports whether a run produced figures worth comparing: it finished
// and the server survived.
func usable(res *loadResult) bool {
	return res != nil && res.Error == "" && !res.ServerDied
}

// ratioTarget judges a goal on the ratio of our figure to Node's in a
// scenario. A run that failed, or ours with disconnects or errors, or
// either with the flaw flaw names (when flaw is set), leaves it undecided.
func (r *report) ratioTarget(name, goal, scenario string, value func(*loadResult) float64, format func(float64) string,
	met func(ours, node float64) bool, flaw func(*loadResult) string) target {
	t := target{Name: name, Goal: goal}
	g, n := r.get(scenario, "go"), r.get(scenario, "node")
	if g != nil {
		t.Ours = format(value(g))
	}
	if n != nil {
		t.Node = format(value(n))
	}
	switch {
	case !usable(g):
		t.Undecided = "our run failed: " + r.errFor(scenario, "go")
	case !usable(n):
		t.Undecided = "Node run failed: " + r.errFor(scenario, "node")
	case g.Disconnects > 0 || g.Errors > 0:
		t.Ratio = ratio(value(g), value(n))
		t.Undecided = fmt.Sprintf("our run had %d disconnects and %d errors", g.Disconnects, g.Errors)
	case flaw != nil && flaw(g) != "":
		t.Ratio = ratio(value(g), value(n))
		t.Undecided = "our run: " + flaw(g)
	case flaw != nil && flaw(n) != "":
		t.Ratio = ratio(value(g), value(n))
		t.Undecided = "Node's run: " + flaw(n)
	default:
		t.Ratio = ratio(value(g), value(n))
		t.Met = met(value(g), value(n))
	}
	t.Contended = max(r.contention(g), r.contention(n))
	return t
}

// memoryTarget judges an absolute bound, limit KiB, on our RSS per
// connection in a scenario; Node's figure is shown for scale. flaw names
// what makes our run unfit to be judged, "" when nothing does.
func (r *report) memoryTarget(name, goal, scenario string, limit float64, flaw func(*loadResult) string) target {
	t := target{Name: name, Goal: goal}
	g, n := r.get(scenario, "go"), r.get(scenario, "node")
	if g != nil {
		t.Ours = kib(g.RSSPerConnKB)
	}
	if n != nil {
		t.Node = kib(n.RSSPerConnKB)
	}
	switch {
	case !usable(g):
		t.Undecided = "our run failed: " + r.errFor(scenario, "go")
	case flaw(g) != "":
		t.Undecided = flaw(g)
	default:
		if usable(n) {
			t.Ratio = ratio(g.RSSPerConnKB, n.RSSPerConnKB)
		}
		t.Met = g.RSSPerConnKB <= limit
	}
	t.Contended = max(r.contention(g), r.contention(n))
	return t
}

// targets judges the goals of the suite run.
func (r *report) targets() []target {
	if r.Suite == suiteScale {
		return r.scaleTargets()
	}
	return r.benchTargets()
}

func (r *report) benchTargets() []target {
	var out []target
	deliveries := func(x *loadResult) float64 { return x.DeliveriesPerSec }
	p99 := func(x *loadResult) float64 { return x.LatencyMs.P99 }

	out = append(out, r.ratioTarget("Fan-out deliveries/s, 1000 WebSocket clients, saturation", "≥ 8× Node",
		"ws-sat-1000", deliveries, count, func(g, n float64) bool { return g >= 8*n }, nil))
	out = append(out, r.ratioTarget("p99 latency, 1000 WebSocket clients at 20k deliveries/s", "≤ Node",
		"ws-20k-1000", p99, millis, func(g, n float64) bool { return g <= n }, nil))

	out = append(out, r.memoryTarget("RSS per idle WebSocket connection, 10k clients", "≤ 10 KiB", "ws-idle-10k", 10,
		func(g *loadResult) string {
			if g.Connected < g.Clients {
				return fmt.Sprintf("only %d of %d connected", g.Connected, g.Clients)
			}
			return ""
		}))
	g, n := r.get("ws-idle-10k", "go"), r.get("ws-idle-10k", "node")

	out = append(out, r.ratioTarget("Polling-only deliveries/s, 1000 clients, saturation", "≥ 3× Node",
		"poll-sat-1000", deliveries, count, func(g, n float64) bool { return g >= 3*n }, nil))

	conc := target{Name: "10k concurrent WebSocket connections", Goal: "all connected, no errors"}
	describe := func(x *loadResult) string {
		return fmt.Sprintf("%d/%d, %d errors, %d dropped", x.Connected, x.Clients, x.Errors, x.DisconnectsIdle)
	}
	if n != nil {
		conc.Node = describe(n)
	}
	if g == nil {
		conc.Undecided = "our run failed: " + r.errFor("ws-idle-10k", "go")
	} else {
		conc.Ours = describe(g)
		conc.Met = !g.ServerDied && g.Error == "" && g.Clients == 10000 && g.Connected == g.Clients &&
			g.Errors == 0 && g.ConnectErrors == 0 && g.DisconnectsIdle == 0
	}
	out = append(out, conc)
	return out
}

func (r *report) markdown() string {
	var b strings.Builder
	heading := "Chat benchmark"
	if r.Suite == suiteScale {
		heading = "Scale benchmark"
	}
	fmt.Fprintf(&b, "# %s: %s\n\n", heading, r.title())
	took := fmt.Sprintf("took %s", r.Finished.Sub(r.Started).Round(time.Second))
	if r.Budget > 0 {
		took += fmt.Sprintf(" of a %s budget", r.Budget.Round(time.Second))
	}
	fmt.Fprintf(&b, "- Date: %s (%s)\n", r.Started.Format("2006-01-02 15:04 MST"), took)
	fmt.Fprintf(&b, "- Machine: %s\n", r.Machine)
	fmt.Fprintf(&b, "- Software: %s\n", r.Software)
	if r.Commit != "" {
		fmt.Fprintf(&b, "- Built from commit %s\n", r.Commit)
	}
	if r.Pinned {
		fmt.Fprintf(&b, "- Each server pinned to CPU %s, the load generator to CPU %s (taskset); one server runs at a time, freshly started for each scenario.\n",
			r.ServerCPU, r.LoadgenCPU)
	} else {
		b.WriteString("- Not pinned: taskset was not available, so the figures include CPU contention.\n")
	}
	for _, c := range r.Commands {
		fmt.Fprintf(&b, "- Server: `%s`\n", c)
	}
	fmt.Fprintf(&b, "- Load average (1, 5, 15 min) before: %s, after: %s. Other work on the machine shares these CPUs and lowers the figures of whichever server it overlaps.\n",
		dash(r.LoadBefore), dash(r.LoadAfter))
	fmt.Fprintf(&b, "- Before each run the benchmark waited for other programs to use less than %.0f%% of CPUs %s and %s: %s in all; %d runs started without that (allowance spent).\n",
		100*quietBelow, r.ServerCPU, r.LoadgenCPU, r.QuietWaited.Round(time.Second), r.NotQuiet)
	if r.Suite == suiteScale {
		fmt.Fprintf(&b, "- Clients: %s. Each server and the load generator are separate processes, each under that limit; loopback source addresses 127.0.0.x are spread so that no address runs out of ephemeral ports.\n", r.FileLimit)
		b.WriteString("- Memory per connection is (RSS with the clients connected − RSS at start) / clients, VmRSS of the server process read after the clients had connected and the server had settled for a few seconds. No garbage collection can be forced from outside, so the figure includes whatever garbage the server's runtime still holds.\n")
	}
	b.WriteString("- Loopback only. A delivery is one clientReceiver event received by one client; latency runs from the emit to its receipt at every other client.\n\n")

	if r.versusNode() {
		b.WriteString("## Targets\n\n")
		fmt.Fprintf(&b, "⚠ marks a comparison during which other programs took more than %.0f%% of the server's or the load generator's CPU; such a figure understates the server it hit.\n\n", 100*contendedAbove)
		b.WriteString("| target | goal | ours | Node | ours/Node | status |\n|---|---|---|---|---|---|\n")
		for _, t := range r.targets() {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", t.Name, t.Goal, dash(t.Ours), dash(t.Node), dash(t.Ratio),
				status(true, t.Met, t.Undecided, t.Contended))
		}
	} else if a, bk, ok := r.pair(); ok {
		fmt.Fprintf(&b, "## Comparison: %s vs %s\n\n", a, bk)
		fmt.Fprintf(&b, "Each scenario's key figure, %s over %s. ⚠ marks a comparison during which other programs took more than %.0f%% of the server's or the load generator's CPU; such a figure understates the variant it hit.\n\n",
			a, bk, 100*contendedAbove)
		fmt.Fprintf(&b, "| scenario | figure | %s | %s | %s/%s | goal | status |\n|---|---|---|---|---|---|---|\n", a, bk, a, bk)
		for _, c := range r.comparisons() {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s |\n", c.Title, c.Figure, dash(c.A), dash(c.B), dash(c.Ratio), dash(c.Goal),
				status(c.Goal != "", c.Met, c.Undecided, c.Contended))
		}
	}

	b.WriteString("\n## Runs\n\n")
	cols := r.columns()
	if r.versusNode() {
		b.WriteString("Each figure for both servers and the ratio ours/Node. Rates: higher is better; latency, memory and CPU: lower is better.\n")
	} else {
		fmt.Fprintf(&b, "Each figure for every variant and the ratio %s/%s. Rates: higher is better; latency, memory and CPU: lower is better.\n", cols[0], cols[min(1, len(cols)-1)])
	}
	seen := map[string]bool{}
	for _, o := range r.Outcomes {
		if seen[o.Scenario] {
			continue
		}
		seen[o.Scenario] = true
		fmt.Fprintf(&b, "\n### %s\n\n", o.Title)
		fmt.Fprintf(&b, "`loadgen %s`\n\n", strings.Join(o.Args, " "))
		if extra := r.serverArgsNote(o.Scenario); extra != "" {
			b.WriteString(extra + "\n\n")
		}
		if note := r.roundsNote(o.Scenario); note != "" {
			b.WriteString(note + "\n\n")
		}
		results := make([]*loadResult, len(cols))
		for i, s := range cols {
			results[i] = r.get(o.Scenario, s)
			if _, ran := r.Servers[s]; !ran {
				continue
			}
			if e := r.errFor(o.Scenario, s); e != "" {
				fmt.Fprintf(&b, "- %s: %s\n\n", r.Servers[s], e)
			}
		}
		b.WriteString("| figure |")
		for _, s := range cols {
			b.WriteString(" " + r.label(s) + " |")
		}
		if len(cols) > 1 {
			fmt.Fprintf(&b, " %s/%s |", r.label(cols[0]), r.label(cols[1]))
		}
		b.WriteString("\n|---|" + strings.Repeat("---|", len(cols)+min(1, len(cols)-1)) + "\n")
		for _, row := range r.figures(o.Scenario, results) {
			b.WriteString("| " + strings.Join(row, " | ") + " |\n")
		}
	}
	b.WriteString("\nRaw loadgen lines: `results.json`. Plot: `results.png`.\n")
	return b.String()
}

// serverArgsNote says what a scenario added to the servers' command lines,
// "" when nothing.
func (r *report) serverArgsNote(scenario string) string {
	var parts []string
	seen := map[string]bool{}
	for _, o := range r.Outcomes {
		if o.Scenario != scenario || len(o.ServerArgs) == 0 || seen[o.Server] {
			continue
		}
		seen[o.Server] = true
		parts = append(parts, fmt.Sprintf("%s `%s`", r.Servers[o.Server], strings.Join(o.ServerArgs, " ")))
	}
	if len(parts) == 0 {
		return ""
	}
	return "Added to the server's command line: " + strings.Join(parts, "; ") + "."
}

// title names the servers compared.
func (r *report) title() string {
	var names []string
	for _, k := range r.columns() {
		names = append(names, r.Servers[k])
	}
	return strings.Join(names, " vs ")
}

// status is a goal's verdict for the tables: met, not met, or why it could
// not be judged, flagged when other programs disturbed the runs.
func status(hasGoal, met bool, undecided string, contended float64) string {
	s := "–"
	switch {
	case undecided != "":
		s = "**not met** (" + undecided + ")"
		if !hasGoal {
			s = "(" + undecided + ")"
		}
	case !hasGoal:
	case met:
		s = "met"
	default:
		s = "**not met**"
	}
	if contended > contendedAbove {
		s += fmt.Sprintf(" ⚠ other tasks took up to %.0f%% of a benchmark CPU", 100*contended)
	}
	return s
}

// busyOutside is the share of the window CPU cpu spent running tasks other
// than the process pinned there (whose share is own): other programs on a
// shared machine, competing with the benchmark.
func busyOutside(x *loadResult, cpu string, own float64) float64 {
	i, err := strconv.Atoi(cpu)
	if err != nil || i < 0 || i >= len(x.CPUTask) {
		return math.NaN()
	}
	return math.Max(0, x.CPUTask[i]-own)
}

// roundsNote describes a repeated scenario: every round's key figure, and
// that the table shows the median.
func (r *report) roundsNote(scenario string) string {
	name, value, format := keyFigure(scenario)
	var parts []string
	rounds := 0
	for _, srv := range r.columns() {
		runs := r.runs(scenario, srv)
		rounds = max(rounds, len(runs))
		var vals []string
		for _, o := range runs {
			if usable(o.Result) && o.Err == "" {
				vals = append(vals, format(value(o.Result)))
			} else {
				vals = append(vals, "failed")
			}
		}
		if len(vals) > 0 {
			parts = append(parts, fmt.Sprintf("%s %s", r.Servers[srv], strings.Join(vals, ", ")))
		}
	}
	if rounds < 2 {
		return ""
	}
	return fmt.Sprintf("Run %d times, the servers taking turns; the table shows each server's median run by %s (%s).",
		rounds, name, strings.Join(parts, "; "))
}

// contendedAbove is the share of a benchmark CPU taken by other tasks above
// which a comparison is flagged as disturbed.
const contendedAbove = 0.15

// contention is the largest share of either benchmark CPU that other tasks
// took during the run (0 when unknown).
func (r *report) contention(x *loadResult) float64 {
	if x == nil {
		return 0
	}
	c := 0.0
	for _, v := range []float64{busyOutside(x, r.ServerCPU, x.ServerCPUUtil), busyOutside(x, r.LoadgenCPU, x.LoadgenCPUUtil)} {
		if !math.IsNaN(v) {
			c = max(c, v)
		}
	}
	return c
}

// figure is one row of a scenario's table: a figure's name, how to read it
// from a run and how to write it.
type figure struct {
	name    string
	value   func(*loadResult) float64
	format  func(float64) string
	noRatio bool
}

// trafficFigures are the rows of a run with senders.
func (r *report) trafficFigures() []figure {
	return []figure{
		{"deliveries/s", func(x *loadResult) float64 { return x.DeliveriesPerSec }, count, false},
		{"emits/s", func(x *loadResult) float64 { return x.MsgsPerSec }, count, false},
		{"latency p50", func(x *loadResult) float64 { return x.LatencyMs.P50 }, millis, false},
		{"latency p90", func(x *loadResult) float64 { return x.LatencyMs.P90 }, millis, false},
		{"latency p99", func(x *loadResult) float64 { return x.LatencyMs.P99 }, millis, false},
		{"latency max", func(x *loadResult) float64 { return x.LatencyMs.Max }, millis, false},
		{"server CPU", func(x *loadResult) float64 { return x.ServerCPUUtil }, percent, false},
		{"server RSS under load", func(x *loadResult) float64 { return float64(x.ServerRSSLoadKB) }, mib, false},
		{"loadgen CPU", func(x *loadResult) float64 { return x.LoadgenCPUUtil }, percent, false},
		{name: fmt.Sprintf("other tasks on CPU %s (server's)", r.ServerCPU), format: percent, noRatio: true,
			value: func(x *loadResult) float64 { return busyOutside(x, r.ServerCPU, x.ServerCPUUtil) }},
		{name: fmt.Sprintf("other tasks on CPU %s (loadgen's)", r.LoadgenCPU), format: percent, noRatio: true,
			value: func(x *loadResult) float64 { return busyOutside(x, r.LoadgenCPU, x.LoadgenCPUUtil) }},
		{"missing deliveries", func(x *loadResult) float64 { return float64(x.Missing) }, count, false},
		{"disconnects", func(x *loadResult) float64 { return float64(x.Disconnects) }, count, false},
	}
}

// figures lists the rows shown for one scenario: each figure's name, its
// value for each of results (one per column) and the ratio of the first
// two.
func (r *report) figures(scenario string, results []*loadResult) [][]string {
	connect := []figure{
		{"connected", func(x *loadResult) float64 { return float64(x.Connected) }, count, false},
		{"connections/s", func(x *loadResult) float64 { return x.ConnectRate }, count, false},
		{"handshake p50", func(x *loadResult) float64 { return x.HandshakeP50Ms }, millis, false},
		{"handshake p99", func(x *loadResult) float64 { return x.HandshakeP99Ms }, millis, false},
	}
	memory := []figure{
		{"server RSS at start", func(x *loadResult) float64 { return float64(x.ServerRSSStartKB) }, mib, false},
		{"server RSS, all connected", func(x *loadResult) float64 { return float64(x.ServerRSSIdleKB) }, mib, false},
		{"RSS per connection", func(x *loadResult) float64 { return x.RSSPerConnKB }, kib, false},
		{"errors", func(x *loadResult) float64 { return float64(x.Errors) }, count, false},
		{"dropped while idle", func(x *loadResult) float64 { return float64(x.DisconnectsIdle) }, count, false},
	}
	var figs []figure
	switch {
	case r.Suite == suiteScale:
		figs = r.scaleFigures(scenario)
	case strings.Contains(scenario, "idle"):
		figs = append(connect, memory...)
	default:
		figs = append([]figure{connect[0]}, r.trafficFigures()...)
	}
	var rows [][]string
	for _, f := range figs {
		row := []string{f.name}
		for _, x := range results {
			v := "–"
			if x != nil {
				v = f.format(f.value(x))
			}
			row = append(row, v)
		}
		if len(results) > 1 {
			q := "–"
			if x, y := results[0], results[1]; x != nil && y != nil && !f.noRatio {
				q = ratio(f.value(x), f.value(y))
			}
			row = append(row, q)
		}
		rows = append(rows, row)
	}
	return rows
}

func ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	q := a / b
	if q >= 10 {
		return fmt.Sprintf("%.0f×", q)
	}
	return fmt.Sprintf("%.2f×", q)
}

func count(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

func millis(v float64) string {
	if v < 10 {
		return fmt.Sprintf("%.2f ms", v)
	}
	return fmt.Sprintf("%.0f ms", v)
}

func percent(v float64) string {
	if math.IsNaN(v) {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*v)
}
func kib(v float64) string  { return fmt.Sprintf("%.1f KiB", v) }
func mib(kb float64) string { return fmt.Sprintf("%.0f MiB", kb/1024) }

func dash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// loadAverage returns the 1, 5 and 15 minute load averages.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// describeMachine names the CPU model (from /proc/cpuinfo), the core count
// and the OS, for the report header.
func describeMachine() string {
	model, cores := "unknown CPU", 0
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			switch k = strings.TrimSpace(k); {
			case !ok:
			case k == "processor":
				cores++
			case k == "model name" && cores == 1:
				model = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	if cores == 0 {
		cores = runtime.NumCPU()
	}
	return fmt.Sprintf("%s, %d cores, %s/%s", model, cores, runtime.GOOS, runtime.GOARCH)
}
