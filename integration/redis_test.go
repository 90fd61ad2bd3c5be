package integration

// Cluster tests: several chatserver processes (and a Node.js socket.io node)
// share one real redis-server started per test. Real socket.io clients run in
// testdata/node/redis-driver.js, which the test drives over stdin and whose
// events (connects, every clientReceiver line) it reads from stdout; the
// assertions are here.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"siogo/internal/testutil"
)

const clusterWait = 20 * time.Second

// clusterEvent is one line of the driver's output.
type clusterEvent struct {
	Ev       string          `json:"ev"`
	ID       string          `json:"id"`
	ClientID *int64          `json:"clientID"`
	Message  string          `json:"message"`
	Reason   string          `json:"reason"`
	Args     json.RawMessage `json:"args"`
}

// clusterDriver runs redis-driver.js and keeps what its clients saw.
type clusterDriver struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	wmu   sync.Mutex

	mu           sync.Mutex
	changed      chan struct{} // closed and replaced on every event
	connected    map[string]bool
	connectError map[string]string
	disconnected map[string]string
	received     map[string]map[string]int // client -> message -> times
	total        int                       // chat lines received by all clients
	senderIDs    map[string]map[int64]bool // message sender (from the text) -> clientIDs seen
	binary       map[string][]json.RawMessage
	questions    map[string][]json.RawMessage
	// expectDisconnects stops waitFor from failing on disconnections.
	expectDisconnects bool
	driverErrors      []string
	exited            bool
	stderr            strings.Builder
}

func startClusterDriver(t *testing.T) *clusterDriver {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := testutil.NodeCommand(ctx, t, "testdata/node/redis-driver.js")
	d := &clusterDriver{
		t: t, cmd: cmd, changed: make(chan struct{}),
		connected: map[string]bool{}, connectError: map[string]string{}, disconnected: map[string]string{},
		received: map[string]map[string]int{}, senderIDs: map[string]map[int64]bool{}, binary: map[string][]json.RawMessage{},
		questions: map[string][]json.RawMessage{},
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = lockedBuilder{&d.mu, &d.stderr}
	d.stdin = stdin
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 64*1024), 1<<20)
		for sc.Scan() {
			var ev clusterEvent
			if err := json.Unmarshal(sc.Bytes(), &ev); err != nil {
				d.update(func() { d.driverErrors = append(d.driverErrors, "bad event: "+sc.Text()) })
				continue
			}
			d.update(func() { d.record(ev) })
		}
		cmd.Wait()
		d.update(func() { d.exited = true })
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	return d
}

type lockedBuilder struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedBuilder) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

// chatSenderRe extracts the sender from "<run>|<sender>|<seq>".
var chatSenderRe = regexp.MustCompile(`^[^|]*\|([^|]*)\|`)

func (d *clusterDriver) record(ev clusterEvent) {
	switch ev.Ev {
	case "connect":
		d.connected[ev.ID] = true
	case "connect_error":
		d.connectError[ev.ID] = ev.Message
	case "disconnect":
		d.disconnected[ev.ID] = ev.Reason
	case "msg":
		if d.received[ev.ID] == nil {
			d.received[ev.ID] = map[string]int{}
		}
		d.received[ev.ID][ev.Message]++
		d.total++
		if m := chatSenderRe.FindStringSubmatch(ev.Message); m != nil && ev.ClientID != nil {
			if d.senderIDs[m[1]] == nil {
				d.senderIDs[m[1]] = map[int64]bool{}
			}
			d.senderIDs[m[1]][*ev.ClientID] = true
		}
	case "bin":
		d.binary[ev.ID] = append(d.binary[ev.ID], ev.Args)
	case "question":
		d.questions[ev.ID] = append(d.questions[ev.ID], ev.Args)
	case "error":
		d.driverErrors = append(d.driverErrors, ev.Message)
	}
}

func (d *clusterDriver) update(f func()) {
	d.mu.Lock()
	f()
	close(d.changed)
	d.changed = make(chan struct{})
	d.mu.Unlock()
}

