package integration

// The multi-instance demo as `make cluster` runs it: a real redis-server,
// three chatserver nodes sharing it, and real nginx in plain round robin with
// deploy/nginx/balancer.conf. Real socket.io clients (4.x polling only, 4.x
// upgrading to WebSocket, 2.x polling only) in testdata/node/cluster-client.js
// reach the chat only through nginx; the test drives them over stdin, reads
// what they saw from stdout, scrapes every node's /metrics, and kills nodes.

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"siogo/internal/testutil"
)

const (
	lbScript = "testdata/node/cluster-client.js"
	lbWait   = 20 * time.Second
	// lbText is appended to every chat line: non-ASCII text must cross
	// nginx and the forwarding proxy intact in every payload format.
	lbText = "héllo €😀"
)

// balancedCluster is redis-server, chat nodes n1..nN, and nginx.
type balancedCluster struct {
	redis *testutil.Redis
	nodes []*testutil.Server
	ids   []string
	args  [][]string // each node's flags but -addr
	lb    *testutil.Nginx
}

func startBalancedCluster(t *testing.T, count int, args ...string) *balancedCluster {
	t.Helper()
	r := testutil.StartRedis(t)
	c := &balancedCluster{redis: r}
	var addrs []string
	for i := range count {
		id := fmt.Sprintf("n%d", i+1)
		// Heartbeats are slower than the test: a heartbeat POST in flight
		// through a node the test kills would be lost with it (nginx
		// cannot replay a POST), and the test wants to know exactly which
		// clients that kill may touch.
		nodeArgs := append([]string{"-redis", r.URL(), "-node-id", id,
			"-ping-interval", "50s", "-ping-timeout", "20s"}, args...)
		n := testutil.Start(t, "chatserver", nodeArgs...)
		t.Cleanup(func() { checkNodeLogs(t, n) })
		c.nodes = append(c.nodes, n)
		c.args = append(c.args, nodeArgs)
		c.ids = append(c.ids, id)
		addrs = append(addrs, n.Addr)
	}
	for _, n := range c.nodes {
		waitReady(t, n, http.StatusOK)
	}
	c.lb = testutil.StartNginx(t, addrs)
	return c
}

// node returns the index of the node with the given id, or -1.
func (c *balancedCluster) node(id string) int { return slices.Index(c.ids, id) }

// owner is the node id a session id starts with.
func owner(sid string) string {
	id, _, _ := strings.Cut(sid, ".")
	return id
}

// scrapeMetrics reads a node's /metrics.
func scrapeMetrics(t *testing.T, n *testutil.Server) testutil.Metrics {
	t.Helper()
	return fetchMetrics(t, n.URL())
}

// sumMetric adds the samples of one metric whose labels contain all of the
// given label pairs (as printed, e.g. `transport="polling"`).
func sumMetric(samples map[string]float64, name string, labels ...string) float64 {
	var sum float64
	for k, v := range samples {
		if k != name && !strings.HasPrefix(k, name+"{") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(k, l)
		}
		if ok {
			sum += v
		}
	}
	return sum
}

// lbEvent is one line of cluster-client.js.
type lbEvent struct {
	Ev        string `json:"ev"`
	Client    int    `json:"client"`
	SID       string `json:"sid"`
	ID        string `json:"id"`
	Transport string `json:"transport"`
	Reason    string `json:"reason"`
	Error     string `json:"error"`
	Text      string `json:"text"`
	Message   string `json:"message"`
	ClientID  *int64 `json:"clientID"`
	Recovered bool   `json:"recovered"`
	Args      int    `json:"args"`
	Offset    string `json:"offset"`
}

// lbClient is what one client saw.
type lbClient struct {
	spec        string
	sids        []string // one per connection
	ids         []string // the socket id of each connection
	disconnects []string
	upgrades    int
	received    map[string]int   // chat line -> times
	sentBy      map[string]int64 // chat line -> clientID it came with
	acks        map[string]int64 // own chat line -> clientID acked
	order       []string         // chat lines as they came
	recovered   []bool           // per connection: was its state recovered
	args        map[int]int      // argument count of clientReceiver -> times
}

