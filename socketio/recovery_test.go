package socketio

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"siogo/internal/testutil"
)

// These tests run connection-state recovery on one node, with the memory
// broker, against a hand-driven Engine.IO client that connects, disconnects
// and comes back with the pid and offset a socket.io 4.6+ client would
// present.

// recoveryServer starts a server with recovery on and reports each socket
// as it connects.
func recoveryServer(t *testing.T, opts Options) (*Server, string, chan *Socket) {
	t.Helper()
	if opts.Recovery.MaxDisconnectionDuration == 0 {
		opts.Recovery = Recovery{MaxDisconnectionDuration: time.Minute, SkipMiddlewares: true}
	}
	srv := NewServer(opts)
	connected := make(chan *Socket, 16)
	srv.Of("/").OnConnect(func(s *Socket) { connected <- s })
	ts := httptest.NewServer(srv)
	t.Cleanup(func() {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		srv.Close(ctx)
		ts.Close()
	})
	return srv, ts.URL + "/socket.io/", connected
}

// sioClient is a Socket.IO 5 client over one Engine.IO session.
type sioClient struct {
	t   *testing.T
	eio *testutil.EIOClient
	sid string
	pid string
}

// dialSIO connects to "/" with auth, over transport, and returns the client
// and the CONNECT reply's sid and pid.
func dialSIO(t *testing.T, endpoint, transport, auth string) *sioClient {
	t.Helper()
	ctx := testCtx(t)
	eio, err := testutil.DialEIO(ctx, endpoint, 4, transport, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if ws := eio.WS(); ws != nil {
			ws.Close()
		}
	})
	if err := eio.Send(ctx, "40"+auth); err != nil {
		t.Fatal(err)
	}
	p, err := eio.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var reply struct{ SID, PID string }
	if !strings.HasPrefix(string(p.Data), "0{") || json.Unmarshal(p.Data[1:], &reply) != nil {
		t.Fatalf("CONNECT reply %q", p.Data)
	}
	return &sioClient{t: t, eio: eio, sid: reply.SID, pid: reply.PID}
}

// event returns the next event's arguments.
func (c *sioClient) event() []json.RawMessage {
	c.t.Helper()
	p, err := c.eio.Next(testCtx(c.t))
	if err != nil {
		c.t.Fatal(err)
	}
	if len(p.Data) == 0 || p.Data[0] != '2' {
		c.t.Fatalf("got %q, want an event", p.Data)
	}
	var args []json.RawMessage
	if err := json.Unmarshal(p.Data[1:], &args); err != nil {
		c.t.Fatal(err)
	}
	return args
}

// line reads an event ["line", n, offset] and returns n and the offset.
func (c *sioClient) line() (int, string) {
	c.t.Helper()
	args := c.event()
	if len(args) != 3 || string(args[0]) != `"line"` {
		c.t.Fatalf("got %s, want [\"line\", n, offset]", args)
	}
	n, err := strconv.Atoi(string(args[1]))
	if err != nil {
		c.t.Fatal(err)
	}
	var offset string
	if err := json.Unmarshal(args[2], &offset); err != nil {
		c.t.Fatalf("last argument %s is not an offset", args[2])
	}
	return n, offset
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func recoverAuth(pid, offset string) string {
	b, _ := json.Marshal(map[string]string{"pid": pid, "offset": offset, "token": "t"})
	return string(b)
}

func TestRecoveryReplaysWhatWasMissed(t *testing.T) {
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			srv, endpoint, connected := recoveryServer(t, Options{})
			nsp := srv.Of("/")
			c := dialSIO(t, endpoint, transport, `{"token":"t"}`)
			s := <-connected
			if c.pid == "" || string(s.ID()) != c.sid || s.Recovered() {
				t.Fatalf("first connection: sid %q pid %q recovered %v", c.sid, c.pid, s.Recovered())
			}
			s.Join("blue")
			s.SetData(map[string]int{"clientID": 7})
			nsp.Emit("line", 0)
			_, offset := c.line()

			// The connection goes; the socket leaves with the reason
			// of a lost transport, and its session stays.
			gone := make(chan string, 1)
			nsp.OnDisconnect(func(_ *Socket, reason string) { gone <- reason })
			s.client.conn.Close("transport close")
			if r := <-gone; r != "transport close" {
				t.Fatalf("disconnected with %q", r)
			}
			for i := 1; i <= 3; i++ {
				nsp.Emit("line", i)
			}
			nsp.To("blue").Emit("line", 4)
			nsp.To("red").Emit("line", 99) // not for this socket

			back := dialSIO(t, endpoint, transport, recoverAuth(c.pid, offset))
			rs := <-connected
			if back.sid != c.sid || back.pid != c.pid || !rs.Recovered() || rs.ID() != s.ID() {
				t.Fatalf("recovered as sid %q pid %q (recovered %v), want sid %q pid %q", back.sid, back.pid, rs.Recovered(), c.sid, c.pid)
			}
			for want := 1; want <= 4; want++ {
				if n, _ := back.line(); n != want {
					t.Fatalf("replayed line %d, want %d", n, want)
				}
			}
			nsp.Emit("line", 5)
			if n, _ := back.line(); n != 5 {
				t.Fatalf("after the replay: line %d, want 5", n)
			}
			if got := string(rs.Data().(json.RawMessage)); got != `{"clientID":7}` {
				t.Errorf("recovered data %s", got)
			}
			nsp.To("blue").Emit("line", 6)
			if n, _ := back.line(); n != 6 {
				t.Fatalf("the recovered socket is not in its room: line %d", n)
			}
		})
	}
}

