package plainws

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"siogo/engineio"
	"siogo/internal/testutil"
)

// recorder is an engineio.Observer that keeps what it is told.
type recorder struct {
	mu      sync.Mutex
	opened  map[string]int // transport
	closed  map[string]int // reason
	refused map[int]int
	drops   int
	rate    int
	changed chan struct{}
}

func newRecorder() *recorder {
	return &recorder{opened: map[string]int{}, closed: map[string]int{}, refused: map[int]int{}, changed: make(chan struct{})}
}

func (r *recorder) update(f func()) {
	r.mu.Lock()
	f()
	close(r.changed)
	r.changed = make(chan struct{})
	r.mu.Unlock()
}

func (r *recorder) SessionOpened(transport string, protocol int) {
	r.update(func() { r.opened[fmt.Sprint(transport, protocol)]++ })
}
func (r *recorder) SessionUpgraded(int) {}
func (r *recorder) SessionClosed(transport string, protocol int, reason string) {
	r.update(func() { r.closed[reason]++ })
}
func (r *recorder) QueueOverflow()          { r.update(func() { r.drops++ }) }
func (r *recorder) PacketRateExceeded()     { r.update(func() { r.rate++ }) }
func (r *recorder) RequestRefused(code int) { r.update(func() { r.refused[code]++ }) }
func (r *recorder) PollHandedOff()          {}

// waitClosed waits until a connection has closed for reason.
func (r *recorder) waitClosed(t *testing.T, reason string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		n, changed := r.closed[reason], r.changed
		r.mu.Unlock()
		if n > 0 {
			return
		}
		select {
		case <-changed:
		case <-timeout:
			t.Fatalf("no connection closed for %q within 10s", reason)
		}
	}
}

// echo is a Handler that sends each message back, prefixed, on its
// connection, and reports how the connection ended.
type echo struct {
	c      *Conn
	closed chan string
}

func (e *echo) OnMessage(data []byte, binary bool) {
	e.c.Send(engineio.Message{Data: append([]byte("echo: "), data...)})
}
func (e *echo) OnClose(reason string) { e.closed <- reason }

type fixture struct {
	srv    *Server
	url    string
	obs    *recorder
	conns  chan *Conn
	closed chan string // the reason of every connection's end
}

// start serves a plain endpoint under cfg (on top of the Engine.IO
// defaults), whose connections echo.
func start(t *testing.T, cfg engineio.Config) *fixture {
	t.Helper()
	f := &fixture{obs: newRecorder(), conns: make(chan *Conn, 100), closed: make(chan string, 100)}
	cfg.Observer = f.obs
	f.srv = NewServer(engineio.NewServer(cfg, nil), func(c *Conn) (engineio.Handler, error) {
		f.conns <- c
		return &echo{c: c, closed: f.closed}, nil
	})
	ts := httptest.NewServer(f.srv)
	t.Cleanup(func() {
		f.srv.Close(context.Background())
		ts.Close()
	})
	f.url = "ws" + strings.TrimPrefix(ts.URL, "http") + "/plain?x=1"
	return f
}