func (d *clusterDriver) send(cmd any) {
	d.t.Helper()
	b, _ := json.Marshal(cmd)
	d.wmu.Lock()
	defer d.wmu.Unlock()
	if _, err := d.stdin.Write(append(b, '\n')); err != nil {
		d.t.Fatalf("driver: %v", err)
	}
}

// waitFor blocks until cond holds on the driver's state, failing the test
// after timeout, when a client disconnects unexpectedly or the driver fails.
func (d *clusterDriver) waitFor(timeout time.Duration, desc string, cond func() bool) {
	d.t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		d.mu.Lock()
		ok := cond()
		changed := d.changed
		problem := ""
		switch {
		case len(d.driverErrors) > 0:
			problem = "driver: " + strings.Join(d.driverErrors, "; ")
		case len(d.disconnected) > 0 && !d.expectDisconnects:
			problem = fmt.Sprintf("clients disconnected: %v", d.disconnected)
		case d.exited:
			problem = "driver exited: " + d.stderr.String()
		}
		d.mu.Unlock()
		if ok {
			return
		}
		if problem != "" {
			d.t.Fatalf("waiting for %s: %s", desc, problem)
		}
		select {
		case <-changed:
		case <-deadline.C:
			d.mu.Lock()
			defer d.mu.Unlock()
			d.t.Fatalf("timed out after %v waiting for %s (%d lines received in total; connect errors %v)", timeout, desc, d.total, d.connectError)
		}
	}
}

type clusterClient struct {
	id   string
	gen  int
	mode string
	url  string
}

// connect opens the clients one after the other, each once the previous
// has connected, so that their clientIDs follow this order.
func (d *clusterDriver) connect(clients ...clusterClient) {
	d.t.Helper()
	for _, c := range clients {
		d.send(map[string]any{"cmd": "connect", "id": c.id, "gen": c.gen, "mode": c.mode, "url": c.url})
		d.waitFor(clusterWait, c.id+" to connect", func() bool {
			if msg, failed := d.connectError[c.id]; failed {
				d.t.Fatalf("client %s: connect error %s", c.id, msg)
			}
			return d.connected[c.id]
		})
	}
}

// connectAll opens the clients at once.
func (d *clusterDriver) connectAll(clients ...clusterClient) {
	d.t.Helper()
	for _, c := range clients {
		d.send(map[string]any{"cmd": "connect", "id": c.id, "gen": c.gen, "mode": c.mode, "url": c.url})
	}
	d.waitFor(clusterWait, "every client to connect", func() bool {
		for _, c := range clients {
			if msg, failed := d.connectError[c.id]; failed {
				d.t.Fatalf("client %s: connect error %s", c.id, msg)
			}
			if !d.connected[c.id] {
				return false
			}
		}
		return true
	})
}

func (d *clusterDriver) emit(id string, messages ...string) {
	d.send(map[string]any{"cmd": "emit", "id": id, "messages": messages})
}

func (d *clusterDriver) count(client, message string) int {
	return d.received[client][message]
}

// hasAll reports whether every client received every message at least once.
func (d *clusterDriver) hasAll(clients []string, messages []string) bool {
	for _, c := range clients {
		for _, m := range messages {
			if d.received[c][m] == 0 {
				return false
			}
		}
	}
	return true
}

