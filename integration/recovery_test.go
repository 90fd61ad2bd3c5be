package integration

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"siogo/internal/testutil"
)

// Connection-state recovery with real socket.io clients (testdata/node/
// cluster-client.js): a 4.x client whose connection is cut comes back with
// its clientID and every line it missed, in order, once; on one node, when
// its node dies, through a rolling restart, and with a Node.js node in the
// cluster.

// send makes each sender emit lines, one after the other, and returns them
// in sending order; it waits for nothing.
func (l *lbClients) sendLines(run string, senders []int, count int) []string {
	var lines []string
	for k := range count {
		i := senders[k%len(senders)]
		line := fmt.Sprintf("%s|%d|c%d|%s", run, k, i, lbText)
		lines = append(lines, line)
		l.send(map[string]any{"cmd": "send", "client": i, "text": line})
	}
	return lines
}

// received waits until each client of who has received every line.
func (l *lbClients) received(who []int, lines []string) {
	l.t.Helper()
	l.waitFor(fmt.Sprintf("clients %v to receive %d lines", who, len(lines)), func() bool {
		for _, i := range who {
			for _, line := range lines {
				if l.clients[i].received[line] == 0 {
					return false
				}
			}
		}
		return true
	})
}

// drop cuts a client's connection and holds its reconnection off for d;
// url, when set, is where it reconnects.
func (l *lbClients) drop(i int, d time.Duration, url string) {
	cmd := map[string]any{"cmd": "drop", "client": i, "ms": d.Milliseconds()}
	if url != "" {
		cmd["url"] = url
	}
	l.send(cmd)
}

// live waits until each client of who is connected: it has connected once
// more than it was disconnected.
func (l *lbClients) live(who []int) {
	l.t.Helper()
	l.waitFor(fmt.Sprintf("clients %v to be connected", who), func() bool {
		for _, i := range who {
			c := l.clients[i]
			if len(c.sids) != len(c.disconnects)+1 {
				return false
			}
		}
		return true
	})
}

// inOrder returns the lines of want in the order a client received them.
func inOrder(c lbClient, want []string) []string {
	set := map[string]bool{}
	for _, w := range want {
		set[w] = true
	}
	var out []string
	for _, line := range c.order {
		if set[line] {
			out = append(out, line)
		}
	}
	return out
}

// checkRecovered checks that client i came back recovered and received
// each of lines exactly once, in the order reference received them.
func checkRecovered(t *testing.T, cl lbClient, i int, lines []string, reference []string) {
	t.Helper()
	if n := len(cl.recovered); n < 2 || !cl.recovered[n-1] {
		t.Errorf("client %d (%s): connections recovered %v, want the last one recovered", i, cl.spec, cl.recovered)
	}
	for _, line := range lines {
		if cl.received[line] != 1 {
			t.Errorf("client %d (%s) received %q %d times, want once", i, cl.spec, line, cl.received[line])
		}
	}
	if got := inOrder(cl, lines); reference != nil && strings.Join(got, "\n") != strings.Join(reference, "\n") {
		t.Errorf("client %d (%s) received the lines in another order than the others:\n got %q\nwant %q", i, cl.spec, got, reference)
	}
}