func dial(t *testing.T, url string) *testutil.PlainClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := testutil.DialPlain(ctx, url, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func next(t *testing.T, c *testutil.PlainClient) (ws.OpCode, []byte, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Next(ctx)
}

// roundTrip sends text and waits for its echo.
func roundTrip(t *testing.T, c *testutil.PlainClient, text string) {
	t.Helper()
	if err := c.Send(text); err != nil {
		t.Fatalf("send %q: %v", text, err)
	}
	op, data, err := next(t, c)
	if err != nil || op != ws.OpText || string(data) != "echo: "+text {
		t.Fatalf("after sending %q: %v %q %v, want the echo", text, op, data, err)
	}
}

// wantClose reads until the server's close frame and checks its code and
// reason.
func wantClose(t *testing.T, c *testutil.PlainClient, code ws.StatusCode, reason string) {
	t.Helper()
	for {
		_, _, err := next(t, c)
		var closed wsutil.ClosedError
		if errors.As(err, &closed) {
			if closed.Code != code || closed.Reason != reason {
				t.Errorf("close frame %d %q, want %d %q", closed.Code, closed.Reason, code, reason)
			}
			return
		}
		if err != nil {
			t.Fatalf("want close frame %d %q, got %v", code, reason, err)
		}
	}
}

func TestPlainEcho(t *testing.T) {
	f := start(t, engineio.Config{})
	c := dial(t, f.url)
	conn := <-f.conns
	if conn.Transport() != Transport || conn.ID() == "" || conn.Request().URL.RawQuery != "x=1" {
		t.Errorf("connection %q on %q, request %v", conn.ID(), conn.Transport(), conn.Request().URL)
	}
	roundTrip(t, c, "hello")
	roundTrip(t, c, "안녕하세요 😀")
	// A fragmented message is one message.
	c.WriteFrame(ws.NewFrame(ws.OpText, false, []byte("frag")))
	c.WriteFrame(ws.NewFrame(ws.OpContinuation, true, []byte("mented")))
	if _, data, err := next(t, c); err != nil || string(data) != "echo: fragmented" {
		t.Errorf("fragmented message: %q, %v", data, err)
	}
	// Binary messages the server sends arrive as binary frames.
	conn.Send(engineio.Message{Data: []byte{1, 2, 3}, Binary: true})
	if op, data, err := next(t, c); err != nil || op != ws.OpBinary || !bytes.Equal(data, []byte{1, 2, 3}) {
		t.Errorf("binary message: %v %v %v", op, data, err)
	}
	if n := f.srv.Len(); n != 1 {
		t.Errorf("Len %d, want 1", n)
	}
	f.obs.mu.Lock()
	opened := f.obs.opened["plain0"]
	f.obs.mu.Unlock()
	if opened != 1 {
		t.Errorf("observer told of %d plain connections, want 1", opened)
	}
}

// TestPlainConnectBeforeOpen: what the server sends while connecting is
// the first thing the client reads once its WebSocket opens, and a refusal
// reaches the client as close code 1008 with the reason.
func TestPlainConnectBeforeOpen(t *testing.T) {
	srv := NewServer(engineio.NewServer(engineio.Config{}, nil), func(c *Conn) (engineio.Handler, error) {
		if c.Request().URL.Query().Get("refuse") != "" {
			return nil, errors.New("chat: cannot allocate a client id: redis down")
		}
		c.Send(engineio.Message{Data: []byte("welcome")})
		return &echo{c: c, closed: make(chan string, 1)}, nil
	})
	ts := httptest.NewServer(srv)
	defer ts.Close()
	defer srv.Close(context.Background())
	url := "ws" + strings.TrimPrefix(ts.URL, "http") + "/"

	c := dial(t, url)
	if _, data, err := next(t, c); err != nil || string(data) != "welcome" {
		t.Errorf("first message %q, %v; want welcome", data, err)
	}
	roundTrip(t, c, "hi")

	refused := dial(t, url+"?refuse=1")
	wantClose(t, refused, ws.StatusPolicyViolation, "chat: cannot allocate a client id: redis down")
}

// TestPlainBadInput: each kind of bad input cuts its sender off with the
// close code that names it, while another client keeps going.
func TestPlainBadInput(t *testing.T) {
	const maxPayload, rate = 100, 20
	f := start(t, engineio.Config{MaxPayload: maxPayload, MaxPacketsPerSecond: rate})
	witness := dial(t, f.url)
	<-f.conns
	roundTrip(t, witness, "before")
	for _, tc := range []struct {
		name   string
		send   func(c *testutil.PlainClient)
		code   ws.StatusCode
		reason string
	}{
		{"binary", func(c *testutil.PlainClient) { c.WriteMessage(ws.OpBinary, []byte{1, 2}) }, ws.StatusUnsupportedData, "binary messages not accepted"},
		{"invalid UTF-8", func(c *testutil.PlainClient) { c.WriteMessage(ws.OpText, []byte("ok \xff\xfe")) }, ws.StatusInvalidFramePayloadData, "invalid UTF-8"},
		{"oversized", func(c *testutil.PlainClient) { c.Send(strings.Repeat("x", maxPayload+1)) }, ws.StatusMessageTooBig, "message too big"},
		{"oversized in fragments", func(c *testutil.PlainClient) {
			op := ws.OpText
			for range 3 {
				c.WriteFrame(ws.NewFrame(op, false, bytes.Repeat([]byte("y"), maxPayload/2)))
				op = ws.OpContinuation
			}
		}, ws.StatusMessageTooBig, "message too big"},
		{"flood", func(c *testutil.PlainClient) {
			for i := range 3 * rate {
				if c.Send(fmt.Sprint("flood ", i)) != nil {
					return
				}
			}
		}, ws.StatusPolicyViolation, "packet rate limit exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := dial(t, f.url)
			<-f.conns
			tc.send(c)
			wantClose(t, c, tc.code, tc.reason)
			if reason := <-f.closed; reason != tc.reason {
				t.Errorf("handler told %q, want %q", reason, tc.reason)
			}
			f.obs.waitClosed(t, tc.reason)
			roundTrip(t, witness, "still here after "+tc.name)
		})
	}
	f.obs.mu.Lock()
	defer f.obs.mu.Unlock()
	if f.obs.rate != 1 {
		t.Errorf("observer told of %d packet-rate drops, want 1", f.obs.rate)
	}
}

// TestPlainHeartbeat: the server pings every interval; a client that
// answers stays, one that does not is cut off after the timeout.
func TestPlainHeartbeat(t *testing.T) {
	f := start(t, engineio.Config{PingInterval: 20 * time.Millisecond, PingTimeout: 200 * time.Millisecond})
	alive := dial(t, f.url)
	<-f.conns
	silent := dial(t, f.url)
	<-f.conns
	silent.IgnorePings = true

	// Both clients read all along; only the alive one answers pings.
	read := func(c *testutil.PlainClient) <-chan error {
		ended := make(chan error, 1)
		go func() {
			for {
				if _, _, err := c.Next(context.Background()); err != nil {
					ended <- err
					return
				}
			}
		}()
		return ended
	}
	aliveEnded := read(alive)
	silentEnded := read(silent)

	f.obs.waitClosed(t, "ping timeout")
	if err := <-silentEnded; err == nil {
		t.Error("silent client still connected")
	}
	if reason := <-f.closed; reason != "ping timeout" {
		t.Errorf("handler told %q, want ping timeout", reason)
	}
	// By then the alive client has been pinged many times over, and it is
	// still there.
	if n := alive.Pings.Load(); n < 5 {
		t.Errorf("alive client pinged %d times in a ping timeout of 10 intervals", n)
	}
	select {
	case err := <-aliveEnded:
		t.Fatalf("alive client cut off: %v", err)
	default:
	}
	if f.srv.Len() != 1 {
		t.Errorf("%d connections, want the alive one", f.srv.Len())
	}
}

