package socketio

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"siogo/engineio"
)

// rawTestConn is a RawConn that records what it is sent and, like a real
// transport, tells its handler when it is closed.
type rawTestConn struct {
	id string

	mu      sync.Mutex
	handler engineio.Handler
	sent    []engineio.Message
	closed  string
	changed chan struct{} // closed and replaced on every Send and Close
}

func newRawTestConn(id string) *rawTestConn {
	return &rawTestConn{id: id, changed: make(chan struct{})}
}

func (c *rawTestConn) ID() string        { return c.id }
func (c *rawTestConn) Transport() string { return "test" }
func (c *rawTestConn) Request() engineio.RequestInfo {
	return engineio.RequestInfo{
		RemoteAddr: "192.0.2.1:1234",
		Host:       "example.com",
		URL:        &url.URL{Path: "/plain", RawQuery: "room=a"},
		Header:     http.Header{"User-Agent": {"test"}},
		Time:       time.Unix(1700000000, 0),
	}
}

func (c *rawTestConn) Send(msgs ...engineio.Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed != "" {
		return engineio.ErrClosed
	}
	c.sent = append(c.sent, msgs...)
	close(c.changed)
	c.changed = make(chan struct{})
	return nil
}

func (c *rawTestConn) Close(reason string) {
	c.mu.Lock()
	if c.closed != "" {
		c.mu.Unlock()
		return
	}
	c.closed = reason
	h := c.handler
	close(c.changed)
	c.changed = make(chan struct{})
	c.mu.Unlock()
	if h != nil {
		h.OnClose(reason)
	}
}

// waitSent waits until the connection has been sent n messages and returns
// them.
func (c *rawTestConn) waitSent(t *testing.T, n int) []engineio.Message {
	t.Helper()
	timeout := time.After(5 * time.Second)
	for {
		c.mu.Lock()
		sent, changed := c.sent, c.changed
		c.mu.Unlock()
		if len(sent) >= n {
			return sent
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("%s: %d messages after 5s, want %d", c.id, len(sent), n)
		}
	}
}

func (c *rawTestConn) closeReason() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// connectRaw attaches a new rawTestConn to nsp, the way a transport does.
func connectRaw(t *testing.T, nsp *Namespace, id, event string) (*rawTestConn, engineio.Handler) {
	t.Helper()
	c := newRawTestConn(id)
	h, err := nsp.ConnectRaw(c, event)
	if err != nil {
		t.Fatalf("ConnectRaw %s: %v", id, err)
	}
	c.mu.Lock()
	c.handler = h
	c.mu.Unlock()
	return c, h
}

func newRawTestServer(t *testing.T) *Server {
	t.Helper()
	srv := NewServer(Options{})
	t.Cleanup(func() { srv.Close(context.Background()) })
	return srv
}

// TestConnectRawChat: messages from raw connections become events; a
// broadcast reaches every raw socket as the JSON of its first argument,
// computed once and shared by all of them.
func TestConnectRawChat(t *testing.T) {
	srv := newRawTestServer(t)
	nsp := srv.Of("/")
	type heard struct {
		From string `json:"from"`
		Text string `json:"text"`
	}
	nsp.OnEvent("say", func(s *Socket, m *Message) {
		var text string
		if len(m.Args) != 1 || json.Unmarshal(m.Args[0], &text) != nil {
			t.Errorf("say: args %q, want one string", m.Args)
			return
		}
		if m.WantsAck() {
			t.Errorf("a raw message wants an ack")
		}
		nsp.Emit("heard", heard{string(s.ID()), text}, "second argument, not sent")
	})
	a, ha := connectRaw(t, nsp, "conn-a", "say")
	b, _ := connectRaw(t, nsp, "conn-b", "say")
	if nsp.Len() != 2 {
		t.Fatalf("namespace has %d sockets, want 2", nsp.Len())
	}

	const text = `hi <&> "quoted" 안녕 😀`
	ha.OnMessage([]byte(text), false)
	ma, mb := a.waitSent(t, 1)[0], b.waitSent(t, 1)[0]
	var got heard
	if err := json.Unmarshal(ma.Data, &got); err != nil || ma.Binary {
		t.Fatalf("a got %q (binary %v): %v", ma.Data, ma.Binary, err)
	}
	if got != (heard{"conn-a", text}) {
		t.Errorf("a got %+v", got)
	}
	if !bytes.Equal(ma.Data, mb.Data) || unsafe.SliceData(ma.Data) != unsafe.SliceData(mb.Data) {
		t.Errorf("a and b got different bytes (%q, %q): the raw form was not shared", ma.Data, mb.Data)
	}

	sock, ok := nsp.Socket("conn-a")
	if !ok {
		t.Fatal("socket conn-a not found")
	}
	if sock.Protocol() != 0 || sock.Transport() != "test" || sock.SessionID() != "conn-a" {
		t.Errorf("socket reports protocol %d, transport %q, session %q", sock.Protocol(), sock.Transport(), sock.SessionID())
	}
	if hs := sock.Handshake(); hs.Address != "192.0.2.1:1234" || hs.Query.Get("room") != "a" || string(hs.Auth) != "{}" {
		t.Errorf("handshake %+v", hs)
	}
}