func (c *lbClient) sid() string { return c.sids[len(c.sids)-1] }

// lbClients runs cluster-client.js.
type lbClients struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	wmu    sync.Mutex
	exited chan struct{}
	stderr strings.Builder

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every event
	clients []*lbClient
	quiets  int
}

func startLBClients(t *testing.T, url string, specs ...string) *lbClients {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := testutil.NodeCommand(ctx, t, lbScript, "--url", url, "--clients", strings.Join(specs, ","))
	l := &lbClients{t: t, cmd: cmd, changed: make(chan struct{}), exited: make(chan struct{})}
	for _, s := range specs {
		l.clients = append(l.clients, &lbClient{spec: s, received: map[string]int{}, sentBy: map[string]int64{}, acks: map[string]int64{}, args: map[int]int{}})
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedBuilder{&l.mu, &l.stderr} // from redis_test.go
	l.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			var ev lbEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				l.mu.Lock()
				l.stderr.WriteString("unparsable line: " + sc.Text() + "\n")
				l.mu.Unlock()
				continue
			}
			l.record(ev)
		}
		cmd.Wait()
		close(l.exited)
	}()
	t.Cleanup(func() {
		l.send(map[string]any{"cmd": "exit"})
		select {
		case <-l.exited:
		case <-time.After(5 * time.Second):
		}
		cancel()
		<-l.exited
	})
	return l
}

func (l *lbClients) record(ev lbEvent) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev.Ev == "quiet" {
		l.quiets++
	} else if ev.Client >= 0 && ev.Client < len(l.clients) {
		c := l.clients[ev.Client]
		switch ev.Ev {
		case "connect":
			c.sids = append(c.sids, ev.SID)
			c.recovered = append(c.recovered, ev.Recovered)
			c.ids = append(c.ids, ev.ID)
		case "upgrade":
			c.upgrades++
		case "disconnect":
			c.disconnects = append(c.disconnects, ev.Reason)
		case "recv":
			c.received[ev.Message]++
			c.order = append(c.order, ev.Message)
			c.args[ev.Args]++
			if ev.ClientID != nil {
				c.sentBy[ev.Message] = *ev.ClientID
			}
		case "ack":
			if ev.ClientID != nil {
				c.acks[ev.Text] = *ev.ClientID
			}
		}
	}
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *lbClients) send(cmd map[string]any) {
	b, _ := json.Marshal(cmd)
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.stdin.Write(append(b, '\n'))
}

// waitFor waits until cond holds (it runs under the lock), failing the test
// after lbWait or if the script exits.
func (l *lbClients) waitFor(desc string, cond func() bool) {
	l.t.Helper()
	timeout := time.After(lbWait)
	for {
		l.mu.Lock()
		if cond() {
			l.mu.Unlock()
			return
		}
		changed := l.changed
		l.mu.Unlock()
		select {
		case <-changed:
		case <-l.exited:
			l.t.Fatalf("cluster-client.js exited while waiting for %s:\n%s", desc, l.dump())
		case <-timeout:
			l.t.Fatalf("timed out after %v waiting for %s:\n%s", lbWait, desc, l.dump())
		}
	}
}

// dump describes every client, for failure messages.
func (l *lbClients) dump() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for i, c := range l.clients {
		fmt.Fprintf(&b, "client %d (%s): sessions %v, disconnects %v, upgrades %d, %d lines received, acks %v\n",
			i, c.spec, c.sids, c.disconnects, c.upgrades, len(c.received), c.acks)
	}
	b.WriteString(l.stderr.String())
	return b.String()
}

// snapshot copies the clients' state.
func (l *lbClients) snapshot() []lbClient {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]lbClient, len(l.clients))
	for i, c := range l.clients {
		out[i] = lbClient{
			spec:        c.spec,
			sids:        slices.Clone(c.sids),
			ids:         slices.Clone(c.ids),
			disconnects: slices.Clone(c.disconnects),
			upgrades:    c.upgrades,
			received:    cloneMap(c.received),
			sentBy:      cloneMap(c.sentBy),
			acks:        cloneMap(c.acks),
			order:       slices.Clone(c.order),
			recovered:   slices.Clone(c.recovered),
			args:        maps.Clone(c.args),
		}
	}
	return out
}

