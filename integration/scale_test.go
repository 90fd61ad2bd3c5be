package integration

// One node with a few thousand connections, run for correctness only: a
// chat among all of them, polling clients upgrading to WebSocket while
// lines flow, slow consumers cut off while everyone else keeps every line,
// and a graceful shutdown that loses nothing. It never asserts a duration
// or a rate: every wait is on an event, with a generous bound that only
// turns a hang into a failure.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"siogo/internal/testutil"
)

const (
	// scaleClients is how many chat sessions the node holds: a few
	// thousand idle connections for the server's read path, few enough
	// for a 2-core machine under the race detector. Each takes one
	// descriptor in the server and one or two in this process, well
	// within common open-file limits; a lower limit lowers the count, down
	// to scaleMinClients.
	scaleClients    = 3000
	scaleMinClients = 1000
	// Of them: polling clients that upgrade to WebSocket, and polling-only
	// clients, each half of protocol revision 4 and half of revision 3;
	// WebSocket-only clients of revision 3; the rest are WebSocket-only
	// clients of revision 4.
	scaleUpgraders = 200
	scalePollers   = 100
	scaleWS3       = 300
	// scaleSources is how many loopback source addresses the clients
	// dial from, so that ephemeral ports never run out.
	scaleSources = 8
	// scaleStalled clients connect for the slow-consumer phase and never
	// read: WebSocket clients, and the last one a polling client. The server's send queue
	// bound, scaleMaxQueue packets, is small so that they are cut off
	// after a few lines. It is safe for everyone else: the test says one
	// line at a time and waits for every reader and the ack before the
	// next, so a reader has at most its line and its ack queued, the
	// upgrading clients the scaleDuring lines said while they pause, and
	// the senders of the burst before shutdown the scaleBurst lines and
	// their ack. The stalled WebSocket clients ping every scalePingEvery
	// (see the slow-consumer phase).
	scaleStalled   = 3
	scaleMaxQueue  = 6
	scaleDuring    = 2
	scaleBurst     = 3
	scalePingEvery = 50 * time.Millisecond
	// scalePad bytes of padding make the lines of the slow-consumer phase
	// fill a stalled client's socket buffers in a few lines.
	scalePad = 8 << 10
	// scaleMaxLines bounds the lines said in the whole test.
	scaleMaxLines = 96
	// scaleWait bounds each wait for an event.
	scaleWait = 2 * time.Minute
	// scaleShutdownTimeout is the server's -shutdown-timeout.
	scaleShutdownTimeout = 10 * time.Second
)

// Client kinds.
const (
	kindWS4   = "websocket EIO4"
	kindWS3   = "websocket EIO3"
	kindPoll4 = "polling EIO4"
	kindPoll3 = "polling EIO3"
	kindUp4   = "upgrading EIO4"
	kindUp3   = "upgrading EIO3"
)

// scaleMember is one chatting client and what it has received.
type scaleMember struct {
	name     string
	kind     string
	protocol int
	c        *testutil.ChatClient

	mu  sync.Mutex
	got [scaleMaxLines]uint8 // times each line arrived
	bad []string             // what should not have happened
}

func (m *scaleMember) badLocked(format string, args ...any) {
	if len(m.bad) < 5 {
		m.bad = append(m.bad, fmt.Sprintf(format, args...))
	}
}

func (m *scaleMember) upgrading() bool { return m.kind == kindUp4 || m.kind == kindUp3 }

// scaleLine tracks one line said.
type scaleLine struct {
	want     atomic.Int64 // deliveries to wait for
	count    atomic.Int64 // deliveries so far
	reached  chan struct{}
	clientID atomic.Int64 // as the first reader saw it; -1 before
	acked    chan int64   // the clientID the sender's ack carried
	ackID    int64        // what acked brought, once awaitAck has it
	gotAck   bool
}

// scaleChat says numbered lines and counts, for every member, how many
// times each arrived.
type scaleChat struct {
	t       *testing.T
	members []*scaleMember
	lines   [scaleMaxLines]scaleLine
	said    int // lines said so far
}

func newScaleChat(t *testing.T) *scaleChat {
	ch := &scaleChat{t: t}
	for i := range ch.lines {
		ch.lines[i].reached = make(chan struct{})
		ch.lines[i].clientID.Store(-1)
		ch.lines[i].acked = make(chan int64, 1)
	}
	return ch
}