// exchange has every client send n messages and waits until all clients
// have all of them. A fence round follows: once every client has every
// fence, a duplicate of an earlier message would have arrived, since each
// node's messages travel in order. It then checks each message arrived
// exactly once, and returns the clientID seen for each sender.
func (d *clusterDriver) exchange(run string, senders, receivers []string, n int) map[string]int64 {
	d.t.Helper()
	var all []string
	for _, s := range senders {
		msgs := make([]string, n)
		for k := range msgs {
			msgs[k] = fmt.Sprintf("%s|%s|%d", run, s, k)
		}
		all = append(all, msgs...)
		d.emit(s, msgs...)
	}
	d.waitFor(clusterWait, fmt.Sprintf("%d clients to receive %d messages each", len(receivers), len(all)), func() bool {
		return d.hasAll(receivers, all)
	})
	var fences []string
	for _, s := range senders {
		f := fmt.Sprintf("%s|%s|fence", run, s)
		fences = append(fences, f)
		d.emit(s, f)
	}
	d.waitFor(clusterWait, "the fences", func() bool { return d.hasAll(receivers, fences) })

	d.mu.Lock()
	defer d.mu.Unlock()
	for _, c := range receivers {
		for _, m := range append(all, fences...) {
			if got := d.count(c, m); got != 1 {
				d.t.Errorf("client %s received %q %d times, want once", c, m, got)
			}
		}
	}
	ids := map[string]int64{}
	for _, s := range senders {
		seen := d.senderIDs[s]
		if len(seen) != 1 {
			d.t.Errorf("messages of %s carried clientIDs %v, want one", s, seen)
		}
		for id := range seen {
			ids[s] = id
		}
	}
	return ids
}

// startClusterNodes starts count chatservers on r, with args, and waits
// until each is ready, i.e. reading from and subscribed to Redis.
func startClusterNodes(t *testing.T, r *testutil.Redis, count int, args ...string) []*testutil.Server {
	t.Helper()
	nodes := make([]*testutil.Server, count)
	for i := range nodes {
		nodes[i] = testutil.Start(t, "chatserver", append([]string{"-redis", r.URL()}, args...)...)
		t.Cleanup(func() { checkNodeLogs(t, nodes[i]) })
	}
	for _, n := range nodes {
		waitReady(t, n, http.StatusOK)
	}
	return nodes
}