// TestRecoverySingleNode: one node; a WebSocket client and a polling client
// lose their connection for five seconds while three others send 100
// lines. Both come back recovered, with their clientIDs, and get all 100
// lines once, in the order everyone else saw. Clients 1.x and 2.x see no
// extra argument and cannot recover; 3.x gets the offset argument, as from
// the reference server, and cannot recover either.
func TestRecoverySingleNode(t *testing.T) {
	srv := testutil.Start(t, "chatserver")
	specs := []string{"4:websocket", "4:polling", "4:default", "4:polling", "3:default", "2:polling", "1:websocket"}
	l := startLBClients(t, srv.URL(), specs...)
	all := indexes(len(specs))
	l.connected(all, 1)
	run := "one" + strconv.FormatInt(time.Now().UnixNano(), 36)
	first := l.round(run, 1, all, all)
	before := l.snapshot()
	victims := []int{0, 1}
	for _, v := range victims {
		l.drop(v, 5*time.Second, "")
	}
	l.waitFor("the victims to notice", func() bool {
		return len(l.clients[0].disconnects) == 1 && len(l.clients[1].disconnects) == 1
	})
	lines := l.sendLines(run+"|away", []int{2, 3, 4}, 100)
	l.received([]int{2, 3, 4, 5, 6}, lines)
	l.connected(victims, 2)
	l.received(victims, lines)
	after := l.snapshot()
	reference := inOrder(after[2], lines)
	for _, v := range victims {
		checkRecovered(t, after[v], v, lines, reference)
	}
	// Everyone chats on, the recovered clients with their old clientIDs.
	last := l.round(run, 2, all, all)
	after = l.snapshot()
	for _, v := range victims {
		if got, want := after[v].acks[last[v]], before[v].acks[first[v]]; got != want {
			t.Errorf("client %d chats as clientID %d after recovering, want %d", v, got, want)
		}
	}
	for i := 2; i < len(specs); i++ {
		if got := inOrder(after[i], lines); strings.Join(got, "\n") != strings.Join(reference, "\n") {
			t.Errorf("client %d (%s) saw another order", i, specs[i])
		}
	}
	// Extra arguments: revision 4 clients (1.x, 2.x) never see one; 4.x
	// always does; 3.x gets it too.
	for i, cl := range after {
		gen := specs[i][0]
		switch {
		case gen == '1' || gen == '2':
			if len(cl.args) != 1 || cl.args[1] == 0 {
				t.Errorf("client %d (%s): clientReceiver argument counts %v, want 1 only", i, cl.spec, cl.args)
			}
		default:
			if len(cl.args) != 1 || cl.args[2] == 0 {
				t.Errorf("client %d (%s): clientReceiver argument counts %v, want 2 (the line and its offset)", i, cl.spec, cl.args)
			}
		}
	}
	m := scrapeMetrics(t, srv)
	if got := sumMetric(m, "siogo_recoveries_total", `result="succeeded"`); got != 2 {
		t.Errorf("siogo_recoveries_total{succeeded} = %v, want 2", got)
	}
	if got := sumMetric(m, "siogo_recovery_replayed_packets_total"); got < 200 {
		t.Errorf("siogo_recovery_replayed_packets_total = %v, want at least 200", got)
	}
}

// TestRecoveryExpiry: a client that comes back after the recovery window
// gets a new session and a new clientID.
func TestRecoveryExpiry(t *testing.T) {
	// The session is kept past its expiry for as long again, so that
	// coming back in that time says "expired" rather than "unknown".
	srv := testutil.Start(t, "chatserver", "-recovery-window", "2s")
	specs := []string{"4:websocket", "4:default"}
	l := startLBClients(t, srv.URL(), specs...)
	l.connected(indexes(2), 1)
	run := "exp" + strconv.FormatInt(time.Now().UnixNano(), 36)
	first := l.round(run, 1, indexes(2), indexes(2))
	before := l.snapshot()
	l.drop(0, 3*time.Second, "")
	l.connected([]int{0}, 2)
	last := l.round(run, 2, indexes(2), indexes(2))
	after := l.snapshot()
	if after[0].recovered[1] {
		t.Error("recovered after the window")
	}
	if old, now := before[0].acks[first[0]], after[0].acks[last[0]]; old == now {
		t.Errorf("kept clientID %d after the window", old)
	}
	if got := sumMetric(scrapeMetrics(t, srv), "siogo_recoveries_total", `result="expired"`); got != 1 {
		t.Errorf("siogo_recoveries_total{expired} = %v, want 1", got)
	}
}

// lbRecoveryClients is the 20 socket.io 4.x clients of the cluster tests,
// all on one transport.
func lbRecoveryClients(mode string) []string {
	specs := make([]string, 20)
	for i := range specs {
		specs[i] = "4:" + mode
	}
	return specs
}