func cloneMap[V any](m map[string]V) map[string]V { return maps.Clone(m) }

// connected waits until every client in which has connected at least n
// times in all, and, for clients upgrading to WebSocket, upgraded on its
// latest connection.
func (l *lbClients) connected(which []int, n int) {
	l.t.Helper()
	l.waitFor(fmt.Sprintf("clients %v to be connected (connection %d)", which, n), func() bool {
		for _, i := range which {
			c := l.clients[i]
			if len(c.sids) < n {
				return false
			}
			if strings.HasSuffix(c.spec, ":default") && c.upgrades < len(c.sids) {
				return false
			}
		}
		return true
	})
}

// round makes each sender emit one chat line and waits until every receiver
// has it and every sender has its ack. It returns the lines.
func (l *lbClients) round(run string, round int, senders, receivers []int) []string {
	l.t.Helper()
	var lines []string
	for _, i := range senders {
		line := fmt.Sprintf("%s|r%d|c%d|%s", run, round, i, lbText)
		lines = append(lines, line)
		l.send(map[string]any{"cmd": "send", "client": i, "text": line})
	}
	l.waitFor(fmt.Sprintf("round %d: clients %v to receive the lines of %v", round, receivers, senders), func() bool {
		for _, i := range receivers {
			for _, line := range lines {
				if l.clients[i].received[line] == 0 {
					return false
				}
			}
		}
		for k, i := range senders {
			if _, ok := l.clients[i].acks[lines[k]]; !ok {
				return false
			}
		}
		return true
	})
	return lines
}

// quiet waits until nothing but pending polls is on the wire.
func (l *lbClients) quiet() {
	l.t.Helper()
	l.mu.Lock()
	want := l.quiets + 1
	l.mu.Unlock()
	l.send(map[string]any{"cmd": "quiet"})
	l.waitFor("the clients to be quiet", func() bool { return l.quiets >= want })
}

func indexes(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = i
	}
	return out
}

