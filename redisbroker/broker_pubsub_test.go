package redisbroker

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/gomodule/redigo/redis"

	"siogo/internal/testutil"
	"siogo/socketio"
)

// These tests run several nodes in one process, each a Socket.IO server with
// its own Client and PubSub broker, on a real redis-server. Clients speak Engine.IO 4 over
// WebSocket through wsClient below; the cross-process tests with real
// socket.io clients and Node.js servers are in /integration.

const waitTimeout = 10 * time.Second

// node is one server of the cluster under test.
type node struct {
	client  *Client
	broker  *PubSub
	io      *socketio.Server
	url     string
	sockets chan *socketio.Socket // each socket as it connects
}

func (n *node) nsp() *socketio.Namespace { return n.io.Of("/") }

func quietLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func startNode(t *testing.T, redisURL string) *node {
	t.Helper()
	log := quietLogger(t)
	c, err := NewClient(redisURL, log)
	if err != nil {
		t.Fatal(err)
	}
	b := NewPubSub(c, PubSubConfig{Backoff: Backoff{MaxBackoff: 500 * time.Millisecond}})
	n := &node{client: c, broker: b, sockets: make(chan *socketio.Socket, 16)}
	n.io = socketio.NewServer(socketio.Options{Broker: b, Logger: log})
	n.io.Of("/").OnConnect(func(s *socketio.Socket) { n.sockets <- s })
	hs := httptest.NewServer(n.io)
	n.url = hs.URL
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		n.io.Close(ctx)
		hs.Close()
		c.Close()
	})
	return n
}

func waitSubscribed(t *testing.T, nodes ...*node) {
	t.Helper()
	for _, n := range nodes {
		testutil.Eventually(t, waitTimeout, n.broker.Subscribed, "node %s to subscribe", n.broker.UID())
	}
}

// wsClient is a minimal Engine.IO 4 / Socket.IO 5 client over WebSocket.
type wsClient struct {
	t    *testing.T
	conn net.Conn
	sid  string
	wmu  sync.Mutex
	msgs chan wsMessage
}

type wsMessage struct {
	text   string // a Socket.IO packet, without the Engine.IO "4"
	binary []byte
}

// connect opens a client on n and returns it with its server-side socket.
func (n *node) connect(t *testing.T) (*wsClient, *socketio.Socket) {
	t.Helper()
	c := dialWS(t, n.url, "/")
	select {
	case s := <-n.sockets:
		if string(s.ID()) != c.sid {
			t.Fatalf("socket %s connected, want %s", s.ID(), c.sid)
		}
		return c, s
	case <-time.After(waitTimeout):
		t.Fatal("no socket connected on the server")
		return nil, nil
	}
}

// dialWS connects a client to a namespace of the server at base.
func dialWS(t *testing.T, base, nsp string) *wsClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	u := "ws" + strings.TrimPrefix(base, "http") + "/socket.io/?EIO=4&transport=websocket&token=abc"
	raw, br, _, err := ws.Dial(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	var conn net.Conn = raw
	if br != nil {
		// Frames that arrived with the handshake response are buffered.
		conn = bufferedConn{raw, br}
	}
	c := &wsClient{t: t, conn: conn, msgs: make(chan wsMessage, 1024)}
	t.Cleanup(func() { conn.Close() })
	conn.SetDeadline(time.Now().Add(waitTimeout))
	open, err := wsutil.ReadServerText(conn)
	if err != nil || len(open) == 0 || open[0] != '0' {
		t.Fatalf("handshake: %q, %v", open, err)
	}
	prefix := "40"
	if nsp != "/" {
		prefix += nsp + ","
	}
	c.write(prefix)
	reply, err := wsutil.ReadServerText(conn)
	if err != nil || !strings.HasPrefix(string(reply), prefix+`{"sid":"`) {
		t.Fatalf("connect: %q, %v", reply, err)
	}
	var sid struct{ SID string }
	json.Unmarshal(reply[len(prefix):], &sid)
	c.sid = sid.SID
	conn.SetDeadline(time.Time{})
	go c.readLoop()
	return c
}

