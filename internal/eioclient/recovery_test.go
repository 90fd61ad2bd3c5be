package eioclient_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"testing"
	"time"

	"siogo/internal/eioclient"
	"siogo/internal/scrape"
	"siogo/internal/server"
	"siogo/internal/testutil"
	"siogo/socketio"
)

// These tests reconnect chat clients to the real chat server, run in this
// process: on one node, and from a node that shuts down to another node of
// a cluster on a real redis-server with the Streams broker.

const waitTimeout = 15 * time.Second

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func recovery(window time.Duration) socketio.Options {
	return socketio.Options{Recovery: socketio.Recovery{MaxDisconnectionDuration: window, SkipMiddlewares: true}}
}

// startNode runs one chat server on a loopback listener until the test ends
// or stop is called, which shuts it down as SIGTERM would.
func startNode(t *testing.T, cfg server.Config) (url string, stop func()) {
	t.Helper()
	cfg.Logger = quiet()
	srv, err := server.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ctx, ln) }()
	stop = func() {
		cancel()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("server: %v", err)
		}
		served <- nil
	}
	t.Cleanup(stop)
	return "http://" + ln.Addr().String(), stop
}

// member is a chat client whose lines arrive on a channel.
type member struct {
	c     *eioclient.ChatClient
	lines chan eioclient.ChatLine
}

func join(t *testing.T, base string, protocol int, transport string) *member {
	t.Helper()
	m := &member{lines: make(chan eioclient.ChatLine, 100)}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := eioclient.DialChat(ctx, base, eioclient.ChatOptions{Protocol: protocol, Transport: transport,
		OnLine: func(l eioclient.ChatLine) { m.lines <- l }})
	if err != nil {
		t.Fatal(err)
	}
	m.c = c
	t.Cleanup(func() { m.c.Close() })
	return m
}

// say sends a line and returns the clientID the server acknowledged it with.
func (m *member) say(t *testing.T, msg string) int64 {
	t.Helper()
	acked := make(chan int64, 1)
	if err := m.c.SendAck(msg, func(id int64) { acked <- id }); err != nil {
		t.Fatal(err)
	}
	select {
	case id := <-acked:
		return id
	case <-time.After(waitTimeout):
		t.Fatalf("no ack for %q", msg)
		return 0
	}
}

// expect reads the next lines and compares their messages with want.
func (m *member) expect(t *testing.T, want ...string) {
	t.Helper()
	for _, w := range want {
		select {
		case l := <-m.lines:
			if l.Message != w {
				t.Fatalf("got line %q, want %q", l.Message, w)
			}
		case <-time.After(waitTimeout):
			t.Fatalf("no line %q", w)
		}
	}
}