func waitReady(t *testing.T, n *testutil.Server, want int) {
	t.Helper()
	testutil.Eventually(t, clusterWait, func() bool {
		resp, err := http.Get(n.URL() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == want
	}, "%s/readyz to answer %d", n.URL(), want)
}

// checkNodeLogs fails the test on a panic or a data race in a node. It runs
// at cleanup, after the node has stopped, so the race report is complete.
func checkNodeLogs(t *testing.T, n *testutil.Server) {
	n.Stop(t)
	logs := n.Logs()
	for _, bad := range []string{"panic", "DATA RACE"} {
		if strings.Contains(logs, bad) {
			t.Errorf("node %s logged %q:\n%s", n.Addr, bad, logs)
		}
	}
}

func sortedIDs(ids map[string]int64) []int64 {
	out := make([]int64, 0, len(ids))
	for _, id := range ids {
		out = append(out, id)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

// TestRedisThreeNodes: three nodes on one Redis, socket.io-client 4.x on
// node 1 (polling upgraded to WebSocket), 4.x WebSocket on node 2 and 2.x
// polling on node 3. Every message reaches every client exactly once, and
// the clientIDs are cluster-wide, in connection order. Both brokers.
func TestRedisThreeNodes(t *testing.T) {
	for _, broker := range []string{"streams", "pubsub"} {
		t.Run(broker, func(t *testing.T) { testRedisThreeNodes(t, broker) })
	}
}

func testRedisThreeNodes(t *testing.T, broker string) {
	r := testutil.StartRedis(t)
	nodes := startClusterNodes(t, r, 3, "-broker", broker)
	d := startClusterDriver(t)
	clients := []clusterClient{
		{"n1", 4, "default", nodes[0].URL()},
		{"n2", 4, "websocket", nodes[1].URL()},
		{"n3", 2, "polling", nodes[2].URL()},
	}
	d.connect(clients...)
	names := []string{"n1", "n2", "n3"}
	ids := d.exchange("three", names, names, 10)
	for i, name := range names {
		if ids[name] != int64(i) {
			t.Errorf("clientIDs %v: want n1=0 n2=1 n3=2 (connection order across nodes)", ids)
			break
		}
	}
}

// TestRedisConcurrentBurst: 20 clients on 2 nodes each send 100 messages as
// fast as they can; all 20 × 100 × 20 deliveries arrive, each exactly once.
func TestRedisConcurrentBurst(t *testing.T) {
	const perNode, messages = 10, 100
	r := testutil.StartRedis(t)
	nodes := startClusterNodes(t, r, 2)
	d := startClusterDriver(t)
	var clients []clusterClient
	var names []string
	for i := 0; i < 2*perNode; i++ {
		name := fmt.Sprintf("c%02d", i)
		names = append(names, name)
		clients = append(clients, clusterClient{name, 4, "websocket", nodes[i%2].URL()})
	}
	d.connectAll(clients...)
	ids := d.exchange("burst", names, names, messages)
	d.mu.Lock()
	total := d.total
	d.mu.Unlock()
	if want := 2 * perNode * (messages + 1) * 2 * perNode; total != want {
		t.Errorf("%d deliveries in total, want %d (20 × 101 × 20)", total, want)
	}
	got := sortedIDs(ids)
	for i, id := range got {
		if id != int64(i) {
			t.Errorf("clientIDs %v, want 0..%d each once", got, len(got)-1)
			break
		}
	}
}

// TestRedisRestartMidChat kills redis-server mid-chat and starts it again,
// empty: each node keeps delivering to its own clients throughout, a client
// connecting meanwhile is refused with a clear error rather than given an
// id, cross-node delivery resumes within 5 s of Redis being back, and every
// line said while Redis was down reaches the other node's clients, once.
func TestRedisRestartMidChat(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startClusterNodes(t, r, 2)
	d := startClusterDriver(t)
	d.connect(
		clusterClient{"a1", 4, "websocket", nodes[0].URL()},
		clusterClient{"a2", 2, "polling", nodes[0].URL()},
		clusterClient{"b1", 4, "websocket", nodes[1].URL()},
	)
	all := []string{"a1", "a2", "b1"}
	d.exchange("before", all, all, 3)

	r.Kill()
	for _, n := range nodes {
		waitReady(t, n, http.StatusServiceUnavailable)
	}
	// Local delivery on each node while Redis is down.
	var downA, downB []string
	for k := 0; k < 5; k++ {
		ma, mb := fmt.Sprintf("down|a1|%d", k), fmt.Sprintf("down|b1|%d", k)
		downA, downB = append(downA, ma), append(downB, mb)
		d.emit("a1", ma)
		d.emit("b1", mb)
		d.waitFor(clusterWait, "local delivery while Redis is down", func() bool {
			return d.count("a1", ma) == 1 && d.count("a2", ma) == 1 && d.count("b1", mb) == 1
		})
	}
	d.send(map[string]any{"cmd": "connect", "id": "late", "gen": 4, "mode": "websocket", "url": nodes[0].URL()})
	d.waitFor(clusterWait, "the late client to be refused", func() bool { _, ok := d.connectError["late"]; return ok })
	d.mu.Lock()
	refusal, lateConnected := d.connectError["late"], d.connected["late"]
	d.mu.Unlock()
	if lateConnected || !strings.Contains(refusal, "cannot allocate a client id") {
		t.Errorf("client connecting with Redis down: connected %v, error %q", lateConnected, refusal)
	}

	r.StartAgain()
	back := time.Now()
	// Probe both directions until a message crosses; each probe is sent
	// once the previous one has come back locally.
	for _, dir := range []struct{ from, to string }{{"a1", "b1"}, {"b1", "a1"}} {
		for k := 0; ; k++ {
			m := fmt.Sprintf("probe|%s|%d", dir.from, k)
			d.emit(dir.from, m)
			d.waitFor(clusterWait, "a probe to come back locally", func() bool { return d.count(dir.from, m) == 1 })
			crossed := false
			probeWait := time.NewTimer(100 * time.Millisecond)
			func() {
				defer probeWait.Stop()
				for {
					d.mu.Lock()
					crossed = d.count(dir.to, m) > 0
					changed := d.changed
					d.mu.Unlock()
					if crossed {
						return
					}
					select {
					case <-changed:
					case <-probeWait.C:
						return
					}
				}
			}()
			if crossed {
				break
			}
			if time.Since(back) > 5*time.Second {
				t.Fatalf("no message from %s reached %s within 5 s of Redis restarting", dir.from, dir.to)
			}
		}
	}
	t.Logf("cross-node delivery resumed %v after Redis restarted", time.Since(back).Round(time.Millisecond))
	// Nothing said while Redis was down was lost for the other node, and
	// nothing came twice.
	d.waitFor(clusterWait, "the lines of the outage to cross", func() bool {
		for _, m := range downA {
			if d.count("b1", m) == 0 {
				return false
			}
		}
		for _, m := range downB {
			if d.count("a1", m) == 0 || d.count("a2", m) == 0 {
				return false
			}
		}
		return true
	})
	d.mu.Lock()
	for _, m := range append(downA, downB...) {
		for _, c := range all {
			if n := d.count(c, m); n != 1 {
				t.Errorf("%s received %q %d times, want once", c, m, n)
			}
		}
	}
	d.mu.Unlock()
	for _, n := range nodes {
		waitReady(t, n, http.StatusOK)
	}
	d.exchange("after", all, all, 3)
	for _, n := range nodes {
		if logs := n.Logs(); !strings.Contains(logs, "subscriber reconnected") {
			t.Errorf("node %s did not log its reconnection:\n%s", n.Addr, logs)
		}
		if got := fetchMetrics(t, n.URL()).Sum("siogo_redis_reconnects_total"); got != 1 {
			t.Errorf("node %s: siogo_redis_reconnects_total = %v, want 1", n.Addr, got)
		}
	}
}

// TestRedisDownAtStart starts a node (configured through REDIS_URL) while
// Redis is down: it serves, says why it is not ready and keeps retrying,
// and becomes ready once Redis is up.
func TestRedisDownAtStart(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Kill()
	t.Setenv("REDIS_URL", r.URL())
	n := testutil.Start(t, "chatserver")
	t.Cleanup(func() { checkNodeLogs(t, n) })
	waitReady(t, n, http.StatusServiceUnavailable)
	resp, err := http.Get(n.URL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("/healthz = %d while Redis is down, want 200", resp.StatusCode)
	}
	testutil.Eventually(t, clusterWait, func() bool {
		return strings.Count(n.Logs(), "cannot reach Redis") >= 2
	}, "the node to log its retries:\n%s", n.Logs())
	if !strings.Contains(n.Logs(), "connection refused") {
		t.Errorf("the log does not say why Redis is unreachable:\n%s", n.Logs())
	}

	r.StartAgain()
	waitReady(t, n, http.StatusOK)
	d := startClusterDriver(t)
	d.connect(clusterClient{"c", 4, "websocket", n.URL()})
	ids := d.exchange("late-redis", []string{"c"}, []string{"c"}, 2)
	if ids["c"] != 0 {
		t.Errorf("first clientID %d, want 0", ids["c"])
	}
}

// startNodeServer runs testdata/node/redis-node-server.js and returns its
// base URL.
func startNodeServer(t *testing.T, redisURL string, args ...string) string {
	t.Helper()
	return testutil.StartNodeServer(t, "testdata/node/redis-node-server.js", append([]string{"--redis", redisURL}, args...)...)
}

// waitServerCount waits until n nodes listen on the request channel of "/".
func waitServerCount(t *testing.T, redisURL string, n int) {
	t.Helper()
	waitSubscribers(t, redisURL, "socket.io-request#/#", n)
}

// waitSubscribers waits until n connections subscribe to channel.
func waitSubscribers(t *testing.T, redisURL, channel string, n int) {
	t.Helper()
	conn, err := redis.DialURL(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testutil.Eventually(t, clusterWait, func() bool {
		vals, err := redis.Values(conn.Do("PUBSUB", "NUMSUB", channel))
		if err != nil || len(vals) != 2 {
			return false
		}
		got, _ := redis.Int(vals[1], nil)
		return got == n
	}, "%d nodes subscribed to %s", n, channel)
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	client := &http.Client{Timeout: clusterWait}
	resp, err := client.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, body)
	}
	if err := json.Unmarshal(body, v); err != nil {
		t.Fatalf("GET %s: %v in %s", u, err, body)
	}
}

// TestRedisNodeInterop puts a Node.js socket.io 4 node with the Redis
// adapter on the same Redis as our node: chat flows both ways, an emitter's
// broadcast and a Node.js binary broadcast reach our clients, and Node's
// fetchSockets, allRooms and serverSideEmit (with ack) complete without
// timing out while our node is in the cluster.
func TestRedisNodeInterop(t *testing.T) {
	r := testutil.StartRedis(t)
	// The Node.js node runs @socket.io/redis-adapter: publish/subscribe.
	goNode := startClusterNodes(t, r, 1, "-broker", "pubsub")[0]
	nodeURL := startNodeServer(t, r.URL())
	waitServerCount(t, r.URL(), 2)

	d := startClusterDriver(t)
	d.connect(
		clusterClient{"go4", 4, "websocket", goNode.URL()},
		clusterClient{"go2", 2, "polling", goNode.URL()},
		clusterClient{"node4", 4, "default", nodeURL},
	)
	all := []string{"go4", "go2", "node4"}
	ids := d.exchange("interop", all, all, 5)
	if got := sortedIDs(ids); fmt.Sprint(got) != "[0 1 2]" {
		t.Errorf("clientIDs %v, want 0, 1, 2 from the shared counter", got)
	}

	// The emitter publishes as uid "emitter".
	msg := "emitter|emitter|0"
	var ok struct{ OK bool }
	getJSON(t, nodeURL+"/cluster/emitter?message="+url.QueryEscape(msg), &ok)
	d.waitFor(clusterWait, "the emitter's message", func() bool { return d.hasAll(all, []string{msg}) })

	getJSON(t, nodeURL+"/cluster/emit-binary", &ok)
	d.waitFor(clusterWait, "the binary broadcast", func() bool { return len(d.binary["go4"]) > 0 && len(d.binary["go2"]) > 0 })
	d.mu.Lock()
	for _, c := range []string{"go4", "go2", "node4"} {
		if len(d.binary[c]) > 0 {
			if got, want := string(d.binary[c][0]), `[{"$bin":"010203"},{"nested":{"$bin":"ff"}},"text"]`; got != want {
				t.Errorf("%s got binary broadcast %s, want %s", c, got, want)
			}
		}
	}
	d.mu.Unlock()

	var count struct{ Servers int }
	getJSON(t, nodeURL+"/cluster/count", &count)
	if count.Servers != 2 {
		t.Errorf("Node sees %d servers, want 2", count.Servers)
	}

	var sockets []struct {
		ID        string                     `json:"id"`
		Handshake map[string]json.RawMessage `json:"handshake"`
		Rooms     []string                   `json:"rooms"`
		Data      struct {
			ClientID *int64 `json:"clientID"`
		} `json:"data"`
	}
	getJSON(t, nodeURL+"/cluster/fetch", &sockets)
	if len(sockets) != 3 {
		t.Fatalf("fetchSockets returned %d sockets, want 3: %+v", len(sockets), sockets)
	}
	var fromGo int
	wantIDs := map[int64]bool{ids["go4"]: true, ids["go2"]: true}
	for _, s := range sockets {
		for _, key := range []string{"headers", "time", "address", "xdomain", "secure", "issued", "url", "query", "auth"} {
			if _, ok := s.Handshake[key]; !ok {
				t.Errorf("socket %s: handshake has no %q: %v", s.ID, key, s.Handshake)
			}
		}
		if len(s.Rooms) == 0 || s.Rooms[0] == "" {
			t.Errorf("socket %s: rooms %v", s.ID, s.Rooms)
		}
		if s.Data.ClientID != nil && wantIDs[*s.Data.ClientID] {
			fromGo++
		}
	}
	if fromGo != 2 {
		t.Errorf("fetchSockets: %d sockets carry the Go clients' clientIDs, want 2: %+v", fromGo, sockets)
	}

	var rooms []string
	getJSON(t, nodeURL+"/cluster/rooms", &rooms)
	if len(rooms) != 3 {
		t.Errorf("allRooms = %v, want the 3 sockets' own rooms", rooms)
	}

	var sse struct {
		Error     *string           `json:"error"`
		Responses []json.RawMessage `json:"responses"`
		MS        int               `json:"ms"`
	}
	getJSON(t, nodeURL+"/cluster/server-side-emit", &sse)
	if sse.Error != nil || len(sse.Responses) != 1 {
		t.Errorf("serverSideEmit with ack: error %v, responses %s (after %d ms); want one answer from our node", sse.Error, sse.Responses, sse.MS)
	}
	if sse.MS >= 5000 {
		t.Errorf("serverSideEmit took %d ms: it waited for the timeout", sse.MS)
	}

	// Node's socketsJoin reaches our sockets (its fetchSockets shows the
	// room on every socket); a broadcast to the room, published on the
	// room's own channel, then reaches them all. The wait matters for the
	// Node.js node only: it applies its own join when the request comes
	// back from Redis, so an emit right after the join can miss its own
	// sockets.
	getJSON(t, nodeURL+"/cluster/sockets-join?room=vip", &ok)
	testutil.Eventually(t, clusterWait, func() bool {
		var fetched []struct{ Rooms []string }
		getJSON(t, nodeURL+"/cluster/fetch", &fetched)
		in := 0
		for _, s := range fetched {
			for _, r := range s.Rooms {
				if r == "vip" {
					in++
				}
			}
		}
		return in == len(all)
	}, "every socket to be in room vip")
	roomMsg := "room|node|0"
	getJSON(t, nodeURL+"/cluster/room-emit?room=vip&message="+url.QueryEscape(roomMsg), &ok)
	d.waitFor(clusterWait, "the broadcast to the joined room", func() bool { return d.hasAll(all, []string{roomMsg}) })

	// A broadcast with acknowledgements: every client, ours included,
	// answers, and binary travels both ways.
	var acks struct {
		Error     *string `json:"error"`
		Responses []struct {
			ID   string `json:"id"`
			Echo struct {
				Type string `json:"type"`
				Data []int  `json:"data"`
			} `json:"echo"`
		} `json:"responses"`
		MS int `json:"ms"`
	}
	getJSON(t, nodeURL+"/cluster/emit-with-ack", &acks)
	answered := map[string]bool{}
	for _, r := range acks.Responses {
		if r.Echo.Type == "Buffer" && fmt.Sprint(r.Echo.Data) == "[8]" {
			answered[r.ID] = true
		}
	}
	if acks.Error != nil || len(acks.Responses) != 3 || len(answered) != 3 {
		t.Errorf("broadcast with ack: error %v, responses %+v after %d ms; want one per client, each with its Buffer", acks.Error, acks.Responses, acks.MS)
	}
	t.Logf("serverSideEmit answered in %d ms, the broadcast with acks in %d ms", sse.MS, acks.MS)
	d.mu.Lock()
	for _, c := range all {
		if q := d.questions[c]; len(q) != 1 || string(q[0]) != `["q?",{"$bin":"07"}]` {
			t.Errorf("%s got questions %s", c, q)
		}
	}
	d.expectDisconnects = true
	d.mu.Unlock()

	// Node's disconnectSockets disconnects our clients too.
	getJSON(t, nodeURL+"/cluster/disconnect", &ok)
	d.waitFor(clusterWait, "every client to be disconnected", func() bool { return len(d.disconnected) == len(all) })
	d.mu.Lock()
	defer d.mu.Unlock()
	for c, reason := range d.disconnected {
		if reason != "io server disconnect" {
			t.Errorf("%s disconnected with %q, want io server disconnect", c, reason)
		}
	}
}
