package redisbroker

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"

	"siogo/internal/testutil"
	"siogo/socketio"
)

// These tests run several nodes in one process on the Streams broker, each
// a Socket.IO server with its own Client, on a real redis-server; clients
// are hand-driven Engine.IO 4 clients over WebSocket.

type streamsNode struct {
	client  *Client
	broker  *Streams
	io      *socketio.Server
	url     string
	sockets chan *socketio.Socket
	http    *httptest.Server
}

func startStreamsNode(t *testing.T, redisURL string) *streamsNode {
	t.Helper()
	log := quietLogger(t)
	c, err := NewClient(redisURL, log)
	if err != nil {
		t.Fatal(err)
	}
	b := NewStreams(c, StreamsConfig{Backoff: Backoff{MaxBackoff: 300 * time.Millisecond}})
	n := &streamsNode{client: c, broker: b, sockets: make(chan *socketio.Socket, 64)}
	n.io = socketio.NewServer(socketio.Options{Broker: b, Logger: log,
		Recovery: socketio.Recovery{MaxDisconnectionDuration: time.Minute, SkipMiddlewares: true}})
	n.io.Of("/").OnConnect(func(s *socketio.Socket) { n.sockets <- s })
	n.http = httptest.NewServer(n.io)
	n.url = n.http.URL + "/socket.io/"
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		n.io.Close(ctx)
		n.http.Close()
		c.Close()
	})
	return n
}

func startStreamsCluster(t *testing.T, count int) (*testutil.Redis, []*streamsNode) {
	t.Helper()
	r := testutil.StartRedis(t)
	nodes := make([]*streamsNode, count)
	for i := range nodes {
		nodes[i] = startStreamsNode(t, r.URL())
	}
	waitReady(t, nodes...)
	return r, nodes
}

func waitReady(t *testing.T, nodes ...*streamsNode) {
	t.Helper()
	for _, n := range nodes {
		testutil.Eventually(t, waitTimeout, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			return n.broker.Ready(ctx) == nil
		}, "node %s to read the stream", n.broker.UID())
	}
}

// streamsClient is a Socket.IO 5 client over WebSocket.
type streamsClient struct {
	t        *testing.T
	eio      *testutil.EIOClient
	sid, pid string
	offset   string // the last offset received
}

func (n *streamsNode) dial(t *testing.T, auth string) (*streamsClient, *socketio.Socket) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	eio, err := testutil.DialEIO(ctx, n.url, 4, "websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { eio.WS().Close() })
	if err := eio.Send(ctx, "40"+auth); err != nil {
		t.Fatal(err)
	}
	p, err := eio.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := &streamsClient{t: t, eio: eio}
	var reply struct{ SID, PID string }
	if !strings.HasPrefix(string(p.Data), "0{") || json.Unmarshal(p.Data[1:], &reply) != nil {
		t.Fatalf("CONNECT reply %q", p.Data)
	}
	c.sid, c.pid = reply.SID, reply.PID
	select {
	case s := <-n.sockets:
		return c, s
	case <-time.After(waitTimeout):
		t.Fatal("no socket connected")
		return nil, nil
	}
}

// line reads the next ["line", text, offset] event; while Redis is away a
// node's own lines come without an offset.
func (c *streamsClient) line() string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	p, err := c.eio.Next(ctx)
	if err != nil {
		c.t.Fatal(err)
	}
	var args []string
	if len(p.Data) == 0 || p.Data[0] != '2' || json.Unmarshal(p.Data[1:], &args) != nil || len(args) < 2 || len(args) > 3 || args[0] != "line" {
		c.t.Fatalf("got %q, want [\"line\", text, offset]", p.Data)
	}
	c.offset = ""
	if len(args) == 3 {
		c.offset = args[2]
	}
	return args[1]
}

func recoveryAuth(pid, offset string) string {
	b, _ := json.Marshal(map[string]string{"pid": pid, "offset": offset})
	return string(b)
}