// TestRecoveryLosesNothingUnderTraffic recovers a socket while broadcasts
// keep coming, so that some are logged before the socket registers and
// some after: every line arrives once, in order.
func TestRecoveryLosesNothingUnderTraffic(t *testing.T) {
	for round := range 5 {
		t.Run(fmt.Sprint(round), func(t *testing.T) {
			srv, endpoint, connected := recoveryServer(t, Options{})
			nsp := srv.Of("/")
			c := dialSIO(t, endpoint, "websocket", `{}`)
			s := <-connected
			nsp.Emit("line", 0)
			_, offset := c.line()
			s.client.conn.Close("transport close")

			const total = 2000
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 1; i <= total; i++ {
					nsp.Emit("line", i)
				}
			}()
			back := dialSIO(t, endpoint, "websocket", recoverAuth(c.pid, offset))
			if rs := <-connected; !rs.Recovered() {
				t.Fatal("not recovered")
			}
			for want := 1; want <= total; want++ {
				if n, _ := back.line(); n != want {
					t.Fatalf("line %d, want %d", n, want)
				}
			}
			wg.Wait()
		})
	}
}

func TestRecoveryRefusals(t *testing.T) {
	t.Run("expired", func(t *testing.T) {
		srv, endpoint, connected := recoveryServer(t, Options{Recovery: Recovery{MaxDisconnectionDuration: 50 * time.Millisecond}})
		c := dialSIO(t, endpoint, "websocket", `{}`)
		s := <-connected
		srv.Of("/").Emit("line", 0)
		_, offset := c.line()
		s.client.conn.Close("transport close")
		testutil.Eventually(t, 5*time.Second, func() bool {
			return srv.durable.(*MemoryBroker).sessionCount() == 1
		}, "the session to be stored")
		time.Sleep(100 * time.Millisecond) // past the recovery window
		back := dialSIO(t, endpoint, "websocket", recoverAuth(c.pid, offset))
		if rs := <-connected; rs.Recovered() || back.sid == c.sid || back.pid == c.pid {
			t.Fatalf("recovered after the window: sid %q pid %q", back.sid, back.pid)
		}
	})
	t.Run("unknown pid", func(t *testing.T) {
		_, endpoint, connected := recoveryServer(t, Options{})
		dialSIO(t, endpoint, "websocket", recoverAuth("nobody", "1-1"))
		if rs := <-connected; rs.Recovered() {
			t.Fatal("recovered an unknown session")
		}
	})
	t.Run("offset too old", func(t *testing.T) {
		srv, endpoint, connected := recoveryServer(t, Options{
			Broker:   NewMemoryBroker(MemoryBrokerConfig{LogSize: 3}),
			Recovery: Recovery{MaxDisconnectionDuration: time.Minute},
		})
		c := dialSIO(t, endpoint, "websocket", `{}`)
		s := <-connected
		srv.Of("/").Emit("line", 0)
		_, offset := c.line()
		s.client.conn.Close("transport close")
		for i := 1; i <= 5; i++ {
			srv.Of("/").Emit("line", i)
		}
		dialSIO(t, endpoint, "websocket", recoverAuth(c.pid, offset))
		if rs := <-connected; rs.Recovered() {
			t.Fatal("recovered past the end of the log")
		}
	})
	t.Run("clean disconnect", func(t *testing.T) {
		srv, endpoint, connected := recoveryServer(t, Options{})
		c := dialSIO(t, endpoint, "websocket", `{}`)
		<-connected
		srv.Of("/").Emit("line", 0)
		_, offset := c.line()
		c.eio.Send(testCtx(t), "41") // the client leaves the namespace
		testutil.Eventually(t, 5*time.Second, func() bool { return srv.Of("/").Len() == 0 }, "the socket to leave")
		testutil.Eventually(t, 5*time.Second, func() bool {
			return srv.durable.(*MemoryBroker).sessionCount() == 0
		}, "the session to be dropped")
		dialSIO(t, endpoint, "websocket", recoverAuth(c.pid, offset))
		if rs := <-connected; rs.Recovered() {
			t.Fatal("recovered a session its client ended")
		}
	})
}