// TestRecoveryNodeDeath: three nodes behind nginx in round robin and 20
// clients; the node holding the most of them is killed. Its clients come
// back through other nodes with their clientIDs and every line sent
// meanwhile, once, in the order the others saw; the others notice nothing.
func TestRecoveryNodeDeath(t *testing.T) {
	for _, mode := range []string{"websocket", "polling"} {
		t.Run(mode, func(t *testing.T) {
			c := startBalancedCluster(t, 3)
			specs := lbRecoveryClients(mode)
			l := startLBClients(t, c.lb.URL(), specs...)
			all := indexes(len(specs))
			l.connected(all, 1)
			run := "death" + strconv.FormatInt(time.Now().UnixNano(), 36)
			first := l.round(run, 1, all, all)
			l.quiet()
			before := l.snapshot()
			owned := map[int][]int{}
			for i, cl := range before {
				k := c.node(owner(cl.sid()))
				owned[k] = append(owned[k], i)
			}
			victim := 0
			for k := range owned {
				if len(owned[k]) > len(owned[victim]) {
					victim = k
				}
			}
			t.Logf("killing node %s, which owns clients %v", c.ids[victim], owned[victim])
			c.nodes[victim].Kill()
			lost := map[int]bool{}
			for _, i := range owned[victim] {
				lost[i] = true
			}
			var others []int
			for _, i := range all {
				if !lost[i] {
					others = append(others, i)
				}
			}
			lines := l.sendLines(run+"|dead", others, 60)
			l.waitFor("the dead node's clients to notice", func() bool {
				for i := range lost {
					if len(l.clients[i].disconnects) == 0 {
						return false
					}
				}
				return true
			})
			l.received(all, lines)
			after := l.snapshot()
			reference := inOrder(after[others[0]], lines)
			for i := range lost {
				checkRecovered(t, after[i], i, lines, reference)
			}
			for _, i := range others {
				if len(after[i].disconnects) != 0 {
					t.Errorf("client %d noticed the node's death: disconnects %v", i, after[i].disconnects)
				}
				if got := inOrder(after[i], lines); strings.Join(got, "\n") != strings.Join(reference, "\n") {
					t.Errorf("client %d saw another order", i)
				}
				for _, line := range lines {
					if after[i].received[line] != 1 {
						t.Errorf("client %d received %q %d times", i, line, after[i].received[line])
					}
				}
			}
			last := l.round(run, 2, all, all)
			after = l.snapshot()
			for i := range specs {
				if got, want := after[i].acks[last[i]], before[i].acks[first[i]]; got != want {
					t.Errorf("client %d chats as clientID %d, want %d", i, got, want)
				}
			}
		})
	}
}

// TestRecoveryRollingRestart: each of three nodes in turn gets SIGTERM and
// is started again while 20 clients chat: the clients of the other nodes
// while it goes down, everyone once it is back. No line is lost, none comes
// twice, everyone sees one order, and every client keeps its clientID.
func TestRecoveryRollingRestart(t *testing.T) {
	c := startBalancedCluster(t, 3)
	specs := append(lbRecoveryClients("websocket")[:10], lbRecoveryClients("polling")[:10]...)
	l := startLBClients(t, c.lb.URL(), specs...)
	all := indexes(len(specs))
	l.connected(all, 1)
	run := "roll" + strconv.FormatInt(time.Now().UnixNano(), 36)
	first := l.round(run, 1, all, all)
	before := l.snapshot()
	var lines []string
	for k := range c.nodes {
		l.live(all)
		l.quiet()
		var others []int
		owners := map[string]int{}
		for i, cl := range l.snapshot() {
			owners[owner(cl.sid())]++
			if c.node(owner(cl.sid())) != k {
				others = append(others, i)
			}
		}
		t.Logf("stopping %s; sessions by node: %v", c.ids[k], owners)
		n := c.nodes[k]
		if err := n.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if len(others) > 0 {
			lines = append(lines, l.sendLines(fmt.Sprintf("%s|n%d|down", run, k), others, 20)...)
		}
		select {
		case <-n.Done():
		case <-time.After(15 * time.Second):
			t.Fatalf("node %s still running 15 s after SIGTERM", c.ids[k])
		}
		c.restart(t, k)
		l.live(all)
		lines = append(lines, l.sendLines(fmt.Sprintf("%s|n%d|back", run, k), all, 20)...)
		l.received(all, lines)
	}
	after := l.snapshot()
	reference := inOrder(after[0], lines)
	for i, cl := range after {
		for _, line := range lines {
			if cl.received[line] != 1 {
				var at []int
				for k, l := range cl.order {
					if l == line {
						at = append(at, k)
					}
				}
				t.Errorf("client %d (%s) received %q %d times (at %v of %d; sessions %v, disconnects %v), want once", i, cl.spec, line, cl.received[line], at, len(cl.order), cl.sids, cl.disconnects)
			}
		}
		if got := inOrder(cl, lines); strings.Join(got, "\n") != strings.Join(reference, "\n") {
			t.Errorf("client %d (%s) saw another order than client 0", i, cl.spec)
		}
		for n, rec := range cl.recovered[1:] {
			if !rec {
				t.Errorf("client %d (%s): connection %d not recovered (%v)", i, cl.spec, n+2, cl.recovered)
			}
		}
	}
	last := l.round(run, 2, all, all)
	after = l.snapshot()
	for i := range specs {
		if got, want := after[i].acks[last[i]], before[i].acks[first[i]]; got != want {
			t.Errorf("client %d chats as clientID %d, want %d", i, got, want)
		}
	}
}