// TestStreamsOneOrderEverywhere: broadcasts of two nodes, emitted at the
// same time, reach every client of both nodes in the same order, each once,
// and every client sees the stream's entry ids as offsets.
func TestStreamsOneOrderEverywhere(t *testing.T) {
	_, nodes := startStreamsCluster(t, 2)
	var clients []*streamsClient
	for _, n := range nodes {
		for range 2 {
			c, _ := n.dial(t, "{}")
			clients = append(clients, c)
		}
	}
	const each = 200
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range each {
				n.io.Of("/").Emit("line", fmt.Sprintf("%d-%d", i, j))
			}
		}()
	}
	wg.Wait()
	var first []string
	for ci, c := range clients {
		var got []string
		var offsets []string
		for range 2 * each {
			got = append(got, c.line())
			offsets = append(offsets, c.offset)
		}
		if ci == 0 {
			first = got
		} else if strings.Join(got, " ") != strings.Join(first, " ") {
			t.Fatalf("client %d saw another order than client 0", ci)
		}
		for k := 1; k < len(offsets); k++ {
			if !offsetLess(offsets[k-1], offsets[k]) {
				t.Fatalf("client %d: offset %s after %s", ci, offsets[k], offsets[k-1])
			}
		}
	}
	seen := map[string]bool{}
	for _, l := range first {
		if seen[l] {
			t.Fatalf("line %s twice", l)
		}
		seen[l] = true
	}
}

func offsetLess(a, b string) bool {
	am, as, _ := strings.Cut(a, "-")
	bm, bs, _ := strings.Cut(b, "-")
	ami, _ := strconv.ParseUint(am, 10, 64)
	bmi, _ := strconv.ParseUint(bm, 10, 64)
	asi, _ := strconv.ParseUint(as, 10, 64)
	bsi, _ := strconv.ParseUint(bs, 10, 64)
	return ami < bmi || ami == bmi && asi < bsi
}

func TestStreamsRequestsBetweenNodes(t *testing.T) {
	_, nodes := startStreamsCluster(t, 3)
	a, b := nodes[0], nodes[1]
	_, sa := a.dial(t, "{}")
	cb, sb := b.dial(t, "{}")
	sb.Join("blue")
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if n, err := a.io.Of("/").ServerCount(ctx); err != nil || n != 3 {
		t.Fatalf("ServerCount = %d, %v; want 3", n, err)
	}
	sockets, err := a.io.Of("/").To("blue").FetchSockets(ctx)
	if err != nil || len(sockets) != 1 || sockets[0].ID != sb.ID() {
		t.Fatalf("FetchSockets(blue) = %+v, %v", sockets, err)
	}
	all, err := a.io.Of("/").FetchSockets(ctx)
	if err != nil || len(all) != 2 {
		t.Fatalf("FetchSockets = %d sockets, %v", len(all), err)
	}
	b.io.Of("/").OnServerSideEmit("ping", func(e *socketio.ServerSideEvent) { e.Ack(map[string]any{"pong": e.Args[0]}) })
	answers, err := a.io.Of("/").ServerSideEmitWithAck(ctx, "ping", 42)
	if err != nil || len(answers) != 2 {
		t.Fatalf("answers %s, %v", answers, err)
	}
	if j := string(answers[0]) + string(answers[1]); !strings.Contains(j, `{"pong":42}`) || !strings.Contains(j, "null") {
		t.Errorf("answers %s", j)
	}
	a.io.Of("/").To("blue").SocketsJoin("vip")
	testutil.Eventually(t, waitTimeout, func() bool {
		for _, r := range sb.Rooms() {
			if r == "vip" {
				return true
			}
		}
		return false
	}, "b's socket to join vip")
	a.io.Of("/").To("vip").Emit("line", "vip only")
	if l := cb.line(); l != "vip only" {
		t.Fatalf("got %q", l)
	}
	a.io.Of("/").To("blue").DisconnectSockets(false)
	testutil.Eventually(t, waitTimeout, func() bool { return !sb.Connected() }, "b's socket to be disconnected")
	if !sa.Connected() {
		t.Error("a's socket was disconnected although not in blue")
	}
	if _, err := a.io.Of("/").AllRooms(ctx); err == nil {
		t.Error("AllRooms succeeded on a protocol that has no such request")
	}
}