type bufferedConn struct {
	net.Conn
	r io.Reader
}

func (c bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

func (c *wsClient) write(text string) {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if err := wsutil.WriteClientText(c.conn, []byte(text)); err != nil {
		c.t.Errorf("write %q: %v", text, err)
	}
}

func (c *wsClient) readLoop() {
	defer close(c.msgs)
	for {
		data, op, err := wsutil.ReadServerData(c.conn)
		if err != nil {
			return
		}
		if op == ws.OpBinary {
			c.msgs <- wsMessage{binary: data}
			continue
		}
		switch {
		case string(data) == "2":
			c.write("3")
		case len(data) > 0 && data[0] == '4':
			c.msgs <- wsMessage{text: string(data[1:])}
		}
	}
}

// next returns the next Socket.IO message.
func (c *wsClient) next() wsMessage {
	c.t.Helper()
	select {
	case m, ok := <-c.msgs:
		if !ok {
			c.t.Fatal("connection closed")
		}
		return m
	case <-time.After(waitTimeout):
		c.t.Fatal("timed out waiting for a message")
	}
	return wsMessage{}
}

func (c *wsClient) expect(text string) {
	c.t.Helper()
	if m := c.next(); m.text != text {
		c.t.Fatalf("got %q (binary %x), want %q", m.text, m.binary, text)
	}
}

func (c *wsClient) expectBinary(b []byte) {
	c.t.Helper()
	if m := c.next(); string(m.binary) != string(b) {
		c.t.Fatalf("got %q / %x, want binary %x", m.text, m.binary, b)
	}
}

func startCluster(t *testing.T, count int) (*testutil.Redis, []*node) {
	t.Helper()
	r := testutil.StartRedis(t)
	nodes := make([]*node, count)
	for i := range nodes {
		nodes[i] = startNode(t, r.URL())
	}
	waitSubscribed(t, nodes...)
	return r, nodes
}

func TestBroadcastReachesOtherNodesOnce(t *testing.T) {
	_, nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ca, _ := a.connect(t)
	cb, _ := b.connect(t)

	if err := a.io.Of("/").Emit("hello", "x", []byte{1, 2}, map[string]int{"n": 1}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*wsClient{ca, cb} {
		c.expect(`51-["hello","x",{"_placeholder":true,"num":0},{"n":1}]`)
		c.expectBinary([]byte{1, 2})
	}
	// The other way round; then a fence. A broadcast coming back to its
	// own node through Redis would show up before the fence.
	b.io.Of("/").Emit("from-b", 1)
	b.io.Of("/").Emit("fence")
	for _, c := range []*wsClient{ca, cb} {
		c.expect(`2["from-b",1]`)
		c.expect(`2["fence"]`)
	}
	a.io.Of("/").Emit("fence-a")
	ca.expect(`2["fence-a"]`)
	cb.expect(`2["fence-a"]`)

	// Local broadcasts stay on their node.
	a.io.Of("/").Local().Emit("local-only")
	b.io.Of("/").Emit("after-local")
	ca.expect(`2["local-only"]`)
	ca.expect(`2["after-local"]`)
	cb.expect(`2["after-local"]`)
}

func TestRoomBroadcastUsesRoomChannel(t *testing.T) {
	r, nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ca, _ := a.connect(t)
	cb, sb := b.connect(t)
	cb2, _ := b.connect(t)
	sb.Join("r1")

	// Watch the bus with a plain subscriber of our own.
	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	psc := redis.PubSubConn{Conn: conn}
	psc.PSubscribe("socket.io#/#*")
	if _, ok := psc.Receive().(redis.Subscription); !ok {
		t.Fatal("no subscription confirmation")
	}

	a.io.Of("/").To("r1").Emit("room", "only")
	cb.expect(`2["room","only"]`)
	switch m := psc.ReceiveWithTimeout(waitTimeout).(type) {
	case redis.Message:
		if m.Channel != "socket.io#/#r1#" {
			t.Errorf("published on %q, want socket.io#/#r1#", m.Channel)
		}
	default:
		t.Fatalf("bus: %v", m)
	}
	// Two rooms go to the namespace channel; except applies remotely.
	a.io.Of("/").To("r1", "r2").Except("r1").Emit("none")
	a.io.Of("/").To("r1", Room(sb.ID()), socketio.Room(sb.ID())).Emit("dedup")
	a.io.Of("/").Emit("fence")
	cb.expect(`2["dedup"]`)
	cb.expect(`2["fence"]`)
	cb2.expect(`2["fence"]`)
	ca.expect(`2["fence"]`)
	if m, ok := psc.ReceiveWithTimeout(waitTimeout).(redis.Message); !ok || m.Channel != "socket.io#/#" {
		t.Errorf("two-room broadcast published on %v, want socket.io#/#", m)
	}
}

// Room is shorthand in these tests.
type Room = socketio.Room

func TestRequestsBetweenNodes(t *testing.T) {
	// The third node has no sockets and no serverSideEmit handler.
	_, nodes := startCluster(t, 3)
	a, b := nodes[0], nodes[1]
	_, sa := a.connect(t)
	cb, sb := b.connect(t)
	sb.Join("blue")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()

	n, err := a.nsp().ServerCount(ctx)
	if err != nil || n != 3 {
		t.Fatalf("ServerCount = %d, %v; want 3", n, err)
	}

	rooms, err := a.nsp().AllRooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[Room]bool{"blue": true, Room(sa.ID()): true, Room(sb.ID()): true}
	if len(rooms) != len(want) {
		t.Errorf("AllRooms = %v, want %v", rooms, want)
	}
	for _, r := range rooms {
		if !want[r] {
			t.Errorf("AllRooms has unexpected %q", r)
		}
	}

	sockets, err := a.nsp().To("blue").FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sockets) != 1 || sockets[0].ID != sb.ID() {
		t.Fatalf("FetchSockets(blue) = %+v", sockets)
	}
	var hs struct {
		Headers map[string]any    `json:"headers"`
		Address string            `json:"address"`
		URL     string            `json:"url"`
		Query   map[string]string `json:"query"`
		Auth    map[string]any    `json:"auth"`
		Issued  int64             `json:"issued"`
		Time    string            `json:"time"`
		XDomain *bool             `json:"xdomain"`
		Secure  *bool             `json:"secure"`
	}
	if err := json.Unmarshal(sockets[0].Handshake, &hs); err != nil {
		t.Fatal(err)
	}
	if hs.Address != "127.0.0.1" || hs.Query["EIO"] != "4" || hs.Query["token"] != "abc" || !strings.HasPrefix(hs.URL, "/socket.io/?EIO=4") ||
		hs.Headers["upgrade"] != "websocket" || hs.Auth == nil || hs.Issued == 0 || !strings.Contains(hs.Time, "GMT") || hs.XDomain == nil || hs.Secure == nil {
		t.Errorf("handshake not shaped like Node's: %s", sockets[0].Handshake)
	}
	if string(sockets[0].Data) != "{}" || len(sockets[0].Rooms) != 2 {
		t.Errorf("data %s, rooms %v", sockets[0].Data, sockets[0].Rooms)
	}
	all, err := a.nsp().FetchSockets(ctx)
	if err != nil || len(all) != 2 {
		t.Errorf("FetchSockets(all) = %d sockets, %v; want 2", len(all), err)
	}

	// serverSideEmit: b answers through its handler, c has none and
	// answers without a value.
	got := make(chan *socketio.ServerSideEvent, 1)
	b.nsp().OnServerSideEmit("ping", func(e *socketio.ServerSideEvent) {
		got <- e
		e.Ack(map[string]any{"pong": e.Args[0]})
	})
	answers, err := a.nsp().ServerSideEmitWithAck(ctx, "ping", 42)
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 2 {
		t.Fatalf("answers %s, want 2", answers)
	}
	joined := string(answers[0]) + " " + string(answers[1])
	if !strings.Contains(joined, `{"pong":42}`) || !strings.Contains(joined, "null") {
		t.Errorf("answers %s", joined)
	}
	if e := <-got; e.Name != "ping" || !e.WantsAck() {
		t.Errorf("event %+v", e)
	}
	a.nsp().ServerSideEmit("ping", 7)
	if e := <-got; string(e.Args[0]) != "7" || e.WantsAck() {
		t.Errorf("event without ack: %+v", e)
	}

	// Remote join, then a broadcast to the new room; remote leave; remote
	// disconnect.
	a.nsp().To("blue").SocketsJoin("vip")
	testutil.Eventually(t, waitTimeout, func() bool { return slices.Contains(sb.Rooms(), "vip") }, "b's socket to join vip")
	a.io.Of("/").To("vip").Emit("vip-only")
	cb.expect(`2["vip-only"]`)
	a.nsp().SocketsLeave("vip")
	testutil.Eventually(t, waitTimeout, func() bool { return !slices.Contains(sb.Rooms(), "vip") }, "b's socket to leave vip")
	a.nsp().To("blue").DisconnectSockets(false)
	cb.expect("1")
	if !sa.Connected() {
		t.Error("a's own socket was disconnected although not in blue")
	}
}

func TestMalformedMessagesAreSkipped(t *testing.T) {
	r, nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	cb, _ := b.connect(t)

	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, m := range []struct{ channel, payload string }{
		{"socket.io#/#", "\xc1garbage"},
		{"socket.io#/#", "\x93\xa1u"},
		{"socket.io-request#/#", `{"type":5,`},
		{"socket.io-request#/#", `{"type":6,"uid":"x","data":"not a list"}`},
		{"socket.io-response#/#", "\xff"},
	} {
		if _, err := conn.Do("PUBLISH", m.channel, m.payload); err != nil {
			t.Fatal(err)
		}
	}
	a.io.Of("/").Emit("still", "alive")
	cb.expect(`2["still","alive"]`)
	if got := b.broker.Malformed(); got != 5 {
		t.Errorf("Malformed() = %d, want 5", got)
	}
}

func TestCounterIsClusterWideAndSurvivesRestart(t *testing.T) {
	r, nodes := startCluster(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	counters := []*Counter{nodes[0].client.Counter("test:ids"), nodes[1].client.Counter("test:ids")}
	first, err := counters[0].Next(ctx)
	if err != nil || first != 1 {
		t.Fatalf("first value = %d, %v; want 1", first, err)
	}
	const each = 50
	ids := make(chan int64, 2*each)
	var wg sync.WaitGroup
	for _, ctr := range counters {
		for i := 0; i < each; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				id, err := ctr.Next(ctx)
				if err != nil {
					t.Error(err)
				}
				ids <- id
			}()
		}
	}
	wg.Wait()
	close(ids)
	seen := map[int64]bool{1: true}
	for id := range ids {
		if seen[id] || id < 2 || id > 2*each+1 {
			t.Errorf("value %d duplicated or out of range", id)
		}
		seen[id] = true
	}

	// Redis comes back empty; node 0 restores the counter as soon as it
	// resubscribes, so no value is handed out twice.
	r.Restart()
	testutil.Eventually(t, waitTimeout, func() bool { return nodes[0].broker.Reconnects() == 1 && nodes[0].broker.Subscribed() }, "node 0 to resubscribe")
	next, err := counters[1].Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next <= 2*each+1 {
		t.Errorf("after the restart the next value is %d, want above %d", next, 2*each+1)
	}

	// Redis down: a clear error, no value.
	r.Kill()
	dctx, dcancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer dcancel()
	if id, err := counters[0].Next(dctx); err == nil {
		t.Errorf("got value %d with Redis down", id)
	} else if !strings.HasPrefix(err.Error(), "redis: ") {
		t.Errorf("error %q does not say Redis", err)
	}
}