// restart starts node k again, with its id and address, and waits until it
// is ready.
func (c *balancedCluster) restart(t *testing.T, k int) {
	t.Helper()
	n := testutil.Start(t, "chatserver", append([]string{"-addr", c.nodes[k].Addr}, c.args[k]...)...)
	t.Cleanup(func() { checkNodeLogs(t, n) })
	c.nodes[k] = n
	waitReady(t, n, http.StatusOK)
}

// TestRecoveryNodeInterop: a Node.js socket.io 4 node with
// @socket.io/redis-streams-adapter shares the stream with our node. Chat
// lines cross both ways, and a 4.x client whose session began on one node
// recovers on the other, in each direction, with its clientID and every
// line it missed.
func TestRecoveryNodeInterop(t *testing.T) {
	r := testutil.StartRedis(t)
	goNode := startClusterNodes(t, r, 1)[0]
	nodeURL := startNodeServer(t, r.URL(), "--adapter", "streams")
	waitSubscribers(t, r.URL(), "socket.io#/#", 2)

	onNode := startLBClients(t, nodeURL, "4:websocket", "4:polling")
	onGo := startLBClients(t, goNode.URL(), "4:websocket", "4:default")
	groups := []*lbClients{onNode, onGo}
	for _, g := range groups {
		g.connected(indexes(2), 1)
	}
	run := "interop" + strconv.FormatInt(time.Now().UnixNano(), 36)
	chat := func(tag string) []string {
		var lines []string
		for gi, g := range groups {
			lines = append(lines, g.sendLines(fmt.Sprintf("%s|%s|g%d", run, tag, gi), indexes(2), 4)...)
		}
		for _, g := range groups {
			g.received(indexes(2), lines)
		}
		return lines
	}
	first := chat("both-ways")
	ackOf := func(g *lbClients, i int, lines []string) int64 {
		c := g.snapshot()[i]
		for _, line := range lines {
			if id, ok := c.acks[line]; ok {
				return id
			}
		}
		t.Fatalf("client %d has no ack among %d lines", i, len(lines))
		return 0
	}
	nodeID, goID := ackOf(onNode, 0, first), ackOf(onGo, 0, first)

	// Client 0 of each group moves to the other node.
	onNode.drop(0, time.Second, goNode.URL())
	onGo.drop(0, time.Second, nodeURL)
	onNode.waitFor("the move away from Node.js", func() bool { return len(onNode.clients[0].disconnects) == 1 })
	onGo.waitFor("the move away from Go", func() bool { return len(onGo.clients[0].disconnects) == 1 })
	var missed []string
	for gi, g := range groups {
		missed = append(missed, g.sendLines(fmt.Sprintf("%s|away|g%d", run, gi), []int{1}, 5)...)
	}
	for _, g := range groups {
		g.connected([]int{0}, 2)
		g.received(indexes(2), missed)
	}
	for gi, g := range groups {
		snap := g.snapshot()
		checkRecovered(t, snap[0], 0, missed, nil)
		for _, line := range missed {
			if snap[1].received[line] != 1 {
				t.Errorf("group %d client 1 received %q %d times", gi, line, snap[1].received[line])
			}
		}
	}
	last := chat("after")
	if got := ackOf(onNode, 0, last); got != nodeID {
		t.Errorf("the client from the Node.js node chats as clientID %d on ours, want %d", got, nodeID)
	}
	if got := ackOf(onGo, 0, last); got != goID {
		t.Errorf("the client from our node chats as clientID %d on the Node.js node, want %d", got, goID)
	}
}