// TestClusterBehindBalancer: the three client kinds chat through nginx in
// round robin; their requests land on every node and are forwarded to the
// owners; every message reaches every client.
func TestClusterBehindBalancer(t *testing.T) {
	c := startBalancedCluster(t, 3)

	// The page and the client bundle come through the balancer too.
	for _, path := range []string{"/", "/socket.io/socket.io.js"} {
		resp, err := http.Get(c.lb.URL() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s through nginx: %s", path, resp.Status)
		}
	}

	specs := []string{"4:polling", "4:default", "2:polling"}
	l := startLBClients(t, c.lb.URL(), specs...)
	all := indexes(len(specs))
	l.connected(all, 1)
	run := "lb" + strconv.FormatInt(time.Now().UnixNano(), 36)
	var lines []string
	for round := 1; round <= 3; round++ {
		lines = append(lines, l.round(run, round, all, all)...)
	}

	got := l.snapshot()
	ids := map[int64]int{}
	for i, cl := range got {
		if len(cl.sids) != 1 || len(cl.disconnects) != 0 {
			t.Errorf("client %d (%s): sessions %v, disconnects %v; want one session", i, cl.spec, cl.sids, cl.disconnects)
		}
		for _, line := range lines {
			if cl.received[line] != 1 {
				t.Errorf("client %d (%s) received %q %d times, want once", i, cl.spec, line, cl.received[line])
			}
		}
		if len(cl.received) != len(lines) {
			t.Errorf("client %d (%s) received %d lines, want %d", i, cl.spec, len(cl.received), len(lines))
		}
		// Each line carries the clientID its sender was acked with.
		for j, sender := range got {
			for line, id := range sender.acks {
				if cl.sentBy[line] != id {
					t.Errorf("client %d got %q from clientID %d; sender %d was acked with %d", i, line, cl.sentBy[line], j, id)
				}
			}
		}
		id := cl.acks[lines[i]]
		if prev, dup := ids[id]; dup {
			t.Errorf("clients %d and %d share clientID %d", prev, i, id)
		}
		ids[id] = i
	}

	// Every node forwarded requests for sessions it does not own, so
	// requests landed on nodes other than the owners'; and each node
	// counts exactly its own sessions, by transport and revision.
	forwarding := 0
	var connected [3]struct{ polling3, polling4, websocket4 float64 }
	for i, n := range c.nodes {
		m := scrapeMetrics(t, n)
		fwd := sumMetric(m, "siogo_forwarded_requests_total")
		t.Logf("node %s: %v forwarded requests, %v forward errors, sessions opened %v", c.ids[i], fwd,
			sumMetric(m, "siogo_forward_errors_total"), sumMetric(m, "siogo_sessions_opened_total"))
		if fwd > 0 {
			forwarding++
		}
		connected[i].polling3 = sumMetric(m, "siogo_connected_clients", `transport="polling"`, `protocol="3"`)
		connected[i].polling4 = sumMetric(m, "siogo_connected_clients", `transport="polling"`, `protocol="4"`)
		connected[i].websocket4 = sumMetric(m, "siogo_connected_clients", `transport="websocket"`, `protocol="4"`)
		for _, name := range []string{"siogo_redis_reconnects_total", "siogo_send_queue_drops_total", "siogo_broadcast_recipients_count", "siogo_messages_out_total"} {
			if _, ok := m[name]; !ok {
				t.Errorf("node %s: /metrics lacks %s", c.ids[i], name)
			}
		}
		if in := sumMetric(m, "siogo_messages_in_total"); in == 0 && sumMetric(m, "siogo_sessions_opened_total") > 0 {
			t.Errorf("node %s owns sessions but counted no packets in", c.ids[i])
		}
	}
	if forwarding < 2 {
		t.Errorf("%d nodes forwarded requests, want at least 2: round robin should spread each session's requests", forwarding)
	}
	for i, cl := range got {
		k := c.node(owner(cl.sid()))
		if k < 0 {
			t.Fatalf("client %d: session %s has no known owner", i, cl.sid())
		}
		slot := map[string]*float64{"4:polling": &connected[k].polling4, "4:default": &connected[k].websocket4, "2:polling": &connected[k].polling3}[cl.spec]
		if *slot < 1 {
			t.Errorf("client %d (%s): its owner %s does not count its session under the right transport and revision (%+v)", i, cl.spec, c.ids[k], connected[k])
		}
		*slot--
	}
	for k := range connected {
		if connected[k] != (struct{ polling3, polling4, websocket4 float64 }{}) {
			t.Errorf("node %s counts sessions the clients do not have: %+v left over", c.ids[k], connected[k])
		}
	}
}

var tunnelLog = regexp.MustCompile(`msg="cluster: forwarding websocket" sid=(\S+)`)

