package server

// Hostile-input tests of the assembled chat server, in process, on a real
// loopback listener served by Serve (so the HTTP server's timeouts are the
// real ones): malformed clients next to a chat that must not notice them,
// session and goroutine leaks over many connect/disconnect cycles, floods of
// unknown sids and handshakes, and requests that never finish.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"siogo/engineio"
	"siogo/internal/testutil"
	"siogo/socketio"
)

// logBuffer collects the server's log lines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// chatServer is a running in-process chat server.
type chatServer struct {
	srv  *Server
	addr string
	url  string // http://addr
	eio  string // the Socket.IO endpoint, url + "/socket.io/"
	logs *logBuffer
}

// startServer runs New(cfg) with Serve on a loopback port until the test
// ends, then shuts it down and waits for Serve to return.
func startServer(t *testing.T, cfg Config) *chatServer {
	t.Helper()
	logs := &logBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		if strings.Contains(logs.String(), "panic") {
			t.Errorf("the server logged a panic:\n%s", logs.String())
		}
	})
	u := "http://" + ln.Addr().String()
	// One request proves the server is accepting, so that goroutine counts
	// taken from here on include its accept loop.
	resp, err := (&http.Client{Transport: &http.Transport{DisableKeepAlives: true}}).Get(u + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return &chatServer{srv: srv, addr: ln.Addr().String(), url: u, eio: u + "/socket.io/", logs: logs}
}

func (s *chatServer) sessions() int { return s.srv.SocketIO().Engine().SessionCount() }

