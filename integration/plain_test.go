package integration

// Plain WebSocket clients, which speak neither Engine.IO nor Socket.IO, in
// the same chat as socket.io clients: on one server, across two nodes
// through Redis, and misbehaving. The plain clients are the ws package from
// npm (in redis-driver.js, beside the socket.io clients) and, for bad input,
// a Go client that writes whatever frames it is told to.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"siogo/internal/testutil"
)

// plainURL is the plain WebSocket endpoint of a server.
func plainURL(srv *testutil.Server) string { return "ws://" + srv.Addr + "/demo" }

// TestPlainWebSocketChat: plain clients (ws from npm) chat with
// socket.io-client 4.x and 2.x on one server. Every line reaches every
// client exactly once, and each line carries its sender's clientID, in
// connection order, whichever kind of client sent it or received it.
func TestPlainWebSocketChat(t *testing.T) {
	srv := testutil.Start(t, "chatserver")
	t.Cleanup(func() { checkNodeLogs(t, srv) })
	chatInOrder(t, "plain", 20,
		clusterClient{"sio4", 4, "default", srv.URL()},
		clusterClient{"plain1", 0, "plain", plainURL(srv)},
		clusterClient{"sio2", 2, "default", srv.URL()},
		clusterClient{"plain2", 0, "plain", plainURL(srv)},
		clusterClient{"sio4ws", 4, "websocket", srv.URL()},
	)

	m := fetchMetrics(t, srv.URL())
	if n := sumMetric(m, "siogo_connected_clients", `transport="plain"`); n != 2 {
		t.Errorf(`siogo_connected_clients{transport="plain"} = %v, want 2`, n)
	}
	if n := sumMetric(m, "siogo_sessions_opened_total", `transport="plain"`); n != 2 {
		t.Errorf(`siogo_sessions_opened_total{transport="plain"} = %v, want 2`, n)
	}
	// 5 senders × 21 lines, each counted once in and queued to 5 clients.
	if n := m.Sum("siogo_messages_out_total"); n != 5*21*5 {
		t.Errorf("siogo_messages_out_total = %v, want %d", n, 5*21*5)
	}
}

// TestPlainWebSocketRedis: two nodes share the chat through a real
// redis-server; a plain client on one node and socket.io clients on the
// other (and beside it) chat both ways, with clientIDs cluster-wide.
func TestPlainWebSocketRedis(t *testing.T) {
	r := testutil.StartRedis(t)
	nodes := startClusterNodes(t, r, 2)
	chatInOrder(t, "redis-plain", 10,
		clusterClient{"plain", 0, "plain", plainURL(nodes[0])},
		clusterClient{"sio4", 4, "websocket", nodes[1].URL()},
		clusterClient{"sio2", 2, "polling", nodes[1].URL()},
		clusterClient{"plain-n2", 0, "plain", plainURL(nodes[1])},
		clusterClient{"sio4-n1", 4, "default", nodes[0].URL()},
	)
}

// chatInOrder connects the clients one after the other, has each send n
// lines, and checks that every line reached every client exactly once and
// that the clientIDs the lines carry follow the connection order from 0.
func chatInOrder(t *testing.T, run string, n int, clients ...clusterClient) {
	t.Helper()
	d := startClusterDriver(t)
	d.connect(clients...)
	names := make([]string, len(clients))
	for i, c := range clients {
		names[i] = c.id
	}
	ids := d.exchange(run, names, names, n)
	for i, name := range names {
		if ids[name] != int64(i) {
			t.Errorf("clientIDs %v: want %v numbered from 0 in connection order", ids, names)
			break
		}
	}
}

// plainWitnesses are a plain client and a socket.io client whose chatting
// shows that the server still serves everyone.
type plainWitnesses struct {
	d    *clusterDriver
	seq  int
	who  []string
	from string
}

func newPlainWitnesses(t *testing.T, srv *testutil.Server) *plainWitnesses {
	d := startClusterDriver(t)
	d.connect(clusterClient{"plain", 0, "plain", plainURL(srv)}, clusterClient{"sio", 4, "websocket", srv.URL()})
	return &plainWitnesses{d: d, who: []string{"plain", "sio"}}
}

// chat has each witness send a line and waits until both have both.
func (w *plainWitnesses) chat(t *testing.T, when string) {
	t.Helper()
	w.seq++
	var lines []string
	for _, id := range w.who {
		line := fmt.Sprintf("%s says hello %s (%d)", id, when, w.seq)
		lines = append(lines, line)
		w.d.emit(id, line)
	}
	w.d.waitFor(clusterWait, "the witnesses to chat "+when, func() bool { return w.d.hasAll(w.who, lines) })
}