// TestConnectRawForms: binary arguments both ways, an event with no
// argument, a unicast emit, and acknowledgements that never come.
func TestConnectRawForms(t *testing.T) {
	srv := newRawTestServer(t)
	nsp := srv.Of("/")
	got := make(chan *Message, 1)
	nsp.OnEvent("in", func(s *Socket, m *Message) { got <- m })
	c, h := connectRaw(t, nsp, "conn", "in")

	in := []byte{0, 1, 2, 0xff}
	h.OnMessage(in, true)
	m := <-got
	in[0] = 9 // the handler's copy must not change
	if len(m.Args) != 1 || string(m.Args[0]) != `{"_placeholder":true,"num":0}` || len(m.Attachments) != 1 || !bytes.Equal(m.Attachments[0], []byte{0, 1, 2, 0xff}) {
		t.Errorf("binary message: args %q, attachments %v", m.Args, m.Attachments)
	}

	sock, _ := nsp.Socket("conn")
	nsp.Emit("bin", []byte{7, 8})
	nsp.Emit("empty")
	sock.Emit("unicast", map[string]int{"n": 1})
	sent := c.waitSent(t, 3)
	want := []engineio.Message{{Data: []byte{7, 8}, Binary: true}, {Data: []byte("null")}, {Data: []byte(`{"n":1}`)}}
	for i, w := range want {
		if !bytes.Equal(sent[i].Data, w.Data) || sent[i].Binary != w.Binary {
			t.Errorf("message %d: %q (binary %v), want %q (binary %v)", i, sent[i].Data, sent[i].Binary, w.Data, w.Binary)
		}
	}

	acked := make(chan error, 1)
	sock.EmitWithAck("question", 20*time.Millisecond, func(_ []json.RawMessage, _ [][]byte, err error) { acked <- err }, "?")
	if err := <-acked; !errors.Is(err, ErrAckTimeout) {
		t.Errorf("ack: %v, want ErrAckTimeout", err)
	}
}

// TestConnectRawRooms: raw sockets are in rooms like any other.
func TestConnectRawRooms(t *testing.T) {
	srv := newRawTestServer(t)
	nsp := srv.Of("/")
	a, _ := connectRaw(t, nsp, "a", "in")
	b, _ := connectRaw(t, nsp, "b", "in")
	sa, _ := nsp.Socket("a")
	sa.Join("room")
	nsp.To("room").Emit("x", 1)
	nsp.Except("room").Emit("x", 2)
	if sent := a.waitSent(t, 1); string(sent[0].Data) != "1" {
		t.Errorf("a got %q, want 1", sent[0].Data)
	}
	if sent := b.waitSent(t, 1); string(sent[0].Data) != "2" {
		t.Errorf("b got %q, want 2", sent[0].Data)
	}
	all, err := nsp.FetchSockets(context.Background())
	if err != nil || len(all) != 2 {
		t.Errorf("FetchSockets: %d sockets, %v", len(all), err)
	}
}