// TestStreamsHandlerPublishes: what a request runs on a node may
// broadcast in turn, as a disconnect handler that says goodbye does, and
// the node's reader goes on: the goodbye reaches the other node, and so
// does what follows it.
func TestStreamsHandlerPublishes(t *testing.T) {
	_, nodes := startStreamsCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ca, _ := a.dial(t, "{}")
	_, sb := b.dial(t, "{}")
	sb.Join("leaving")
	b.io.Of("/").OnDisconnect(func(s *socketio.Socket, reason string) {
		b.io.Of("/").Emit("line", "goodbye from "+string(s.ID()))
	})
	a.io.Of("/").To("leaving").DisconnectSockets(false)
	if l := ca.line(); l != "goodbye from "+string(sb.ID()) {
		t.Fatalf("got %q, want the goodbye", l)
	}
	b.io.Of("/").Emit("line", "still here")
	if l := ca.line(); l != "still here" {
		t.Fatalf("got %q, want the next line", l)
	}
}

// TestStreamsRecoveryOnAnotherNode: a socket whose connection to one node
// was lost comes back on another with its id, rooms and data, and every
// line it missed; its session was stored as soon as it connected.
func TestStreamsRecoveryOnAnotherNode(t *testing.T) {
	r, nodes := startStreamsCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ca, sa := a.dial(t, "{}")
	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stored := func() *socketio.SavedSession {
		v, _ := redis.Bytes(conn.Do("GET", "sio:session:"+ca.pid))
		s, err := decodeSession(v)
		if err != nil {
			return &socketio.SavedSession{}
		}
		return s
	}
	// Each change is stored on its own, not only the first after connect.
	sa.Join("red")
	testutil.Eventually(t, waitTimeout, func() bool { return len(stored().Rooms) == 2 },
		"the joined room to be stored while the socket is connected")
	sa.SetData(map[string]int{"clientID": 5})
	testutil.Eventually(t, waitTimeout, func() bool { return string(stored().Data) == `{"clientID":5}` },
		"the data to be stored while the socket is connected")

	b.io.Of("/").Emit("line", "before")
	if l := ca.line(); l != "before" {
		t.Fatalf("got %q", l)
	}
	ca.eio.WS().Close()
	testutil.Eventually(t, waitTimeout, func() bool { return !sa.Connected() }, "a to see the connection go")
	for i := range 5 {
		b.io.Of("/").Emit("line", fmt.Sprint("missed ", i))
	}
	b.io.Of("/").To("red").Emit("line", "missed red")
	b.io.Of("/").To("green").Emit("line", "not for it")

	cb, sb := b.dial(t, recoveryAuth(ca.pid, ca.offset))
	if !sb.Recovered() || sb.ID() != sa.ID() || cb.sid != ca.sid {
		t.Fatalf("not recovered: %v, id %s want %s", sb.Recovered(), sb.ID(), sa.ID())
	}
	for i := range 5 {
		if l := cb.line(); l != fmt.Sprint("missed ", i) {
			t.Fatalf("got %q", l)
		}
	}
	if l := cb.line(); l != "missed red" {
		t.Fatalf("got %q", l)
	}
	a.io.Of("/").Emit("line", "after")
	if l := cb.line(); l != "after" {
		t.Fatalf("got %q", l)
	}
	if string(sb.Data().(json.RawMessage)) != `{"clientID":5}` {
		t.Errorf("data %s", sb.Data())
	}
}

// TestStreamsRedisRestart: Redis dies and comes back empty while both nodes
// emit. Each node's own clients get its lines at once; the other node's
// clients get them when Redis is back; nobody gets a line twice.
func TestStreamsRedisRestart(t *testing.T) {
	r, nodes := startStreamsCluster(t, 2)
	a, b := nodes[0], nodes[1]
	ca, _ := a.dial(t, "{}")
	cb, _ := b.dial(t, "{}")
	a.io.Of("/").Emit("line", "a0")
	b.io.Of("/").Emit("line", "b0")
	want := map[*streamsClient][]string{}
	for _, c := range []*streamsClient{ca, cb} {
		got := []string{c.line(), c.line()}
		want[c] = got
	}
	r.Kill()
	testutil.Eventually(t, waitTimeout, func() bool { return !a.broker.isReaderUp() && !b.broker.isReaderUp() }, "both readers to lose Redis")
	a.io.Of("/").Emit("line", "a1")
	b.io.Of("/").Emit("line", "b1")
	if l := ca.line(); l != "a1" {
		t.Fatalf("a's client got %q while Redis was down, want its node's line", l)
	}
	if l := cb.line(); l != "b1" {
		t.Fatalf("b's client got %q while Redis was down, want its node's line", l)
	}
	r.StartAgain()
	if l := ca.line(); l != "b1" {
		t.Fatalf("a's client got %q after the restart, want b1", l)
	}
	if l := cb.line(); l != "a1" {
		t.Fatalf("b's client got %q after the restart, want a1", l)
	}
	a.io.Of("/").Emit("line", "a2")
	for _, c := range []*streamsClient{ca, cb} {
		if l := c.line(); l != "a2" {
			t.Fatalf("got %q, want a2 (a line twice, or one lost)", l)
		}
	}
}