// TestPlainWebSocketBadInput: binary frames, text that is not UTF-8,
// oversized messages and floods each cut their sender off with the close
// code and reason that name the fault, counted in the metrics, while a
// plain and a socket.io client keep chatting.
func TestPlainWebSocketBadInput(t *testing.T) {
	const maxPayload, rate = 1000, 20
	srv := testutil.Start(t, "chatserver", "-max-payload", fmt.Sprint(maxPayload), "-max-packet-rate", fmt.Sprint(rate))
	t.Cleanup(func() { checkNodeLogs(t, srv) })
	w := newPlainWitnesses(t, srv)
	w.chat(t, "before")

	for _, tc := range []struct {
		name   string
		send   func(c *testutil.PlainClient) error
		code   ws.StatusCode
		reason string
	}{
		{"binary frame", func(c *testutil.PlainClient) error {
			return c.WriteMessage(ws.OpBinary, []byte("not text"))
		}, ws.StatusUnsupportedData, "binary messages not accepted"},
		{"invalid UTF-8", func(c *testutil.PlainClient) error {
			return c.WriteMessage(ws.OpText, []byte("caf\xe9 latin-1"))
		}, ws.StatusInvalidFramePayloadData, "invalid UTF-8"},
		{"oversized message", func(c *testutil.PlainClient) error {
			return c.Send(strings.Repeat("x", maxPayload+1))
		}, ws.StatusMessageTooBig, "message too big"},
		{"oversized in fragments", func(c *testutil.PlainClient) error {
			op := ws.OpText
			for range 3 {
				if err := c.WriteFrame(ws.NewFrame(op, false, []byte(strings.Repeat("y", maxPayload/2)))); err != nil {
					return err
				}
				op = ws.OpContinuation
			}
			return nil
		}, ws.StatusMessageTooBig, "message too big"},
		{"flood", func(c *testutil.PlainClient) error {
			for i := range 10 * rate {
				if err := c.Send(fmt.Sprint("flood ", i)); err != nil {
					return nil // cut off while sending
				}
			}
			return nil
		}, ws.StatusPolicyViolation, "packet rate limit exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := testutil.DialPlain(ctx, plainURL(srv), nil)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := tc.send(c); err != nil {
				t.Fatalf("send: %v", err)
			}
			for {
				_, _, err := c.Next(ctx)
				var closed wsutil.ClosedError
				if errors.As(err, &closed) {
					if closed.Code != tc.code || closed.Reason != tc.reason {
						t.Errorf("close frame %d %q, want %d %q", closed.Code, closed.Reason, tc.code, tc.reason)
					}
					break
				}
				if err != nil {
					t.Fatalf("want close frame %d %q, got %v", tc.code, tc.reason, err)
				}
				// Lines of the chat that arrived before the offence.
			}
			series := fmt.Sprintf(`siogo_sessions_closed_total{reason=%q}`, tc.reason)
			testutil.Eventually(t, 5*time.Second, func() bool { return fetchMetrics(t, srv.URL()).Sum(series) >= 1 }, "%s is not counted", series)
			w.chat(t, "after the "+tc.name)
		})
	}
	if n := fetchMetrics(t, srv.URL()).Sum("siogo_packet_rate_drops_total"); n != 1 {
		t.Errorf("siogo_packet_rate_drops_total = %v, want 1", n)
	}
}