func TestSubscriberReconnectsAndReadiness(t *testing.T) {
	r, nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	cb, _ := b.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := a.broker.Ready(ctx); err != nil {
		t.Fatalf("Ready: %v", err)
	}

	r.Kill()
	testutil.Eventually(t, waitTimeout, func() bool { return !a.broker.Subscribed() && !b.broker.Subscribed() }, "subscribers to notice Redis is gone")
	if err := a.broker.Ready(ctx); err == nil {
		t.Error("Ready with Redis down")
	}
	// Broadcasts meanwhile are delivered locally and dropped for Redis.
	cbLocal, _ := b.connect(t)
	b.io.Of("/").Emit("local while down")
	cb.expect(`2["local while down"]`)
	cbLocal.expect(`2["local while down"]`)

	r.StartAgain()
	waitSubscribed(t, a, b)
	if a.broker.Reconnects() != 1 || b.broker.Reconnects() != 1 {
		t.Errorf("reconnects %d and %d, want 1 each", a.broker.Reconnects(), b.broker.Reconnects())
	}
	if err := a.broker.Ready(ctx); err != nil {
		t.Errorf("Ready after restart: %v", err)
	}
	a.io.Of("/").Emit("back")
	cb.expect(`2["back"]`)
}

func TestStartsWhileRedisIsDown(t *testing.T) {
	r := testutil.StartRedis(t)
	r.Kill()
	a := startNode(t, r.URL())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	if err := a.broker.Ready(ctx); err == nil {
		t.Fatal("ready without Redis")
	}
	ca, _ := a.connect(t)
	a.io.Of("/").Emit("local")
	ca.expect(`2["local"]`)

	r.StartAgain()
	b := startNode(t, r.URL())
	waitSubscribed(t, a, b)
	if a.broker.Reconnects() != 0 {
		t.Errorf("a first connection counted as a reconnection")
	}
	b.io.Of("/").Emit("joined")
	ca.expect(`2["joined"]`)
}