// TestRecoveryLeavesOlderClientsAlone: revision 4 clients (socket.io-client
// 1.x and 2.x) cannot recover; their events carry no offset.
func TestRecoveryLeavesOlderClientsAlone(t *testing.T) {
	srv, endpoint, connected := recoveryServer(t, Options{})
	ctx := testCtx(t)
	eio, err := testutil.DialEIO(ctx, endpoint, 3, "websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer eio.WS().Close()
	if p, err := eio.Next(ctx); err != nil || string(p.Data) != "0" {
		t.Fatalf("implicit CONNECT: %q, %v", p.Data, err)
	}
	<-connected
	srv.Of("/").Emit("line", 1)
	p, err := eio.Next(ctx)
	if err != nil || string(p.Data) != `2["line",1]` {
		t.Fatalf("got %q, %v; want the event without an offset", p.Data, err)
	}
}

// TestMemoryBrokerIsBounded: the single node's log keeps at most LogSize
// broadcasts and none older than LogAge, and expired sessions are swept.
func TestMemoryBrokerIsBounded(t *testing.T) {
	m := NewMemoryBroker(MemoryBrokerConfig{LogSize: 50, LogAge: 100 * time.Millisecond})
	m.Open(brokerHandler{NewServer(Options{})})
	for i := range 500 {
		m.Publish(&Broadcast{Namespace: "/", Data: json.RawMessage(fmt.Sprintf(`["n",%d]`, i))})
	}
	live := func() int {
		l := m.log("/")
		l.mu.Lock()
		defer l.mu.Unlock()
		n := 0
		for _, e := range l.entries {
			if e.b != nil {
				n++
			}
		}
		return n
	}
	if n := live(); n != 50 {
		t.Fatalf("%d broadcasts in the log, want 50", n)
	}
	time.Sleep(150 * time.Millisecond) // past LogAge
	m.Publish(&Broadcast{Namespace: "/", Data: json.RawMessage(`["n",-1]`)})
	if n := live(); n != 1 {
		t.Fatalf("%d broadcasts in the log after LogAge, want 1", n)
	}

	expires := time.Now().Add(50 * time.Millisecond)
	var sessions []*SavedSession
	for i := range 100 {
		sessions = append(sessions, &SavedSession{PID: fmt.Sprint(i), SID: "s", Expires: expires})
	}
	m.SaveSessions(context.Background(), sessions)
	if n := m.sessionCount(); n != 100 {
		t.Fatalf("%d sessions, want 100", n)
	}
	testutil.Eventually(t, 5*time.Second, func() bool {
		// Any later save sweeps what has expired, grace included.
		m.SaveSessions(context.Background(), []*SavedSession{{PID: "new", Expires: time.Now().Add(time.Minute)}})
		return m.sessionCount() == 1
	}, "expired sessions to be swept")
}

// TestMemoryBrokerHandlerPublishes: a listener that broadcasts from
// within a delivery does not wait for itself, and the lines keep the log's
// order: each line, then the echo it caused.
func TestMemoryBrokerHandlerPublishes(t *testing.T) {
	srv, endpoint, connected := recoveryServer(t, Options{})
	nsp := srv.Of("/")
	c := dialSIO(t, endpoint, "websocket", `{}`)
	<-connected
	nsp.OnAnyOutgoing(func(e *OutgoingEvent, _ []*Socket) {
		if n, err := strconv.Atoi(string(e.Data[len(`["line",`) : len(e.Data)-1])); err == nil && n < 100 {
			nsp.Emit("line", n+100)
		}
	})
	nsp.Emit("line", 1)
	nsp.Emit("line", 2)
	var got []int
	last := ""
	for range 4 {
		n, offset := c.line()
		got = append(got, n)
		if last != "" && offset <= last {
			t.Errorf("offset %s after %s", offset, last)
		}
		last = offset
	}
	if want := []int{1, 101, 2, 102}; !slices.Equal(got, want) {
		t.Fatalf("lines %v, want %v", got, want)
	}
}
