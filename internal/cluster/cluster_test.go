package cluster

// These tests run real nodes in the test process: each is an Engine.IO
// server behind Node.Handler on a real HTTP listener, registered in a real
// redis-server. A hand-written Engine.IO client addresses each request to the
// node the test chooses, so every forwarding path is taken on purpose.

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"siogo/engineio"
	"siogo/internal/testutil"
	"siogo/redisbroker"

	"github.com/gomodule/redigo/redis"
)

// counts is an Observer, of the node and of its engine, that remembers
// what it was told.
type counts struct {
	mu        sync.Mutex
	forwarded map[string]int
	failed    int
	handoffs  int
	relayed   int // relayed requests that reached the engine
}

func (c *counts) Forwarded(transport string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.forwarded == nil {
		c.forwarded = map[string]int{}
	}
	c.forwarded[transport]++
}

func (c *counts) ForwardFailed() { c.mu.Lock(); c.failed++; c.mu.Unlock() }
func (c *counts) PollHandedOff() { c.mu.Lock(); c.handoffs++; c.mu.Unlock() }

func (c *counts) SessionOpened(string, int)         {}
func (c *counts) SessionUpgraded(int)               {}
func (c *counts) SessionClosed(string, int, string) {}
func (c *counts) QueueOverflow()                    {}
func (c *counts) PacketRateExceeded()               {}
func (c *counts) RequestRefused(int)                {}

func (c *counts) relayedRequests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.relayed
}

// watchRelayed counts the relayed requests that reach next.
func (c *counts) watchRelayed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get(HeaderForwardedBy) != "" {
			c.mu.Lock()
			c.relayed++
			c.mu.Unlock()
		}
		next.ServeHTTP(w, r)
	})
}
func (c *counts) get() (forwarded map[string]int, failed, handoffs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := map[string]int{}
	for k, v := range c.forwarded {
		f[k] = v
	}
	return f, c.failed, c.handoffs
}

// echo answers every message with the same message and reports the end of
// the session.
type echo struct {
	sess   *engineio.Session
	closed chan string
}

func (e *echo) OnMessage(data []byte, binary bool) {
	e.sess.Send(engineio.Message{Data: append([]byte(nil), data...), Binary: binary})
}

func (e *echo) OnClose(reason string) { e.closed <- reason }

type testNode struct {
	*Node
	obs      *counts
	engine   *engineio.Server
	http     *httptest.Server
	endpoint string

	mu       sync.Mutex
	sessions map[string]*echo
}

func (tn *testNode) session(t *testing.T, sid string) *echo {
	t.Helper()
	tn.mu.Lock()
	defer tn.mu.Unlock()
	e := tn.sessions[sid]
	if e == nil {
		t.Fatalf("node %s has no session %s", tn.ID(), sid)
	}
	return e
}