// TestPlainWebSocketShutdown: on SIGTERM a plain client gets close code
// 1001, and the server exits.
func TestPlainWebSocketShutdown(t *testing.T) {
	srv := testutil.Start(t, "chatserver")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	c, err := testutil.DialPlain(ctx, plainURL(srv), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Send("goodnight"); err != nil {
		t.Fatal(err)
	}
	if _, line, err := c.Next(ctx); err != nil || !strings.Contains(string(line), `"message":"goodnight"`) {
		t.Fatalf("own line back: %q, %v", line, err)
	}
	stopped := make(chan struct{})
	go func() {
		srv.Stop(t)
		close(stopped)
	}()
	_, _, err = c.Next(ctx)
	var closed wsutil.ClosedError
	if !errors.As(err, &closed) || closed.Code != ws.StatusGoingAway || closed.Reason != "server shutting down" {
		t.Errorf("on shutdown: %v, want close frame 1001 \"server shutting down\"", err)
	}
	<-stopped
	if logs := srv.Logs(); strings.Contains(logs, "panic") || strings.Contains(logs, "DATA RACE") {
		t.Errorf("server logs:\n%s", logs)
	}
}

// plainBrowserSummary is what testdata/node/plain-browser.js reports.
type plainBrowserSummary struct {
	OK       bool     `json:"ok"`
	Failures []string `json:"failures"`
	Alerts   []struct {
		Type    string `json:"type"`
		Message string `json:"message"`
	} `json:"alerts"`
	ChatLines    []string `json:"chatLines"`
	PlainSockets []string `json:"plainSockets"`
	PageErrors   []string `json:"pageErrors"`
	DurationMs   int      `json:"durationMs"`
}

// TestPlainWebSocketBrowser: headless Chromium runs the README's HTML5
// WebSocket snippet on a page, next to the chat page in another browser
// context and a socket.io-client 2.x in Node.js. The snippet's "Hello"
// shows on the chat page with the snippet's clientID, and every line the
// socket.io clients send pops up on the snippet page as an alert holding
// the line's JSON, in order, with the sender's clientID.
func TestPlainWebSocketBrowser(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is not installed at /usr/bin/chromium (make setup installs it): %v", err)
	}
	// Our chat page at /, the snippet at /plain.html, from one origin.
	dir := t.TempDir()
	root := testutil.RepoRoot(t)
	for _, f := range []string{"static/chatClient.html", "static/chatClient.js", "static/chat.css", "testdata/plain-page/plain.html"} {
		b, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	srv := testutil.Start(t, "chatserver", "-static", dir)
	t.Cleanup(func() { checkNodeLogs(t, srv) })

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := testutil.NodeCommand(ctx, t, "testdata/node/plain-browser.js", "--url", srv.URL()+"/")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	var sum plainBrowserSummary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("plain-browser.js: no JSON summary (%v, run error %v)\nstdout:\n%s\nstderr:\n%s\nserver logs:\n%s",
			err, runErr, stdout.String(), stderr.String(), srv.Logs())
	}
	if runErr != nil || !sum.OK {
		t.Fatalf("plain-browser.js failed (%v):\n  %s\nalerts so far: %+v\nstderr:\n%s\nserver logs:\n%s",
			runErr, strings.Join(sum.Failures, "\n  "), sum.Alerts, stderr.String(), srv.Logs())
	}
	t.Logf("scenario took %d ms", sum.DurationMs)

	// clientIDs in connection order: the chat page 0, the snippet 1, the
	// 2.x client 2.
	want := []testLine{
		{1, "Hello"},
		{0, "안녕하세요, plain client"},
		{0, `emoji 😀 and "quotes"`},
		{0, "third line"},
		{2, "from socket.io-client 2.x"},
	}
	if len(sum.Alerts) != len(want) {
		t.Fatalf("%d alerts, want %d: %+v", len(sum.Alerts), len(want), sum.Alerts)
	}
	for i, a := range sum.Alerts {
		var got testLine
		if err := json.Unmarshal([]byte(a.Message), &got); err != nil {
			t.Errorf("alert %d %q is not a line's JSON: %v", i, a.Message, err)
			continue
		}
		if a.Type != "alert" || got != want[i] {
			t.Errorf("alert %d: %s %q, want an alert of %+v", i, a.Type, a.Message, want[i])
		}
	}
	wantChat := []string{"[1님의 말] Hello", "[0님의 말] 안녕하세요, plain client", `[0님의 말] emoji 😀 and "quotes"`, "[0님의 말] third line", "[2님의 말] from socket.io-client 2.x"}
	if strings.Join(sum.ChatLines, "\n") != strings.Join(wantChat, "\n") {
		t.Errorf("chat page shows %q, want %q", sum.ChatLines, wantChat)
	}
	if len(sum.PlainSockets) != 1 || sum.PlainSockets[0] != plainURL(srv) {
		t.Errorf("snippet page opened WebSockets %q, want only %s", sum.PlainSockets, plainURL(srv))
	}
	if len(sum.PageErrors) != 0 {
		t.Errorf("page errors: %q", sum.PageErrors)
	}
}

// testLine is a chat line as plain clients receive it.
type testLine struct {
	ClientID int64  `json:"clientID"`
	Message  string `json:"message"`
}