// waitUntil polls a condition the server offers no event for, within a
// bound.
func waitUntil(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// chatLine is the clientReceiver payload.
type chatLine struct {
	ClientID *int64 `json:"clientID"`
	Message  string `json:"message"`
}

func emitChat(ctx context.Context, c *testutil.EIOClient, text string) error {
	b, _ := json.Marshal([]string{"serverReceiver", text})
	return c.Send(ctx, "42"+string(b))
}

// nextLine returns the next clientReceiver line, skipping other packets.
func nextLine(ctx context.Context, c *testutil.EIOClient) (chatLine, error) {
	for {
		p, err := c.Next(ctx)
		if err != nil {
			return chatLine{}, err
		}
		var ev []json.RawMessage
		if p.Binary || !bytes.HasPrefix(p.Data, []byte("2")) || json.Unmarshal(p.Data[1:], &ev) != nil || len(ev) != 2 || string(ev[0]) != `"clientReceiver"` {
			continue
		}
		var l chatLine
		if err := json.Unmarshal(ev[1], &l); err != nil || l.ClientID == nil {
			return chatLine{}, fmt.Errorf("bad clientReceiver payload %s", ev[1])
		}
		return l, nil
	}
}

// TestMalformedClientsDoNotDisturbChat runs every hostile case while three
// well-behaved clients (one per transport mode and both revisions) chat;
// the chatters must receive every line, in order, and each hostile session
// must be closed by the server.
func TestMalformedClientsDoNotDisturbChat(t *testing.T) {
	const maxPayload = 10000
	s := startServer(t, Config{Socket: socketio.Options{Engine: engineio.Config{MaxPayload: maxPayload}}})
	ctx := ctxFor(t, 60*time.Second)
	type chatter struct {
		name string
		c    *testutil.EIOClient
	}
	var chatters []chatter
	for _, cfg := range []struct {
		protocol int
		mode     string
	}{{4, "websocket"}, {3, "polling"}, {4, "upgrade"}} {
		c, err := testutil.JoinSIO(ctx, s.eio, cfg.protocol, cfg.mode, nil)
		if err != nil {
			t.Fatalf("EIO%d %s chatter: %v", cfg.protocol, cfg.mode, err)
		}
		defer c.Close(ctx)
		chatters = append(chatters, chatter{fmt.Sprintf("EIO%d-%s", cfg.protocol, cfg.mode), c})
	}

	cases := testutil.HostileCases(maxPayload)
	hostileDone := make(chan struct{})
	var failures []string
	go func() {
		defer close(hostileDone)
		for _, hc := range cases {
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			err := hc.Run(cctx, s.eio)
			cancel()
			if err != nil {
				failures = append(failures, fmt.Sprintf("%s: %v", hc.Name, err))
			}
		}
	}()

	// Chat until every hostile case has run, and at least 20 lines.
	sent := 0
	var senderID int64 = -1
	for done := false; !done || sent < 20; sent++ {
		select {
		case <-hostileDone:
			done = true
		default:
		}
		from := chatters[sent%len(chatters)]
		text := fmt.Sprintf("line %d from %s", sent, from.name)
		if err := emitChat(ctx, from.c, text); err != nil {
			t.Fatalf("%s emitting: %v", from.name, err)
		}
		for _, ch := range chatters {
			l, err := nextLine(ctx, ch.c)
			if err != nil {
				t.Fatalf("%s waiting for %q: %v", ch.name, text, err)
			}
			if l.Message != text {
				t.Fatalf("%s received %q, want %q", ch.name, l.Message, text)
			}
			if ch.c == from.c && sent < len(chatters) {
				if senderID >= *l.ClientID {
					t.Errorf("clientIDs not increasing in join order: %d after %d", *l.ClientID, senderID)
				}
				senderID = *l.ClientID
			}
		}
	}
	<-hostileDone
	for _, f := range failures {
		t.Error(f)
	}
	t.Logf("%d hostile cases ran while %d lines went to %d chatters", len(cases), sent, len(chatters))
	waitUntil(t, 10*time.Second, "the hostile sessions to be gone", func() bool { return s.sessions() == len(chatters) })
}

// pollingClient returns an HTTP client with its own connection pool, so its
// idle connections can be closed at the end.
func pollingClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 16}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// TestNoLeaksAfterManyCycles connects and disconnects 1,000 clients (both
// revisions, polling, WebSocket and upgraded, leaving in several ways) and
// checks that sessions and goroutines return to where they started.
func TestNoLeaksAfterManyCycles(t *testing.T) {
	s := startServer(t, Config{})
	hc := pollingClient(t)
	baseline := runtime.NumGoroutine()
	ctx := ctxFor(t, 120*time.Second)

	const cycles, workers = 1000, 4
	modes := []string{"polling", "websocket", "upgrade"}
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= cycles {
					return
				}
				protocol := 3 + i%2
				mode := modes[(i/2)%len(modes)]
				if err := cycle(ctx, s.eio, protocol, mode, i, hc); err != nil {
					errs <- fmt.Errorf("cycle %d (EIO%d %s): %w", i, protocol, mode, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	hc.CloseIdleConnections()
	waitUntil(t, 10*time.Second, "every session to end", func() bool { return s.sessions() == 0 })
	var n int
	deadline := time.Now().Add(15 * time.Second)
	for n = runtime.NumGoroutine(); n > baseline && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	if n > baseline {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after %d cycles, %d before:\n%s", n, cycles, baseline, buf)
	}
}

// cycle is one client's life: join, sometimes chat, leave.
func cycle(ctx context.Context, endpoint string, protocol int, mode string, i int, hc *http.Client) error {
	c, err := testutil.JoinSIO(ctx, endpoint, protocol, mode, hc)
	if err != nil {
		return err
	}
	if i%5 == 0 {
		text := fmt.Sprintf("cycle %d", i)
		if err := emitChat(ctx, c, text); err != nil {
			return err
		}
		// Lines of concurrent cycles may come first.
		for {
			l, err := nextLine(ctx, c)
			if err != nil {
				return fmt.Errorf("waiting for %q: %w", text, err)
			}
			if l.Message == text {
				break
			}
		}
	}
	switch {
	case c.WS() == nil:
		// Leave the namespace, then close the session.
		return c.Send(ctx, "41", "1")
	case i%3 == 0:
		// A clean WebSocket close.
		c.WS().WriteFrame(ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))))
		return c.WS().Close()
	default:
		// The connection just drops.
		return c.WS().Close()
	}
}