// registry returns a registry on the Redis at url.
func registry(t *testing.T, url string) *redisbroker.Registry {
	t.Helper()
	c, err := redisbroker.NewClient(url, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c.Registry()
}

// startNode runs a node with the given id registered in the Redis at url.
func startNode(t *testing.T, url, id string) *testNode {
	t.Helper()
	tn := &testNode{obs: &counts{}, sessions: map[string]*echo{}}
	n, err := New(Config{NodeID: id, Registry: registry(t, url), Observer: tn.obs})
	if err != nil {
		t.Fatal(err)
	}
	tn.Node = n
	tn.engine = engineio.NewServer(engineio.Config{NewID: n.NewSessionID, Observer: tn.obs}, func(s *engineio.Session) engineio.Handler {
		e := &echo{sess: s, closed: make(chan string, 1)}
		tn.mu.Lock()
		tn.sessions[s.ID()] = e
		tn.mu.Unlock()
		return e
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", n.Handler(tn.obs.watchRelayed(tn.engine)))
	tn.http = httptest.NewServer(mux)
	tn.endpoint = tn.http.URL + "/socket.io/"
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := n.Start(ctx, tn.http.Listener.Addr().String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		n.Close(context.Background())
		// Close the sessions without waiting for clients that are gone.
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		tn.engine.Close(ctx)
		tn.http.Close()
	})
	return tn
}

func startNodes(t *testing.T, ids ...string) []*testNode {
	t.Helper()
	r := testutil.StartRedis(t)
	nodes := make([]*testNode, len(ids))
	for i, id := range ids {
		nodes[i] = startNode(t, r.URL(), id)
	}
	return nodes
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// expectMessage reads the next message packet through the node at endpoint.
func expectMessage(ctx context.Context, t *testing.T, c *testutil.EIOClient, endpoint, want string) {
	t.Helper()
	c.Endpoint = endpoint
	p, err := c.Next(ctx)
	if err != nil {
		t.Fatalf("reading %q through %s: %v", want, endpoint, err)
	}
	if string(p.Data) != want {
		t.Fatalf("got message %q, want %q", p.Data, want)
	}
}

func send(ctx context.Context, t *testing.T, c *testutil.EIOClient, endpoint, msg string) {
	t.Helper()
	c.Endpoint = endpoint
	if err := c.Send(ctx, "4"+msg); err != nil {
		t.Fatalf("sending %q through %s: %v", msg, endpoint, err)
	}
}

func TestSessionIDsNameTheirOwner(t *testing.T) {
	r := testutil.StartRedis(t)
	reg := registry(t, r.URL())
	n, err := New(Config{NodeID: "node-7_a", Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for range 1000 {
		sid := n.NewSessionID()
		if seen[sid] {
			t.Fatalf("session id %s handed out twice", sid)
		}
		seen[sid] = true
		owner, ok := OwnerOf(sid)
		if !ok || owner != "node-7_a" {
			t.Fatalf("OwnerOf(%q) = %q, %v; want node-7_a", sid, owner, ok)
		}
		rest := strings.TrimPrefix(sid, "node-7_a.")
		// 15 random bytes: 120 bits nobody can guess.
		if len(rest) != 20 || strings.Trim(rest, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("random part %q of %q: want 20 URL-safe base64 characters", rest, sid)
		}
	}
	for _, bad := range []string{"", "abc", ".abc", "abc.", "a b.xyz", "é.xyz", strings.Repeat("a", 33) + ".xyz", "a/b.xyz"} {
		if owner, ok := OwnerOf(bad); ok {
			t.Errorf("OwnerOf(%q) = %q, want no owner", bad, owner)
		}
	}
	for _, id := range []string{"", "a.b", "a b", strings.Repeat("x", 33)} {
		if _, err := New(Config{NodeID: id, Registry: reg}); err == nil && id != "" {
			t.Errorf("New accepted node id %q", id)
		}
	}
	if a, b := RandomNodeID(), RandomNodeID(); a == b || !ValidNodeID(a) {
		t.Errorf("RandomNodeID gave %q and %q", a, b)
	}
}

// TestRegistration: a started node refreshes its registration before it
// expires, a second node with the same id is refused, and Close removes
// the registration at once.
func TestRegistration(t *testing.T) {
	ctx := testContext(t)
	r := testutil.StartRedis(t)
	reg := registry(t, r.URL())
	n, err := New(Config{NodeID: "n3", Registry: reg, TTL: 600 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Start(ctx, "10.0.0.4:3000"); err != nil {
		t.Fatal(err)
	}
	twin, err := New(Config{NodeID: "n3", Registry: reg})
	if err != nil {
		t.Fatal(err)
	}
	if err := twin.Start(ctx, "10.0.0.5:3000"); !errors.Is(err, ErrNodeIDInUse) {
		t.Fatalf("a second node with the same id: %v, want ErrNodeIDInUse", err)
	}
	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pttl := func() int64 {
		v, err := redis.Int64(conn.Do("PTTL", "siogo:cluster:node:n3"))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	low := pttl()
	testutil.Eventually(t, 5*time.Second, func() bool {
		v := pttl()
		if v > low {
			return true
		}
		low = min(low, v)
		return false
	}, "node n3 to refresh its registration")
	if err := n.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if addr, err := reg.Lookup(ctx, "n3"); err != nil || addr != "" {
		t.Fatalf("lookup after Close: %q, %v; want none", addr, err)
	}
}

func TestForwardingPollingAndWebSocket(t *testing.T) {
	for _, protocol := range []int{3, 4} {
		t.Run(map[int]string{3: "EIO3", 4: "EIO4"}[protocol], func(t *testing.T) {
			ctx := testContext(t)
			nodes := startNodes(t, "a", "b", "c")
			a, b, c := nodes[0], nodes[1], nodes[2]
			cl, err := testutil.DialEIO(ctx, a.endpoint, protocol, "polling", nil)
			if err != nil {
				t.Fatal(err)
			}
			if owner, _ := OwnerOf(cl.SID()); owner != "a" {
				t.Fatalf("session %s opened on a is owned by %q", cl.SID(), owner)
			}
			// A POST through b and a GET through c both reach a.
			send(ctx, t, cl, b.endpoint, "héllo")
			expectMessage(ctx, t, cl, c.endpoint, "héllo")
			send(ctx, t, cl, a.endpoint, "direct")
			expectMessage(ctx, t, cl, b.endpoint, "direct")

			// The upgrade through c tunnels the WebSocket to a.
			cl.Endpoint = c.endpoint
			if err := cl.Upgrade(ctx); err != nil {
				t.Fatal(err)
			}
			send(ctx, t, cl, c.endpoint, "over websocket")
			expectMessage(ctx, t, cl, c.endpoint, "over websocket")
			if got := a.session(t, cl.SID()).sess.Transport(); got != "websocket" {
				t.Fatalf("session transport on a = %s, want websocket", got)
			}

			fa, _, _ := a.obs.get()
			fb, _, _ := b.obs.get()
			fc, _, _ := c.obs.get()
			if len(fa) != 0 {
				t.Errorf("the owner forwarded %v", fa)
			}
			if fb["polling"] != 2 || fc["polling"] != 1 || fc["websocket"] != 1 {
				t.Errorf("forwarded by b %v, by c %v; want b polling:2, c polling:1 websocket:1", fb, fc)
			}
		})
	}
}

// get performs a raw request and returns the status and body.
func get(ctx context.Context, t *testing.T, u string, header http.Header) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

const unknownSID = `{"code":1,"message":"Session ID unknown"}`

func TestUnknownAndDeadOwners(t *testing.T) {
	ctx := testContext(t)
	nodes := startNodes(t, "a", "b", "d")
	a, b, d := nodes[0], nodes[1], nodes[2]
	cl, err := testutil.DialEIO(ctx, b.endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}

	for name, sid := range map[string]string{
		"no owner":      "abcdefghijklmnopqrst",
		"unknown owner": "zz.abcdefghijklmnopqrst",
		"bad owner":     "a%20b.abcdefghijklmnopqrst",
		"unknown sid":   "b.abcdefghijklmnopqrst",
	} {
		status, body := get(ctx, t, testutil.EIOURL(a.endpoint, 4, "polling", sid), nil)
		if status != http.StatusBadRequest || body != unknownSID {
			t.Errorf("%s (%s): %d %s, want 400 %s", name, sid, status, body, unknownSID)
		}
	}

	// Of those, only the one naming a registered owner was forwarded.
	if f, _, _ := a.obs.get(); len(f) != 1 || f["polling"] != 1 {
		t.Errorf("a forwarded %v, want polling:1", f)
	}

	// A request another node already forwarded is never forwarded again.
	loop := testutil.EIOURL(a.endpoint, 4, "polling", cl.SID())
	status, body := get(ctx, t, loop, http.Header{HeaderForwardedBy: {"d"}})
	if status != http.StatusBadRequest || body != unknownSID {
		t.Errorf("forwarded request at a non-owner: %d %s, want 400 %s", status, body, unknownSID)
	}
	if f, _, _ := a.obs.get(); f["polling"] != 1 {
		t.Errorf("a forwarded %v, want polling:1 still", f)
	}

	// A node that dies without deregistering: forwarding to it fails and
	// the client is told its session is unknown, so it reconnects.
	dead, err := testutil.DialEIO(ctx, d.endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	d.http.CloseClientConnections()
	d.http.Listener.Close()
	status, body = get(ctx, t, testutil.EIOURL(a.endpoint, 4, "polling", dead.SID()), nil)
	if status != http.StatusBadRequest || body != unknownSID {
		t.Errorf("poll for a dead owner: %d %s, want 400 %s", status, body, unknownSID)
	}
	if _, err := testutil.DialWS(ctx, testutil.WSURL(testutil.EIOURL(a.endpoint, 4, "websocket", dead.SID()))); err == nil {
		t.Errorf("WebSocket upgrade for a dead owner succeeded")
	}
	if _, failed, _ := a.obs.get(); failed != 2 {
		t.Errorf("a counted %d failed forwards, want 2", failed)
	}
}

// inflightCount returns how many long requests the node is carrying.
func (n *Node) inflightCount() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.inflight)
}

// TestPollSurvivesItsCarrier: a long poll forwarded through b is cut when b
// drains (or its client connection drops, as when b dies); the client's
// retry through c takes it over, and the session on a never notices.
func TestPollSurvivesItsCarrier(t *testing.T) {
	cuts := map[string]func(b *testNode){
		"drained":        func(b *testNode) { b.Drain() },
		"connection cut": func(b *testNode) { b.http.CloseClientConnections() },
	}
	for cutName, cut := range cuts {
		for _, protocol := range []int{3, 4} {
			// messageFirst sends the message while nobody waits for it,
			// so the held answer must be kept for the retry.
			for _, messageFirst := range []bool{true, false} {
				name := fmt.Sprintf("%s/EIO%d/retry first", cutName, protocol)
				if messageFirst {
					name = fmt.Sprintf("%s/EIO%d/message first", cutName, protocol)
				}
				t.Run(name, func(t *testing.T) {
					testPollSurvivesItsCarrier(t, protocol, cut, messageFirst)
				})
			}
		}
	}
}

func testPollSurvivesItsCarrier(t *testing.T, protocol int, cut func(*testNode), messageFirst bool) {
	ctx := testContext(t)
	nodes := startNodes(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	// Open on a, then poll through b.
	cl, err := testutil.DialEIO(ctx, a.endpoint, protocol, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	sess := a.session(t, cl.SID())
	carried := make(chan error, 1)
	go func() {
		c := *cl
		c.Endpoint = b.endpoint
		_, _, err := c.Get(ctx)
		carried <- err
	}()
	testutil.Eventually(t, 5*time.Second, func() bool {
		return a.obs.relayedRequests() == 1 && b.inflightCount() == 1
	}, "the poll forwarded by b to reach a")
	cut(b)
	if err := <-carried; err == nil {
		t.Fatal("the poll through b was answered; want its connection dropped")
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		_, _, h := a.obs.get()
		return h == 1
	}, "a to see the poll's carrier go")

	message := engineio.Message{Data: []byte("while cut")}
	if messageFirst {
		// Nobody polls: the message waits in the session's queue.
		sess.sess.Send(message)
		expectMessage(ctx, t, cl, c.endpoint, "while cut")
	} else {
		got := make(chan error, 1)
		go func() {
			c2 := *cl
			c2.Endpoint = c.endpoint
			p, err := c2.Next(ctx)
			if err == nil && string(p.Data) != "while cut" {
				err = fmt.Errorf("got %q, want %q", p.Data, "while cut")
			}
			got <- err
		}()
		testutil.Eventually(t, 5*time.Second, func() bool { return a.obs.relayedRequests() == 2 }, "the retry through c to reach a")
		sess.sess.Send(message)
		if err := <-got; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case reason := <-sess.closed:
		t.Fatalf("session closed (%s) when the node carrying its poll went away", reason)
	default:
	}
	// The session carries on, directly and through c.
	send(ctx, t, cl, c.endpoint, "after")
	expectMessage(ctx, t, cl, a.endpoint, "after")
	if _, _, h := a.obs.get(); h != 1 {
		t.Errorf("a counted %d handoffs, want 1", h)
	}
}

// TestOverlappingPollGetsNoop: if a balancer retries a poll whose first
// attempt is still running, one of the two is answered with a noop and the
// other gets the data; the session goes on.
func TestOverlappingPollGetsNoop(t *testing.T) {
	ctx := testContext(t)
	nodes := startNodes(t, "a", "b", "c")
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, tc := range []struct {
		protocol   int
		noop, data string
	}{{4, "6", "4data"}, {3, "1:6", "5:4data"}} {
		cl, err := testutil.DialEIO(ctx, a.endpoint, tc.protocol, "polling", nil)
		if err != nil {
			t.Fatal(err)
		}
		relayed := a.obs.relayedRequests()
		answers := make(chan string, 2)
		for _, via := range []*testNode{b, c} {
			go func() {
				cl := *cl
				cl.Endpoint = via.endpoint
				_, body, err := cl.Get(ctx)
				if err != nil {
					body = []byte(err.Error())
				}
				answers <- string(body)
			}()
		}
		testutil.Eventually(t, 5*time.Second, func() bool { return a.obs.relayedRequests() == relayed+2 }, "both polls to reach a")
		first := <-answers
		if first != tc.noop {
			t.Fatalf("EIO%d: the superseded poll was answered %q, want a noop %q", tc.protocol, first, tc.noop)
		}
		a.session(t, cl.SID()).sess.Send(engineio.Message{Data: []byte("data")})
		if got := <-answers; got != tc.data {
			t.Fatalf("EIO%d: the other poll got %q, want %q", tc.protocol, got, tc.data)
		}
	}
}

// TestDrainedNodeRefusesLongRequests: once drained, a node drops new
// forwarded polls unanswered (a balancer retries them elsewhere) but still
// forwards POSTs, whose packets must not be lost.
func TestDrainedNodeRefusesLongRequests(t *testing.T) {
	ctx := testContext(t)
	nodes := startNodes(t, "a", "b")
	a, b := nodes[0], nodes[1]
	cl, err := testutil.DialEIO(ctx, a.endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	b.Drain()
	cl.Endpoint = b.endpoint
	if _, _, err := cl.Get(ctx); err == nil {
		t.Fatal("a drained node answered a forwarded poll")
	}
	send(ctx, t, cl, b.endpoint, "posted")
	expectMessage(ctx, t, cl, a.endpoint, "posted")
}

func TestDefaultAdvertise(t *testing.T) {
	tcp := func(s string) net.Addr {
		a, err := net.ResolveTCPAddr("tcp", s)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	for in, want := range map[string]string{
		"127.0.0.1:3001": "127.0.0.1:3001",
		"10.1.2.3:80":    "10.1.2.3:80",
		"[::1]:3000":     "[::1]:3000",
	} {
		got, err := DefaultAdvertise(tcp(in))
		if err != nil || got != want {
			t.Errorf("DefaultAdvertise(%s) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, in := range []string{"0.0.0.0:3000", "[::]:3000"} {
		got, err := DefaultAdvertise(tcp(in))
		if err != nil {
			t.Fatal(err)
		}
		host, port, _ := net.SplitHostPort(got)
		ip := net.ParseIP(host)
		if port != "3000" || ip == nil || ip.IsUnspecified() {
			t.Errorf("DefaultAdvertise(%s) = %q; want a reachable address on port 3000", in, got)
		}
	}
}