// TestStreamsIsBounded: the stream is trimmed near MaxLen, and stored
// sessions go from Redis once expired (with their grace).
func TestStreamsIsBounded(t *testing.T) {
	r := testutil.StartRedis(t)
	c, err := NewClient(r.URL(), quietLogger(t))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := NewStreams(c, StreamsConfig{MaxLen: 100})
	io := socketio.NewServer(socketio.Options{Broker: b, Logger: quietLogger(t)})
	defer io.Close(context.Background())
	waitReady(t, &streamsNode{broker: b})
	for i := range 2000 {
		io.Of("/").Emit("line", i)
	}
	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	testutil.Eventually(t, waitTimeout, func() bool { return b.Buffered() == 0 }, "the writer to drain")
	n, err := redis.Int(conn.Do("XLEN", "socket.io"))
	if err != nil || n > 300 {
		t.Errorf("XLEN = %d, %v; want about 100 (trimmed approximately)", n, err)
	}

	ctx := context.Background()
	expires := time.Now().Add(300 * time.Millisecond)
	var sessions []*socketio.SavedSession
	for i := range 50 {
		sessions = append(sessions, &socketio.SavedSession{PID: fmt.Sprint("p", i), SID: "s", Data: json.RawMessage(`{}`), Expires: expires})
	}
	if err := b.SaveSessions(ctx, sessions); err != nil {
		t.Fatal(err)
	}
	keys, _ := redis.Strings(conn.Do("KEYS", "sio:session:*"))
	if len(keys) != 50 {
		t.Fatalf("%d session keys, want 50", len(keys))
	}
	pttl, _ := redis.Int64(conn.Do("PTTL", "sio:session:p0"))
	if pttl <= 0 || pttl > 700 {
		t.Errorf("PTTL %d ms, want the window and as long again", pttl)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		keys, _ := redis.Strings(conn.Do("KEYS", "sio:session:*"))
		return len(keys) == 0
	}, "expired sessions to go from Redis")
}

// TestStreamsBuffersWhileRedisIsDown: what a node emits while Redis is
// away waits in a bounded buffer; a full buffer drops its oldest and counts
// them; the rest goes out, in order, when Redis is back.
func TestStreamsBuffersWhileRedisIsDown(t *testing.T) {
	r := testutil.StartRedis(t)
	log := quietLogger(t)
	c, err := NewClient(r.URL(), log)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	b := NewStreams(c, StreamsConfig{BufferSize: 10, Backoff: Backoff{MaxBackoff: 200 * time.Millisecond}})
	io := socketio.NewServer(socketio.Options{Broker: b, Logger: log})
	defer io.Close(context.Background())
	other := startStreamsNode(t, r.URL())
	waitReady(t, &streamsNode{broker: b}, other)
	co, _ := other.dial(t, "{}")

	r.Kill()
	testutil.Eventually(t, waitTimeout, func() bool { return !b.isReaderUp() }, "the reader to lose Redis")
	for i := range 15 {
		io.Of("/").Emit("line", strconv.Itoa(i))
	}
	testutil.Eventually(t, waitTimeout, func() bool { return b.Buffered() == 10 }, "ten messages to wait")
	if got := b.BufferDropped(); got != 5 {
		t.Errorf("BufferDropped() = %d, want 5", got)
	}
	r.StartAgain()
	for i := 5; i < 15; i++ {
		if l := co.line(); l != strconv.Itoa(i) {
			t.Fatalf("the other node's client got %q, want %d (the oldest five dropped)", l, i)
		}
	}
	testutil.Eventually(t, waitTimeout, func() bool { return b.Buffered() == 0 }, "the buffer to drain")
}