// TestClusterNodeLoss: a node is killed mid-chat, then another is stopped
// with SIGTERM. Each time the clients whose session the node owned, or
// whose WebSocket ran through it, reconnect through nginx, get new
// clientIDs and keep chatting; every other client notices nothing: no
// disconnection, no lost or repeated message, even for messages sent while
// the node goes down, and even when its pending poll ran through the node.
func TestClusterNodeLoss(t *testing.T) {
	// Without connection-state recovery: the clients of a lost node come
	// back as new chat members. Recovery has tests of its own.
	c := startBalancedCluster(t, 3, "-recovery-window", "0")
	specs := []string{"4:polling", "4:default", "2:polling", "4:polling", "4:default", "2:polling"}
	l := startLBClients(t, c.lb.URL(), specs...)
	all := indexes(len(specs))
	l.connected(all, 1)
	run := "loss" + strconv.FormatInt(time.Now().UnixNano(), 36)
	round := 1
	sent := map[int][]string{} // round -> lines
	sent[round] = l.round(run, round, all, all)
	lastAll := round       // the latest round everyone took part in
	since := map[int]int{} // client -> first round it must have seen
	for _, i := range all {
		since[i] = 1
	}
	alive := []int{0, 1, 2}

	lose := func(how string, stop func(n *testutil.Server)) {
		t.Helper()
		l.quiet()
		before := l.snapshot()
		// The victim: a live node owning at least one client, the fewest.
		owned := map[int][]int{}
		for i, cl := range before {
			k := c.node(owner(cl.sid()))
			owned[k] = append(owned[k], i)
		}
		victim := -1
		for _, k := range alive {
			if len(owned[k]) > 0 && (victim < 0 || len(owned[k]) < len(owned[victim])) {
				victim = k
			}
		}
		if victim < 0 {
			t.Fatalf("no live node owns a client: %v", owned)
		}
		// WebSockets it carries for other nodes die with it.
		affected := map[int]bool{}
		for _, i := range owned[victim] {
			affected[i] = true
		}
		tunnels := map[string]bool{}
		for _, m := range tunnelLog.FindAllStringSubmatch(c.nodes[victim].Logs(), -1) {
			tunnels[m[1]] = true
		}
		var others []int
		for i, cl := range before {
			if tunnels[cl.sid()] {
				affected[i] = true
			}
			if !affected[i] {
				others = append(others, i)
			}
		}
		t.Logf("%s node %s; it owns clients %v; affected %v; unaffected %v", how, c.ids[victim], owned[victim], sortedKeys(affected), others)

		stop(c.nodes[victim])
		alive = slices.DeleteFunc(alive, func(k int) bool { return k == victim })

		// Mid-chat: the others talk while the node goes down.
		round++
		sent[round] = l.round(run, round, others, others)
		var hit []int
		for i := range affected {
			hit = append(hit, i)
		}
		l.waitFor(fmt.Sprintf("clients %v to reconnect", hit), func() bool {
			for _, i := range hit {
				cl := l.clients[i]
				if len(cl.sids) <= len(before[i].sids) || len(cl.disconnects) == 0 {
					return false
				}
			}
			return true
		})
		l.connected(all, 1)
		for _, i := range hit {
			l.connected([]int{i}, len(before[i].sids)+1)
		}
		// Everyone chats again, the reconnected clients included.
		round++
		sent[round] = l.round(run, round, all, all)

		after := l.snapshot()
		usedIDs := map[int64]bool{}
		for _, cl := range before {
			for _, id := range cl.acks {
				usedIDs[id] = true
			}
		}
		for i, cl := range after {
			newID := cl.acks[sent[round][i]]
			oldID := before[i].acks[sent[lastAll][i]]
			if affected[i] {
				if k := c.node(owner(cl.sid())); !slices.Contains(alive, k) {
					t.Errorf("client %d reconnected to session %s of a dead node", i, cl.sid())
				}
				if usedIDs[newID] {
					t.Errorf("client %d reconnected with clientID %d, which was already in use", i, newID)
				}
				continue
			}
			if len(cl.disconnects) != len(before[i].disconnects) || cl.sid() != before[i].sid() {
				t.Errorf("client %d (%s, session %s) noticed the loss of %s: disconnects %v, sessions %v", i, cl.spec, before[i].sid(), c.ids[victim], cl.disconnects, cl.sids)
			}
			if newID != oldID {
				t.Errorf("client %d changed clientID from %d to %d", i, oldID, newID)
			}
			// Every line since it connected arrived exactly once:
			// nothing sent while the node went down was lost.
			for r, lines := range sent {
				if r < since[i] {
					continue
				}
				for _, line := range lines {
					if cl.received[line] != 1 {
						t.Errorf("client %d received %q (round %d) %d times, want once", i, line, r, cl.received[line])
					}
				}
			}
		}
		// Reconnected clients got everything sent after they came back.
		for i := range affected {
			for _, line := range sent[round] {
				if after[i].received[line] != 1 {
					t.Errorf("reconnected client %d received %q %d times, want once", i, line, after[i].received[line])
				}
			}
			since[i] = round
		}
		lastAll = round
		for i, n := range c.nodes {
			if slices.Contains(alive, i) {
				m := scrapeMetrics(t, n)
				t.Logf("node %s: %v forwarded, %v forward errors, %v poll handoffs", c.ids[i],
					sumMetric(m, "siogo_forwarded_requests_total"), sumMetric(m, "siogo_forward_errors_total"), sumMetric(m, "siogo_poll_handoffs_total"))
			}
		}
	}

	lose("killing", func(n *testutil.Server) { n.Kill() })

	// SIGTERM: the node closes its sessions, cuts what it carries for
	// others, and exits by itself within the shutdown deadline (10 s).
	lose("stopping (SIGTERM)", func(n *testutil.Server) {
		start := time.Now()
		if err := n.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case <-n.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("node still running 15 s after SIGTERM:\n%s", n.Logs())
		}
		if code := n.Cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("node exited with status %d after SIGTERM:\n%s", code, n.Logs())
		}
		t.Logf("node exited %v after SIGTERM", time.Since(start).Round(time.Millisecond))
	})
}