// onLine is member m's OnLine: lines are "L<number>", with padding after a
// space for some.
func (ch *scaleChat) onLine(m *scaleMember) func(testutil.ChatLine) {
	return func(l testutil.ChatLine) {
		num, _, _ := strings.Cut(l.Message, " ")
		seq, err := strconv.Atoi(strings.TrimPrefix(num, "L"))
		m.mu.Lock()
		if err != nil || !strings.HasPrefix(num, "L") || seq < 0 || seq >= scaleMaxLines {
			m.badLocked("unexpected line %.40q", l.Message)
			m.mu.Unlock()
			return
		}
		if m.got[seq] < 255 {
			m.got[seq]++
		}
		if m.got[seq] == 2 {
			m.badLocked("line %d arrived twice", seq)
		}
		ln := &ch.lines[seq]
		if !ln.clientID.CompareAndSwap(-1, l.ClientID) && ln.clientID.Load() != l.ClientID {
			m.badLocked("line %d from clientID %d, others saw %d", seq, l.ClientID, ln.clientID.Load())
		}
		m.mu.Unlock()
		if ln.count.Add(1) == ln.want.Load() {
			close(ln.reached)
		}
	}
}

// say has from emit the next line, padded with pad when not empty, and
// returns its number. The line is complete once want members have it.
func (ch *scaleChat) say(from *scaleMember, want int, pad string) int {
	ch.t.Helper()
	if ch.said == scaleMaxLines {
		ch.t.Fatalf("more than %d lines said", scaleMaxLines)
	}
	seq := ch.said
	ch.said++
	ln := &ch.lines[seq]
	ln.want.Store(int64(want))
	msg := "L" + strconv.Itoa(seq)
	if pad != "" {
		msg += " " + pad
	}
	if err := from.c.SendAck(msg, func(id int64) { ln.acked <- id }); err != nil {
		ch.t.Fatalf("%s: saying line %d: %v", from.name, seq, err)
	}
	return seq
}

// awaitAck waits for the sender's ack of line seq and returns the
// clientID it carries.
func (ch *scaleChat) awaitAck(seq int) int64 {
	ch.t.Helper()
	ln := &ch.lines[seq]
	if !ln.gotAck {
		select {
		case ln.ackID = <-ln.acked:
			ln.gotAck = true
		case <-time.After(scaleWait):
			ch.t.Fatalf("no ack for line %d", seq)
		}
	}
	return ln.ackID
}

// awaitLine waits until line seq is complete and its ack has come, and
// checks that the ack names the clientID every reader saw.
func (ch *scaleChat) awaitLine(seq int) int64 {
	ch.t.Helper()
	ln := &ch.lines[seq]
	select {
	case <-ln.reached:
	case <-time.After(scaleWait):
		var missing []string
		for _, m := range ch.members {
			m.mu.Lock()
			if m.got[seq] == 0 && len(missing) < 10 {
				missing = append(missing, fmt.Sprintf("%s on %s (ended: %v)", m.name, m.c.Transport(), m.c.Err()))
			}
			m.mu.Unlock()
		}
		ch.t.Fatalf("line %d reached %d of %d readers; some without it:\n%s",
			seq, ln.count.Load(), ln.want.Load(), strings.Join(missing, "\n"))
	}
	id := ch.awaitAck(seq)
	if seen := ln.clientID.Load(); seen != id {
		ch.t.Errorf("line %d: readers saw clientID %d, the ack says %d", seq, seen, id)
	}
	return id
}

// sayEach has each of from say a line in turn, each waiting until want
// members have it, and returns the senders' clientIDs.
func (ch *scaleChat) sayEach(from []*scaleMember, want int, pad string) []int64 {
	ch.t.Helper()
	ids := make([]int64, len(from))
	for i, s := range from {
		ids[i] = ch.awaitLine(ch.say(s, want, pad))
	}
	return ids
}

// verify checks that every member has had every line said so far exactly
// once, and nothing else.
func (ch *scaleChat) verify(stage string) {
	ch.t.Helper()
	var problems []string
	failed := 0
	for _, m := range ch.members {
		m.mu.Lock()
		var wrong []string
		for seq := range ch.said {
			if m.got[seq] != 1 {
				wrong = append(wrong, fmt.Sprintf("line %d %d times", seq, m.got[seq]))
			}
		}
		wrong = append(wrong, m.bad...)
		m.mu.Unlock()
		if len(wrong) > 0 {
			failed++
			if len(problems) < 20 {
				problems = append(problems, fmt.Sprintf("%s: %s", m.name, strings.Join(wrong[:min(5, len(wrong))], "; ")))
			}
		}
	}
	if failed > 0 {
		ch.t.Fatalf("%s: %d of %d clients did not get each of the %d lines exactly once:\n%s",
			stage, failed, len(ch.members), ch.said, strings.Join(problems, "\n"))
	}
}