// TestUnknownSIDFlood sends 10,000 requests with made-up sids (GETs, POSTs
// and WebSocket upgrades); each must get 400 code 1 at once and none may
// create a session.
func TestUnknownSIDFlood(t *testing.T) {
	s := startServer(t, Config{})
	hc := pollingClient(t)
	ctx := ctxFor(t, 60*time.Second)
	const total, workers = 10000, 4
	var next, wrong atomic.Int64
	var firstWrong atomic.Value
	start := time.Now()
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				sid := fmt.Sprintf("nosuchsid%011d", i)
				var status int
				var body []byte
				switch i % 10 {
				case 0:
					_, err := testutil.DialWS(ctx, testutil.WSURL(testutil.EIOURL(s.eio, 4, "websocket", sid)))
					var se ws.StatusError
					if errors.As(err, &se) {
						status = int(se)
					}
					body = []byte(`{"code":1}`)
				default:
					method := http.MethodGet
					if i%2 == 1 {
						method = http.MethodPost
					}
					req, _ := http.NewRequestWithContext(ctx, method, testutil.EIOURL(s.eio, 3+int(i/2%2), "polling", sid), strings.NewReader("1:2"))
					resp, err := hc.Do(req)
					if err == nil {
						status = resp.StatusCode
						body, _ = io.ReadAll(resp.Body)
						resp.Body.Close()
					}
				}
				if status != http.StatusBadRequest || !bytes.Contains(body, []byte(`"code":1`)) {
					if wrong.Add(1) == 1 {
						firstWrong.Store(fmt.Sprintf("request %d: %d %q", i, status, body))
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if n := wrong.Load(); n > 0 {
		t.Fatalf("%d of %d requests not answered 400 code 1; first: %v", n, total, firstWrong.Load())
	}
	if s.sessions() != 0 {
		t.Errorf("%d sessions exist after unknown-sid requests", s.sessions())
	}
	// Generous for a shared machine under the race detector; a refusal
	// that waited on anything (a timer, a lock held by a poll) would blow it.
	if elapsed > 30*time.Second {
		t.Errorf("%d refusals took %v", total, elapsed)
	}
	t.Logf("%d unknown-sid requests refused in %v (%.0f/s)", total, elapsed, total/elapsed.Seconds())
	// And the server still serves.
	c, err := testutil.JoinSIO(ctx, s.eio, 4, "websocket", nil)
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
}

// rawConn opens a plain TCP connection to the server.
func rawConn(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readUntilClosed reads what the server sends until it closes the
// connection, failing if that takes longer than limit.
func readUntilClosed(t *testing.T, conn net.Conn, limit time.Duration) (string, time.Duration) {
	t.Helper()
	start := time.Now()
	conn.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the server kept the connection open for %v (read so far %q)", limit, b)
	}
	return string(b), time.Since(start)
}

// TestStalledRequestsAreCut: a POST whose body never finishes is cut off by
// the server's read timeout, which also ends its session; a request whose
// headers never finish is cut off by the header timeout. The chat goes on
// meanwhile.
func TestStalledRequestsAreCut(t *testing.T) {
	const readHeaderTimeout = 300 * time.Millisecond
	cfg := Config{
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       time.Second,
		Socket: socketio.Options{Engine: engineio.Config{
			PingInterval: 100 * time.Millisecond,
			PingTimeout:  500 * time.Millisecond,
		}},
	}
	s := startServer(t, cfg)
	// The HTTP server's read deadline is stretched to outlast a held poll,
	// but a POST body gets only ReadTimeout to arrive.
	effectiveRead := max(cfg.ReadTimeout, cfg.Socket.Engine.PingInterval+cfg.Socket.Engine.PingTimeout+5*time.Second)
	ctx := ctxFor(t, 60*time.Second)

	t.Run("headers", func(t *testing.T) {
		t.Parallel()
		conn := rawConn(t, s.addr)
		io.WriteString(conn, "GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nX-Slow: ")
		out, took := readUntilClosed(t, conn, readHeaderTimeout+5*time.Second)
		t.Logf("closed after %v with %q", took, firstLine(out))
	})
	t.Run("body", func(t *testing.T) {
		t.Parallel()
		c, err := testutil.JoinSIO(ctx, s.eio, 4, "polling", nil)
		if err != nil {
			t.Fatal(err)
		}
		conn := rawConn(t, s.addr)
		fmt.Fprintf(conn, "POST /socket.io/?EIO=4&transport=polling&sid=%s HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n42[\"serverR", c.SID())
		// A well-behaved client chats while the POST hangs.
		other, err := testutil.JoinSIO(ctx, s.eio, 4, "websocket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close(ctx)
		if err := emitChat(ctx, other, "while a POST hangs"); err != nil {
			t.Fatal(err)
		}
		if l, err := nextLine(ctx, other); err != nil || l.Message != "while a POST hangs" {
			t.Fatalf("chat during the stalled POST: %v %v", l, err)
		}
		out, took := readUntilClosed(t, conn, effectiveRead+10*time.Second)
		t.Logf("stalled POST cut after %v (read timeout %v) with %q", took, cfg.ReadTimeout, firstLine(out))
		if took > cfg.ReadTimeout+3*time.Second {
			t.Errorf("stalled POST held for %v, beyond the %v read timeout", took, cfg.ReadTimeout)
		}
		if strings.HasPrefix(out, "HTTP/1.1 200") {
			t.Errorf("the cut POST was answered %q, as if it had succeeded", firstLine(out))
		}
		// Its session is over (the heartbeat has ended it by now anyway: a
		// client stuck in a POST cannot answer pings, which go by POST).
		resp, body, err := c.Get(ctx)
		if err != nil || resp.StatusCode != http.StatusBadRequest {
			t.Errorf("GET on the stalled session: %v %v %q, want 400", err, resp, body)
		}
	})
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\r\n")
	return line
}

// TestHandshakeFlood opens 2,000 sessions that are never used (polling and
// WebSocket, both revisions) while a client chats; the chat must go on, and
// the abandoned sessions must expire through the heartbeat and connect
// timeouts, leaving no goroutines behind.
func TestHandshakeFlood(t *testing.T) {
	s := startServer(t, Config{Socket: socketio.Options{
		ConnectTimeout: 300 * time.Millisecond,
		Engine:         engineio.Config{PingInterval: 200 * time.Millisecond, PingTimeout: time.Second},
	}})
	hc := pollingClient(t)
	baseline := runtime.NumGoroutine()
	ctx := ctxFor(t, 60*time.Second)
	chat, err := testutil.JoinSIO(ctx, s.eio, 4, "websocket", nil)
	if err != nil {
		t.Fatal(err)
	}

	const total, workers = 2000, 4
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= total {
					return
				}
				transport := "polling"
				if i%10 == 0 {
					transport = "websocket"
				}
				c, err := testutil.DialEIO(ctx, s.eio, 3+int(i%2), transport, hc)
				if err != nil {
					failed.Add(1)
					continue
				}
				if conn := c.WS(); conn != nil {
					// Abandoned, but the TCP connection stays until the
					// server gives up on the session.
					t.Cleanup(func() { conn.Close() })
				}
			}
		}()
	}
	// Chat through the flood.
	lines := 0
	for flooding := true; flooding || lines < 5; lines++ {
		if next.Load() >= total {
			flooding = false
		}
		text := fmt.Sprintf("through the flood %d", lines)
		if err := emitChat(ctx, chat, text); err != nil {
			t.Fatal(err)
		}
		if l, err := nextLine(ctx, chat); err != nil || l.Message != text {
			t.Fatalf("chat line %d during the flood: %v %v", lines, l, err)
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Errorf("%d of %d handshakes failed", n, total)
	}
	t.Logf("%d handshakes; the chat sent %d lines meanwhile", total, lines)
	// The abandoned sessions time out; the chatter, answering pings from
	// a reader of its own, stays.
	reader := make(chan error, 1)
	go func() {
		for {
			if _, err := chat.Next(ctx); err != nil {
				reader <- err
				return
			}
		}
	}()
	waitUntil(t, 20*time.Second, "abandoned sessions to expire", func() bool { return s.sessions() == 1 })
	chat.WS().Close()
	<-reader
	hc.CloseIdleConnections()
	waitUntil(t, 10*time.Second, "the last session to end", func() bool { return s.sessions() == 0 })
	var n int
	deadline := time.Now().Add(15 * time.Second)
	for n = runtime.NumGoroutine(); n > baseline && time.Now().Before(deadline); n = runtime.NumGoroutine() {
		time.Sleep(10 * time.Millisecond)
	}
	if n > baseline {
		buf := make([]byte, 1<<20)
		buf = buf[:runtime.Stack(buf, true)]
		t.Fatalf("%d goroutines after the flood, %d before:\n%s", n, baseline, buf)
	}
}