func TestBadURL(t *testing.T) {
	for _, u := range []string{"", "http://127.0.0.1:6379", "redis:opaque", "::"} {
		if c, err := NewClient(u, nil); err == nil {
			c.Close()
			t.Errorf("New(%q) accepted", u)
		}
	}
}

func TestCloseSendsQueuedMessages(t *testing.T) {
	r, nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	cb, _ := b.connect(t)
	// Hold every PUBLISH for a moment, so that the messages are still
	// queued when the node closes.
	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Do("CLIENT", "PAUSE", 300, "WRITE"); err != nil {
		t.Fatal(err)
	}
	const n = 300
	for i := 0; i < n; i++ {
		a.io.Of("/").Emit("last", i)
	}
	a.broker.Close(context.Background())
	for i := 0; i < n; i++ {
		cb.expect(`2["last",` + strconv.Itoa(i) + `]`)
	}
}

// TestNamespacesStayApart checks that a namespace whose name is a glob
// pattern gets its own broadcasts and no one else's.
func TestNamespacesStayApart(t *testing.T) {
	_, nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	for _, n := range nodes {
		n.io.Of("/a*")
		n.io.Of("/ab")
	}
	waitSubscribed(t, a, b)
	star := dialWS(t, b.url, "/a*")
	ab := dialWS(t, b.url, "/ab")
	a.io.Of("/ab").Emit("for-ab")
	a.io.Of("/a*").Emit("for-star")
	ab.expect(`2/ab,["for-ab"]`)
	star.expect(`2/a*,["for-star"]`)
}