// TestPlainSlowConsumer: a client that reads nothing is cut off once its
// queue is full; Send never waits for it.
func TestPlainSlowConsumer(t *testing.T) {
	f := start(t, engineio.Config{MaxQueuedPackets: 16})
	stalled := dial(t, f.url)
	conn := <-f.conns
	_ = stalled // never reads
	big := engineio.Message{Data: bytes.Repeat([]byte("z"), 64<<10)}
	var err error
	for i := 0; err == nil && i < 100000; i++ {
		err = conn.Send(big)
	}
	if !errors.Is(err, engineio.ErrQueueFull) {
		t.Fatalf("Send: %v, want ErrQueueFull", err)
	}
	// Broadcasts that come before the connection is gone are refused too,
	// without counting the client again.
	if err := conn.Send(big); !errors.Is(err, engineio.ErrQueueFull) && !errors.Is(err, engineio.ErrClosed) {
		t.Errorf("Send after the overflow: %v", err)
	}
	if reason := <-f.closed; reason != "send queue full" {
		t.Errorf("handler told %q", reason)
	}
	f.obs.mu.Lock()
	drops := f.obs.drops
	f.obs.mu.Unlock()
	if drops != 1 {
		t.Errorf("observer told of %d queue overflows, want 1", drops)
	}
}

// TestPlainRefusals: the origin check, AllowRequest and a request that is
// not a WebSocket.
func TestPlainRefusals(t *testing.T) {
	f := start(t, engineio.Config{
		AllowedOrigins: []string{"https://allowed.example"},
		AllowRequest: func(r *http.Request) error {
			if r.URL.Query().Get("full") != "" {
				return &engineio.RequestError{Status: http.StatusServiceUnavailable, Message: "connection limit reached (1)"}
			}
			return nil
		},
	})
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		url    string
		origin string
		status int
	}{
		{"foreign origin", f.url, "https://evil.example", http.StatusForbidden},
		{"over the limit", f.url + "&full=1", "", http.StatusServiceUnavailable},
	} {
		h := http.Header{}
		if tc.origin != "" {
			h.Set("Origin", tc.origin)
		}
		_, err := testutil.DialPlain(ctx, tc.url, h)
		var se ws.StatusError
		if !errors.As(err, &se) || int(se) != tc.status {
			t.Errorf("%s: %v, want %d", tc.name, err, tc.status)
		}
	}
	c, err := testutil.DialPlain(ctx, f.url, http.Header{"Origin": {"https://allowed.example"}})
	if err != nil {
		t.Fatalf("allowed origin: %v", err)
	}
	c.Close()
	resp, err := http.Get("http" + strings.TrimPrefix(f.url, "ws"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired {
		t.Errorf("plain GET: %s, want 426", resp.Status)
	}
	f.obs.mu.Lock()
	defer f.obs.mu.Unlock()
	if f.obs.refused[403] != 1 || f.obs.refused[503] != 1 {
		t.Errorf("refusals counted %v, want one 403 and one 503", f.obs.refused)
	}
}

// TestPlainClose: Conn.Close ends with 1000 and the reason after what is
// queued; Server.Close ends every connection with 1001 and refuses new
// ones.
func TestPlainClose(t *testing.T) {
	f := start(t, engineio.Config{})
	a := dial(t, f.url)
	ca := <-f.conns
	b := dial(t, f.url)
	cb := <-f.conns

	ca.Send(engineio.Message{Data: []byte("last words")})
	ca.Close("bye")
	if _, data, err := next(t, a); err != nil || string(data) != "last words" {
		t.Errorf("before the close: %q, %v", data, err)
	}
	wantClose(t, a, ws.StatusNormalClosure, "bye")

	cb.Send(engineio.Message{Data: []byte("queued before shutdown")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := f.srv.Close(ctx); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, data, err := next(t, b); err != nil || string(data) != "queued before shutdown" {
		t.Errorf("before the shutdown: %q, %v", data, err)
	}
	wantClose(t, b, ws.StatusGoingAway, "server shutting down")
	if n := f.srv.Len(); n != 0 {
		t.Errorf("%d connections left", n)
	}
	_, err := testutil.DialPlain(ctx, f.url, nil)
	var se ws.StatusError
	if !errors.As(err, &se) || int(se) != http.StatusServiceUnavailable {
		t.Errorf("dial after Close: %v, want 503", err)
	}
}