// pick returns the i-th member of a kind.
func (ch *scaleChat) pick(kind string, i int) *scaleMember {
	ch.t.Helper()
	for _, m := range ch.members {
		if m.kind == kind {
			if i == 0 {
				return m
			}
			i--
		}
	}
	ch.t.Fatalf("no member %d of kind %s", i, kind)
	return nil
}

// scaleClientCount returns how many clients fit in this process's
// open-file limit, raising its soft limit towards the hard one when that
// makes room, and fails the test when fewer than scaleMinClients fit.
func scaleClientCount(t *testing.T) int {
	t.Helper()
	// Beyond one descriptor per client: a second for each polling
	// client's POSTs, a third for an upgrading client's probe, and the
	// test binary's own.
	need := func(clients int) uint64 {
		return uint64(clients + scalePollers + 2*scaleUpgraders + scaleStalled + 256)
	}
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		t.Fatalf("reading the open-file limit: %v", err)
	}
	if want := need(scaleClients); r.Cur < want && r.Cur < r.Max {
		r.Cur = min(want, r.Max)
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			t.Fatalf("raising the open-file limit to %d: %v", r.Cur, err)
		}
	}
	n := scaleClients
	if r.Cur < need(n) {
		n = int(r.Cur) - int(need(0))
	}
	if n < scaleMinClients {
		t.Fatalf("the open-file limit (soft %d, hard %d) leaves room for %d clients; this test needs %d descriptors for %d: raise the limit (ulimit -n)",
			r.Cur, r.Max, max(n, 0), need(scaleMinClients), scaleMinClients)
	}
	if n < scaleClients {
		t.Logf("open-file limit %d: %d clients instead of %d", r.Cur, n, scaleClients)
	}
	return n
}

// sumSeries adds up the series of metric name whose labels contain label,
// e.g. `transport="polling"`.
func sumSeries(m testutil.Metrics, name, label string) float64 {
	var total float64
	for series, v := range m {
		if strings.HasPrefix(series, name+"{") && strings.Contains(series, label) {
			total += v
		}
	}
	return total
}