// TestConnectRawRefused: a middleware's error refuses the connection and
// leaves no socket behind.
func TestConnectRawRefused(t *testing.T) {
	srv := newRawTestServer(t)
	nsp := srv.Of("/")
	nsp.Use(func(s *Socket, auth json.RawMessage) error {
		if auth != nil {
			t.Errorf("middleware got auth %q, want nil", auth)
		}
		if s.Handshake().Headers.Get("User-Agent") != "test" {
			t.Errorf("middleware sees headers %v", s.Handshake().Headers)
		}
		return &ConnectError{Message: "not today"}
	})
	connected := false
	nsp.OnConnect(func(*Socket) { connected = true })
	h, err := nsp.ConnectRaw(newRawTestConn("c"), "in")
	if err == nil || err.Error() != "not today" || h != nil {
		t.Errorf("ConnectRaw: %v, %v; want the middleware's error", h, err)
	}
	if connected || nsp.Len() != 0 {
		t.Errorf("a refused connection left a socket (connect handler ran: %v, %d sockets)", connected, nsp.Len())
	}
}

// TestConnectRawClose: the connection's end disconnects the socket, and
// disconnecting the socket closes its connection.
func TestConnectRawClose(t *testing.T) {
	srv := newRawTestServer(t)
	nsp := srv.Of("/")
	reasons := make(chan string, 2)
	nsp.OnDisconnect(func(s *Socket, reason string) { reasons <- string(s.ID()) + ": " + reason })
	nsp.OnEvent("boom", func(*Socket, *Message) { panic("boom") })

	_, h := connectRaw(t, nsp, "a", "in")
	h.OnClose("transport close")
	if r := <-reasons; r != "a: transport close" {
		t.Errorf("disconnect %q", r)
	}

	b, _ := connectRaw(t, nsp, "b", "in")
	sb, _ := nsp.Socket("b")
	sb.Disconnect(false)
	if r := <-reasons; r != "b: server namespace disconnect" {
		t.Errorf("disconnect %q", r)
	}
	if b.closeReason() != "server namespace disconnect" {
		t.Errorf("connection closed with %q", b.closeReason())
	}

	c, hc := connectRaw(t, nsp, "c", "boom")
	hc.OnMessage([]byte("x"), false)
	if c.closeReason() != "handler panic" {
		t.Errorf("after a panicking handler the connection closed with %q", c.closeReason())
	}
	if nsp.Len() != 0 {
		t.Errorf("%d sockets left", nsp.Len())
	}
}

// countingRawConn counts what it is sent and allocates nothing.
type countingRawConn struct {
	rawTestConn
	n atomic.Int64
}

func (c *countingRawConn) Send(msgs ...engineio.Message) error {
	c.n.Add(int64(len(msgs)))
	return nil
}

// BenchmarkBroadcastEnqueueRaw is BenchmarkBroadcastEnqueue for raw
// sockets: allocs/op is the same for 10 and 1000 recipients, because the
// raw form is computed once per broadcast.
func BenchmarkBroadcastEnqueueRaw(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("recipients=%d", n), func(b *testing.B) {
			srv := NewServer(Options{})
			defer srv.Close(context.Background())
			nsp := srv.Of("/")
			conns := make([]*countingRawConn, n)
			for i := range conns {
				conns[i] = &countingRawConn{rawTestConn: rawTestConn{id: fmt.Sprint(i)}}
				if _, err := nsp.ConnectRaw(conns[i], "in"); err != nil {
					b.Fatal(err)
				}
			}
			line := struct {
				ClientID int    `json:"clientID"`
				Message  string `json:"message"`
			}{7, "hello, everyone"}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				nsp.Emit("clientReceiver", line)
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N)*float64(n)/b.Elapsed().Seconds(), "enqueues/s")
			if got := conns[n-1].n.Load(); got != int64(b.N) {
				b.Fatalf("last socket got %d messages, want %d", got, b.N)
			}
		})
	}
}