// sortedKeys returns the keys of a set in order.
func sortedKeys[K cmp.Ordered](m map[K]bool) []K {
	var out []K
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// TestClusterScript runs scripts/cluster.sh (`make cluster`) on free ports:
// it brings up Redis, three nodes and nginx, the balancer spreads
// handshakes over the three nodes, and one SIGINT (Ctrl-C) stops it all.
func TestClusterScript(t *testing.T) {
	ports := freePorts(t, 5)
	cmd := exec.Command("scripts/cluster.sh")
	cmd.Dir = testutil.RepoRoot(t)
	cmd.Env = append(os.Environ(),
		"CHATSERVER="+testutil.Binary(t, "chatserver"),
		fmt.Sprintf("PORT=%d", ports[0]),
		fmt.Sprintf("NODE_PORTS=%d %d %d", ports[1], ports[2], ports[3]),
		fmt.Sprintf("REDIS_PORT=%d", ports[4]),
	)
	var out strings.Builder
	var mu sync.Mutex
	pr, pw := io.Pipe()
	cmd.Stdout = pw
	cmd.Stderr = pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(pr)
		signalled := false
		for sc.Scan() {
			mu.Lock()
			out.WriteString(sc.Text() + "\n")
			mu.Unlock()
			if !signalled && strings.Contains(sc.Text(), "cluster: ready on") {
				signalled = true
				close(ready)
			}
		}
	}()
	go func() {
		done <- cmd.Wait()
		pw.Close()
	}()
	logs := func() string {
		mu.Lock()
		defer mu.Unlock()
		return out.String()
	}
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			cmd.Process.Kill()
		}
	})
	select {
	case <-ready:
	case err := <-done:
		t.Fatalf("cluster.sh exited (%v) before it was ready:\n%s", err, logs())
	case <-time.After(60 * time.Second):
		t.Fatalf("cluster.sh not ready after 60 s:\n%s", logs())
	}

	owners := map[string]bool{}
	for range 3 {
		cl, err := testutil.DialEIO(context.Background(), fmt.Sprintf("http://127.0.0.1:%d/socket.io/", ports[0]), 4, "polling", nil)
		if err != nil {
			t.Fatalf("handshake through the balancer: %v\n%s", err, logs())
		}
		owners[owner(cl.SID())] = true
	}
	if len(owners) != 3 {
		t.Errorf("three handshakes in a row went to nodes %v, want node1, node2 and node3 in turn", sortedKeys(owners))
	}

	if err := cmd.Process.Signal(os.Interrupt); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("cluster.sh exited with %v after Ctrl-C:\n%s", err, logs())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("cluster.sh still running 30 s after Ctrl-C:\n%s", logs())
	}
	if !strings.Contains(logs(), "cluster: stopped") {
		t.Errorf("cluster.sh did not report stopping:\n%s", logs())
	}
	// Nothing it started is left listening.
	for _, p := range ports {
		if c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", p)); err == nil {
			c.Close()
			t.Errorf("port %d still accepts connections after the cluster stopped", p)
		}
	}
}