// TestManyConnections runs one node with a few thousand connections of
// every kind (WebSocket, polling, polling upgraded to WebSocket; protocol
// revisions 3 and 4) through a chat, the upgrade, slow consumers and a
// graceful shutdown, and checks that every line reaches every client that
// reads exactly once.
func TestManyConnections(t *testing.T) {
	n := scaleClientCount(t)
	srv := testutil.Start(t, "chatserver",
		"-max-queue", strconv.Itoa(scaleMaxQueue),
		"-shutdown-timeout", scaleShutdownTimeout.String(),
		"-handshake-rate", "0",
		// Heartbeats run on timers; they stay out of the way so that only
		// the send queue bound can cut a client off.
		"-ping-interval", "5m", "-ping-timeout", "1m")
	m := regexp.MustCompile(`msg="open-file limit" soft=\d+ hard=\d+ max_connections=(\d+)`).FindStringSubmatch(srv.Logs())
	if m == nil {
		t.Fatalf("no open-file limit line in the server's log:\n%s", srv.Logs())
	}
	if maxConns, _ := strconv.Atoi(m[1]); maxConns < n+scaleStalled {
		t.Fatalf("the server can hold %d connections within its open-file limit, the test needs %d: raise the limit (ulimit -n)", maxConns, n+scaleStalled)
	}
	base := srv.URL()
	ch := newScaleChat(t)
	start := time.Now()
	phase := start
	logPhase := func(name string) {
		t.Logf("%s: %v", name, time.Since(phase).Round(time.Millisecond))
		phase = time.Now()
	}

	// Everyone connects, from several source addresses.
	for i := range n {
		mb := &scaleMember{protocol: 4}
		switch {
		case i < scaleUpgraders:
			mb.kind = kindUp4
		case i < scaleUpgraders+scalePollers:
			mb.kind = kindPoll4
		case i < scaleUpgraders+scalePollers+scaleWS3:
			mb.kind, mb.protocol = kindWS3, 3
		default:
			mb.kind = kindWS4
		}
		if i < scaleUpgraders+scalePollers && i%2 == 1 {
			mb.kind, mb.protocol = strings.Replace(mb.kind, "4", "3", 1), 3
		}
		mb.name = fmt.Sprintf("client %d (%s)", i, mb.kind)
		ch.members = append(ch.members, mb)
	}
	dial := testutil.LoopbackDialer(scaleSources)
	clients := dialChatClients(t, base, n, func(i int) testutil.ChatOptions {
		mb := ch.members[i]
		transport := "websocket"
		if strings.HasPrefix(mb.kind, "polling") || mb.upgrading() {
			transport = "polling"
		}
		return testutil.ChatOptions{Protocol: mb.protocol, Transport: transport, NetDial: dial, OnLine: ch.onLine(mb)}
	})
	for i, c := range clients {
		ch.members[i].c = c
	}
	metrics := fetchMetrics(t, base)
	if got := metrics.Sum("siogo_connected_clients"); got != float64(n) {
		t.Fatalf("the server counts %v connected clients, want %d", got, n)
	}
	if got := sumSeries(metrics, "siogo_connected_clients", `transport="polling"`); got != scaleUpgraders+scalePollers {
		t.Fatalf("the server counts %v polling clients, want %d", got, scaleUpgraders+scalePollers)
	}
	logPhase(fmt.Sprintf("%d clients connected", n))

	// Chat: clients of each kind say a line; everyone gets each once,
	// with the sender's clientID, and the senders' clientIDs differ.
	senders := []*scaleMember{
		ch.pick(kindWS4, 0), ch.pick(kindWS4, 1), ch.pick(kindWS3, 0), ch.pick(kindPoll4, 0),
		ch.pick(kindPoll3, 0), ch.pick(kindUp4, 0), ch.pick(kindUp3, 0), ch.pick(kindWS4, 2),
	}
	ids := map[int64]string{}
	for i, id := range ch.sayEach(senders, n, "") {
		s := senders[i]
		if other, dup := ids[id]; dup {
			t.Errorf("%s and %s both have clientID %d", s.name, other, id)
		}
		if id < 0 || id >= int64(n) {
			t.Errorf("%s has clientID %d, want one of 0..%d", s.name, id, n-1)
		}
		ids[id] = s.name
	}
	ch.verify("chat")
	logPhase("chat")

	// The upgrade: every upgrading client probes a WebSocket and pauses
	// polling; lines said then wait on the server for their WebSocket.
	// Then they upgrade, and lines said after reach them over it.
	var upgraders []*scaleMember
	for _, mb := range ch.members {
		if mb.upgrading() {
			upgraders = append(upgraders, mb)
		}
	}
	paused := make(chan struct{}, len(upgraders))
	release := make(chan struct{})
	var releaseOnce sync.Once
	releaseAll := func() { releaseOnce.Do(func() { close(release) }) }
	defer releaseAll()
	upgraded := make(chan error, len(upgraders))
	for _, u := range upgraders {
		go func() {
			ctx, cancel := context.WithTimeout(context.Background(), scaleWait)
			defer cancel()
			err := u.c.Upgrade(ctx, func() {
				paused <- struct{}{}
				<-release
			})
			if err != nil {
				err = fmt.Errorf("%s: %w", u.name, err)
			}
			upgraded <- err
		}()
	}
	for range upgraders {
		select {
		case <-paused:
		case err := <-upgraded:
			if err == nil {
				err = errors.New("upgraded without pausing")
			}
			t.Fatalf("upgrade: %v", err)
		case <-time.After(scaleWait):
			t.Fatalf("upgrading clients did not all pause polling")
		}
	}
	// The server acknowledges a line once it has queued it for every
	// client, so the pause lasts a round trip per line, well within the
	// server's upgrade timeout; the lines reach the others meanwhile.
	var during []int
	for _, s := range []*scaleMember{ch.pick(kindWS4, 3), ch.pick(kindPoll4, 1)}[:scaleDuring] {
		seq := ch.say(s, n, "")
		ch.awaitAck(seq)
		during = append(during, seq)
	}
	releaseAll()
	for range upgraders {
		select {
		case err := <-upgraded:
			if err != nil {
				t.Fatalf("upgrade: %v", err)
			}
		case <-time.After(scaleWait):
			t.Fatal("upgrading clients did not all finish")
		}
	}
	for _, seq := range during {
		ch.awaitLine(seq)
	}
	ch.sayEach([]*scaleMember{ch.pick(kindUp4, 1), ch.pick(kindUp3, 1)}, n, "")
	ch.verify("upgrade")
	for _, u := range upgraders {
		if got := u.c.Transport(); got != "websocket" {
			t.Errorf("%s: on %s after its upgrade", u.name, got)
		}
	}
	metrics = fetchMetrics(t, base)
	if got := metrics.Sum("siogo_upgrades_total"); got != float64(len(upgraders)) {
		t.Errorf("the server counts %v upgrades, want %d", got, len(upgraders))
	}
	if got := sumSeries(metrics, "siogo_connected_clients", `transport="polling"`); got != scalePollers {
		t.Errorf("the server counts %v polling clients after the upgrades, want %d", got, scalePollers)
	}
	logPhase(fmt.Sprintf("%d upgrades", len(upgraders)))

	// Slow consumers: WebSocket clients of revision 3 that never read,
	// with small socket buffers, and a polling client that stops polling,
	// join; padded lines flow until the server has cut them all off for a
	// full send queue, and a few more after. Everyone else gets them all.
	//
	// The lines fill the WebSocket clients' socket buffers until the
	// server's writer blocks; from then on their queue grows. With lines
	// alone it would grow one packet per line, and on a loaded machine
	// under the race detector a few lines can take longer than the
	// server's 10 s write timeout, which would end the session first. So
	// these clients also ping, as revision 3 clients do, every
	// scalePingEvery: each ping queues a pong for that client alone,
	// so its queue overflows soon after the writer blocks, whatever the
	// pace of the lines. A client that reads never has more than a pong
	// or two queued.
	stalledWS := dialChatClients(t, base, scaleStalled-1, func(int) testutil.ChatOptions {
		return testutil.ChatOptions{Protocol: 3, NoRead: true, Control: shrinkSocketBuffers, LocalAddr: net.IPv4(127, 0, 0, 2)}
	})
	stalledPoll := dialChatClients(t, base, 1, func(int) testutil.ChatOptions {
		return testutil.ChatOptions{Transport: "polling", NoRead: true, LocalAddr: net.IPv4(127, 0, 0, 2)}
	})[0]
	if got := fetchMetrics(t, base).Sum("siogo_connected_clients"); got != float64(n+scaleStalled) {
		t.Fatalf("the server counts %v connected clients with the stalled ones, want %d", got, n+scaleStalled)
	}
	before := fetchMetrics(t, base)
	pingCtx, stopPings := context.WithCancel(context.Background())
	defer stopPings()
	for _, c := range stalledWS {
		go func() {
			tick := time.NewTicker(scalePingEvery)
			defer tick.Stop()
			for {
				select {
				case <-pingCtx.Done():
					return
				case <-tick.C:
				}
				if c.SendPacket([]byte("2")) != nil {
					return
				}
			}
		}()
	}
	pad := strings.Repeat("x", scalePad)
	slowFrom := []*scaleMember{ch.pick(kindWS4, 4), ch.pick(kindUp4, 2), ch.pick(kindPoll3, 1), ch.pick(kindWS3, 2)}
	slowStart := ch.said
	for {
		metrics := fetchMetrics(t, base)
		if metrics.Sum("siogo_connected_clients") <= float64(n) {
			break // all cut off; what for is checked below
		}
		if ch.said == scaleMaxLines-10 {
			t.Fatalf("after %d padded lines the server still holds stalled clients: %v send queue drops, %v connected, sessions closed: %v",
				ch.said-slowStart, metrics.Sum("siogo_send_queue_drops_total")-before.Sum("siogo_send_queue_drops_total"),
				metrics.Sum("siogo_connected_clients"), closedSeries(metrics))
		}
		ch.sayEach(slowFrom[ch.said%len(slowFrom):][:1], n, pad)
	}
	stopPings()
	slowLines := ch.said - slowStart
	ch.sayEach(slowFrom[:2], n, "")
	ch.verify("slow consumers")
	after := fetchMetrics(t, base)
	// A client's queue may overflow again before its session has closed,
	// so drops count at least one per stalled client.
	if got := after.Sum("siogo_send_queue_drops_total") - before.Sum("siogo_send_queue_drops_total"); got < scaleStalled {
		t.Errorf("siogo_send_queue_drops_total grew by %v, want at least %d; sessions closed: %v", got, scaleStalled, closedSeries(after))
	}
	full := `siogo_sessions_closed_total{reason="send queue full"}`
	if got := after.Sum(full) - before.Sum(full); got != scaleStalled {
		t.Errorf("%s grew by %v, want %d; sessions closed: %v", full, got, scaleStalled, closedSeries(after))
	}
	if got := after.Sum("siogo_connected_clients"); got != float64(n) {
		t.Errorf("the server counts %v connected clients after the cut, want %d", got, n)
	}
	// The stalled WebSocket clients, reading at last, find their sessions
	// ended partway; the polling client's session is gone.
	for i, c := range stalledWS {
		ctx, cancel := context.WithTimeout(context.Background(), scaleWait)
		lines, err := c.Drain(ctx)
		if ctx.Err() != nil {
			t.Errorf("stalled client %d: session still open after reading %d lines", i, lines)
		} else if lines >= slowLines {
			t.Errorf("stalled client %d read all %d lines (%v); it was never cut off", i, lines, err)
		}
		cancel()
	}
	resp, err := http.Get(testutil.EIOURL(base+"/socket.io/", 4, "polling", stalledPoll.SID()))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a poll for the stalled polling session: %s, want 400 for an unknown session", resp.Status)
	}
	logPhase(fmt.Sprintf("slow consumers cut off after %d padded lines", slowLines))

	// Shutdown: lines accepted (acknowledged) just before SIGTERM reach
	// everyone before their session ends; every session ends, a polling
	// client's with a close packet, a WebSocket client's with a close
	// frame with 1000; and the server
	// exits with status 0, which it does only when it finished within its
	// shutdown timeout. The server waits for every WebSocket's close
	// frame to be written before it exits.
	burst := []*scaleMember{ch.pick(kindPoll3, 2), ch.pick(kindUp4, 3), ch.pick(kindWS3, 3)}[:scaleBurst]
	var burstLines []int
	for _, s := range burst {
		burstLines = append(burstLines, ch.say(s, n, ""))
	}
	burstIDs := map[int]int64{}
	for _, seq := range burstLines {
		burstIDs[seq] = ch.awaitAck(seq)
	}
	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Done():
	case <-time.After(scaleShutdownTimeout + scaleWait):
		t.Fatalf("the server had not exited %v after SIGTERM", scaleShutdownTimeout+scaleWait)
	}
	if code := srv.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the server exited with status %d\n%s", code, srv.Logs())
	}
	deadline := time.After(scaleWait)
	var wrongEnds []string
	for _, mb := range ch.members {
		select {
		case <-mb.c.Done():
		case <-deadline:
			t.Fatalf("%s: still connected after the server exited", mb.name)
		}
		err := mb.c.Err()
		switch {
		case !errors.Is(err, testutil.ErrChatClosedByServer):
			wrongEnds = append(wrongEnds, fmt.Sprintf("%s: session ended with %v, want a close from the server", mb.name, err))
		case mb.c.Transport() == "websocket" && mb.c.CloseCode != ws.StatusNormalClosure:
			wrongEnds = append(wrongEnds, fmt.Sprintf("%s: close frame with code %d, want 1000", mb.name, mb.c.CloseCode))
		}
	}
	if len(wrongEnds) > 0 {
		t.Errorf("%d clients were not told to go:\n%s", len(wrongEnds), strings.Join(wrongEnds[:min(20, len(wrongEnds))], "\n"))
	}
	for _, seq := range burstLines {
		if seen := ch.lines[seq].clientID.Load(); seen != burstIDs[seq] {
			t.Errorf("line %d, acknowledged before SIGTERM with clientID %d: readers saw %d", seq, burstIDs[seq], seen)
		}
	}
	ch.verify("shutdown")
	logPhase("shutdown")
	t.Logf("%d clients, %d lines, %v in all", n, ch.said, time.Since(start).Round(time.Millisecond))
}

// closedSeries lists the server's closed-session counts by reason.
func closedSeries(m testutil.Metrics) string {
	var s []string
	for series, v := range m {
		if strings.HasPrefix(series, "siogo_sessions_closed_total{") {
			s = append(s, fmt.Sprintf("%s %v", strings.TrimPrefix(series, "siogo_sessions_closed_total"), v))
		}
	}
	return strings.Join(s, ", ")
}
