package socketio

import (
	"context"
	"fmt"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"siogo/engineio"
	"siogo/internal/testutil"
)

// hookEvent is one call of a listener, as TestHooks records it.
type hookEvent struct {
	kind string // connection, close, namespace, join, leave, upgrade, any, outgoing
	id   string // session or socket id, namespace name
	arg  string // room, reason, event name
	n    int    // recipients of an outgoing event
}

func (e hookEvent) String() string { return fmt.Sprintf("%s(%s %s %d)", e.kind, e.id, e.arg, e.n) }

// TestHooks watches a server through every listener while real protocol
// clients connect, join rooms, send, receive, upgrade and leave, and checks
// each listener is called once per change, with what changed.
func TestHooks(t *testing.T) {
	srv := NewServer(Options{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	events := make(chan hookEvent, 100)
	record := func(e hookEvent) { events <- e }

	srv.OnConnection(func(c *engineio.Session) { record(hookEvent{kind: "connection", id: c.ID()}) })
	srv.OnConnectionClose(func(c *engineio.Session, reason string) {
		record(hookEvent{kind: "close", id: c.ID(), arg: reason})
	})
	srv.OnNamespace(func(n *Namespace) { record(hookEvent{kind: "namespace", id: n.Name()}) })
	nsp := srv.Of("/")
	nsp.OnJoinRoom(func(r Room, id SocketID) { record(hookEvent{kind: "join", id: string(id), arg: string(r)}) })
	nsp.OnLeaveRoom(func(r Room, id SocketID) { record(hookEvent{kind: "leave", id: string(id), arg: string(r)}) })
	nsp.OnUpgrade(func(s *Socket) { record(hookEvent{kind: "upgrade", id: string(s.ID()), arg: s.Transport()}) })
	nsp.OnAny(func(s *Socket, m *Message) {
		record(hookEvent{kind: "any", id: string(s.ID()), arg: m.Event + string(m.Args[0])})
	})
	nsp.OnAnyOutgoing(func(e *OutgoingEvent, to []*Socket) {
		args, err := e.Args()
		if err != nil {
			t.Errorf("outgoing %s: %v", e.Data, err)
		}
		record(hookEvent{kind: "outgoing", arg: e.Name + string(args[0]), n: len(to)})
	})
	expect := func(want ...hookEvent) {
		t.Helper()
		var got []hookEvent
		timeout := time.After(5 * time.Second)
		for len(got) < len(want) {
			select {
			case e := <-events:
				got = append(got, e)
			case <-timeout:
				t.Fatalf("got %v, want %v", got, want)
			}
		}
		sortEvents := func(es []hookEvent) {
			slices.SortFunc(es, func(a, b hookEvent) int { return strings.Compare(a.String(), b.String()) })
		}
		sortEvents(got)
		sortEvents(want)
		if !slices.Equal(got, want) {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	expectNone := func() {
		t.Helper()
		select {
		case e := <-events:
			t.Fatalf("unexpected %v", e)
		default:
		}
	}

	srv.Of("/other")
	expect(hookEvent{kind: "namespace", id: "/other"})
	if names := namespaceNames(srv); !slices.Equal(names, []string{"/", "/other"}) {
		t.Fatalf("Namespaces: %v", names)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	endpoint := ts.URL + "/socket.io/"
	a, err := testutil.JoinSIO(ctx, endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := testutil.JoinSIO(ctx, endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	sa, sb := socketOf(t, nsp, a.SID()), socketOf(t, nsp, b.SID())
	expect(
		hookEvent{kind: "connection", id: a.SID()}, hookEvent{kind: "connection", id: b.SID()},
		hookEvent{kind: "join", id: string(sa.ID()), arg: string(sa.ID())},
		hookEvent{kind: "join", id: string(sb.ID()), arg: string(sb.ID())},
	)
	if n := srv.Engine().PollingCount(); n != 2 {
		t.Fatalf("PollingCount = %d, want 2", n)
	}

	// Rooms: a change is reported once; no change, no call.
	sa.Join("r1", "r1", "r2")
	expect(hookEvent{kind: "join", id: string(sa.ID()), arg: "r1"}, hookEvent{kind: "join", id: string(sa.ID()), arg: "r2"})
	sa.Join("r1")
	sa.Leave("nowhere")
	expectNone()
	sa.Leave("r2")
	expect(hookEvent{kind: "leave", id: string(sa.ID()), arg: "r2"})
	nsp.To(Room(sb.ID())).SocketsJoin("r3")
	expect(hookEvent{kind: "join", id: string(sb.ID()), arg: "r3"})

	// Every incoming event, with or without a handler.
	if err := a.Send(ctx, `42["hello",1]`); err != nil {
		t.Fatal(err)
	}
	expect(hookEvent{kind: "any", id: string(sa.ID()), arg: "hello1"})

	// Outgoing: a broadcast once with its recipients, an emit once.
	if err := nsp.Emit("news", 2); err != nil {
		t.Fatal(err)
	}
	expect(hookEvent{kind: "outgoing", arg: "news2", n: 2})
	if err := nsp.To("r1").Emit("news", 3); err != nil {
		t.Fatal(err)
	}
	expect(hookEvent{kind: "outgoing", arg: "news3", n: 1})
	if err := sb.Emit("direct", 4); err != nil {
		t.Fatal(err)
	}
	expect(hookEvent{kind: "outgoing", arg: "direct4", n: 1})

	// The upgrade, seen by the socket's namespace and the engine's count.
	if err := b.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	expect(hookEvent{kind: "upgrade", id: string(sb.ID()), arg: "websocket"})
	if n := srv.Engine().PollingCount(); n != 1 {
		t.Fatalf("PollingCount = %d after an upgrade, want 1", n)
	}

	// FetchSockets tells each socket's connection and transport.
	sockets, err := nsp.FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	transports := map[string]string{}
	for _, rs := range sockets {
		transports[rs.SessionID] = rs.Transport
	}
	if want := map[string]string{a.SID(): "polling", b.SID(): "websocket"}; !mapsEqual(transports, want) {
		t.Fatalf("FetchSockets: connections %v, want %v", transports, want)
	}

	// A closing connection leaves every room, then closes.
	if err := a.Send(ctx, "1"); err != nil {
		t.Fatal(err)
	}
	expect(
		hookEvent{kind: "leave", id: string(sa.ID()), arg: string(sa.ID())},
		hookEvent{kind: "leave", id: string(sa.ID()), arg: "r1"},
		hookEvent{kind: "close", id: a.SID(), arg: "transport close"},
	)
	if n := srv.Engine().PollingCount(); n != 0 {
		t.Fatalf("PollingCount = %d once the polling session has closed, want 0", n)
	}
	expectNone()
}

func namespaceNames(srv *Server) []string {
	var names []string
	for _, n := range srv.Namespaces() {
		names = append(names, n.Name())
	}
	slices.Sort(names)
	return names
}

// socketOf returns the socket of namespace nsp opened over session sid.
func socketOf(t *testing.T, nsp *Namespace, sid string) *Socket {
	t.Helper()
	for _, s := range nsp.Sockets() {
		if s.SessionID() == sid {
			return s
		}
	}
	t.Fatalf("no socket of session %s in %s", sid, nsp.Name())
	return nil
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestOnAnyOutgoingMayEmit checks that an outgoing listener runs outside
// the namespace's delivery lock: it may emit to the same namespace.
func TestOnAnyOutgoingMayEmit(t *testing.T) {
	srv := NewServer(Options{})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	nsp := srv.Of("/")
	echoed := make(chan string, 4)
	nsp.OnAnyOutgoing(func(e *OutgoingEvent, to []*Socket) {
		echoed <- e.Name
		if e.Name == "first" {
			if err := nsp.Emit("second"); err != nil {
				t.Error(err)
			}
		}
	})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := testutil.JoinSIO(ctx, ts.URL+"/socket.io/", 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Send(ctx, "1") // closed by the client, the session goes at once
	if err := nsp.Emit("first"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"first", "second"} {
		select {
		case got := <-echoed:
			if got != want {
				t.Fatalf("got %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("no %q", want)
		}
	}
}