func (m *member) reconnect(t *testing.T, base string) {
	t.Helper()
	select {
	case <-m.c.Done():
	case <-time.After(waitTimeout):
		t.Fatal("the session did not end")
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	c, err := m.c.Reconnect(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	m.c = c
}

// recoverWhile has b say five lines while m, whose connection has ended,
// is away, then reconnects m through base: m must come back as the same
// socket with clientID id, get the five lines in order, and chat on. b
// must have seen a1 and b1 before.
func (m *member) recoverWhile(t *testing.T, b *member, base string, id int64) {
	t.Helper()
	for i := range 5 {
		b.say(t, fmt.Sprint("missed ", i))
	}
	old := m.c
	m.reconnect(t, base)
	if !m.c.Recovered() || m.c.SocketID() != old.SocketID() {
		t.Fatalf("not recovered: Recovered %v, sid %q, was %q", m.c.Recovered(), m.c.SocketID(), old.SocketID())
	}
	m.expect(t, "missed 0", "missed 1", "missed 2", "missed 3", "missed 4")
	if got := m.say(t, "a2"); got != id {
		t.Errorf("clientID %d after recovery, was %d", got, id)
	}
	m.expect(t, "a2")
	b.expect(t, "a1", "b1", "missed 0", "missed 1", "missed 2", "missed 3", "missed 4", "a2")
}

// cut ends the client's connection without a Socket.IO disconnect, as a
// dropped network would: the TCP connection over WebSocket, a close packet
// over polling.
func (m *member) cut() {
	if conn := m.c.Conn(); conn != nil {
		conn.Close()
		return
	}
	m.c.Close()
}

func connected(t *testing.T, base string) float64 {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	m, err := scrape.Fetch(ctx, base)
	if err != nil {
		t.Fatal(err)
	}
	return m.Sum("siogo_connected_clients")
}

// TestReconnectRecovers: a client that loses its connection comes back,
// over WebSocket and over polling, as the same socket with the same
// clientID, and gets the lines said meanwhile, in order, once, before the
// next one.
func TestReconnectRecovers(t *testing.T) {
	for _, transport := range []string{"websocket", "polling"} {
		t.Run(transport, func(t *testing.T) {
			base, _ := startNode(t, server.Config{Socket: recovery(time.Minute)})
			a := join(t, base, 4, transport)
			b := join(t, base, 4, "websocket")
			if a.c.PID() == "" || a.c.SocketID() == "" {
				t.Fatalf("CONNECT reply without pid or sid: %q, %q", a.c.PID(), a.c.SocketID())
			}
			idA := a.say(t, "a1")
			b.say(t, "b1")
			a.expect(t, "a1", "b1")
			offset := a.c.Offset()
			if offset == "" {
				t.Fatal("no offset after two lines")
			}

			a.cut()
			testutil.Eventually(t, waitTimeout, func() bool { return connected(t, base) == 1 }, "the server to see the client go")
			a.recoverWhile(t, b, base, idA)
			if a.c.Offset() == offset {
				t.Error("the offset did not move")
			}
			select {
			case l := <-a.lines:
				t.Errorf("extra line %+v", l)
			default:
			}
		})
	}
}

// TestReconnectWithoutRecovery: an Engine.IO 3 client, and any client of a
// server with recovery off, gets no pid and reconnects as a new member.
func TestReconnectWithoutRecovery(t *testing.T) {
	for _, tc := range []struct {
		name     string
		window   time.Duration
		protocol int
	}{
		{"EIO3", time.Minute, 3},
		{"recovery off", 0, 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			base, _ := startNode(t, server.Config{Socket: recovery(tc.window)})
			a := join(t, base, tc.protocol, "websocket")
			if a.c.PID() != "" {
				t.Fatalf("pid %q, want none", a.c.PID())
			}
			idA := a.say(t, "a1")
			a.expect(t, "a1")
			a.cut()
			a.reconnect(t, base)
			if a.c.Recovered() {
				t.Fatal("recovered")
			}
			if id := a.say(t, "a2"); id == idA {
				t.Errorf("clientID %d kept without recovery", id)
			}
			a.expect(t, "a2")
		})
	}
}

// TestReconnectToAnotherNode: the node holding the client shuts down, as on
// SIGTERM; the client comes back through another node of the cluster (the
// Streams broker on a real redis-server) with its socket, clientID and the
// lines it missed.
func TestReconnectToAnotherNode(t *testing.T) {
	r := testutil.StartRedis(t)
	node := func(id string) server.Config {
		return server.Config{RedisURL: r.URL(), Broker: "streams", NodeID: id, Socket: recovery(time.Minute)}
	}
	base1, stop1 := startNode(t, node("n1"))
	base2, _ := startNode(t, node("n2"))
	for _, base := range []string{base1, base2} {
		testutil.Eventually(t, waitTimeout, func() bool {
			resp, err := http.Get(base + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == http.StatusOK
		}, "%s to be ready", base)
	}
	a := join(t, base1, 4, "polling")
	b := join(t, base2, 4, "websocket")
	idA := a.say(t, "a1")
	b.say(t, "b1")
	a.expect(t, "a1", "b1")

	stop1()
	a.recoverWhile(t, b, base2, idA)
}
