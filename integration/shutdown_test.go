package integration

// Graceful shutdown: on SIGTERM the server answers the polls it holds, tells
// every client to reconnect (a close packet over polling, a close frame over
// WebSocket), delivers what it had already accepted for them, and exits
// within its shutdown deadline. The clients are socket.io-client 4.x in
// Node.js over each transport, whose disconnect reason and reconnection
// attempt show what a browser would do, and Go clients of protocol revision
// 3 (socket.io-client 1.x and 2.x) over each transport.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"siogo/internal/testutil"
)

// shutdownClientJS connects clients over each transport, sends a burst from
// one of them on request, and after the server has gone reports what each
// client received and how it was disconnected. Protocol on stdout: one JSON
// object per line.
const shutdownClientJS = `
const { io } = require("socket.io-client");
const [url, perTransport] = [process.argv[2], Number(process.argv[3])];
const clients = [];
for (const transport of ["polling", "websocket"]) {
  for (let i = 0; i < perTransport; i++) {
    const socket = io(url, { transports: [transport], forceNew: true, reconnectionDelay: 50, reconnectionDelayMax: 100 });
    const c = { transport, socket, received: [], reason: null, code: null, reconnecting: false };
    // Lines are counted as the transport hands them over: the client
    // library defers their events, so lines that came in the same poll
    // response as the close packet are emitted only after a reconnection.
    socket.io.on("open", () => {
      let closed = false;
      socket.io.engine.on("close", () => { closed = true; });
      socket.io.engine.on("packet", (p) => {
        // The line, and the recovery offset the server appends.
        const m = p.type === "message" && !closed && /^2\["clientReceiver",(\{.*\})(,"[0-9-]+")?\]$/.exec(p.data);
        if (m) c.received.push(JSON.parse(m[1]).message);
      });
    });
    socket.on("disconnect", (reason, details) => {
      if (c.reason !== null) return;
      c.reason = reason;
      c.code = details && details.context && details.context.code !== undefined ? details.context.code : null;
    });
    socket.io.on("reconnect_attempt", () => { c.reconnecting = true; finish(); });
    socket.on("connect", () => { if (clients.every((c) => c.socket.connected)) say({ event: "ready" }); });
    clients.push(c);
  }
}
function say(o) { process.stdout.write(JSON.stringify(o) + "\n"); }
let done = false;
function finish() {
  if (done || !clients.every((c) => c.reason !== null && c.reconnecting)) return;
  done = true;
  say({ event: "report", clients: clients.map(({ transport, received, reason, code, reconnecting }) =>
    ({ transport, received, reason, code, reconnecting })) });
  for (const c of clients) c.socket.close();
  setTimeout(() => process.exit(0), 50);
}
require("readline").createInterface({ input: process.stdin }).on("line", (line) => {
  const [cmd, n] = line.split(" ");
  if (cmd !== "burst") return;
  let acked = 0;
  const sender = clients[clients.length - 1].socket;
  for (let i = 0; i < Number(n); i++) {
    sender.emit("serverReceiver", "burst " + i, () => { if (++acked === Number(n)) say({ event: "acked" }); });
  }
});
`

type shutdownReport struct {
	Event   string `json:"event"`
	Clients []struct {
		Transport    string   `json:"transport"`
		Received     []string `json:"received"`
		Reason       string   `json:"reason"`
		Code         *int     `json:"code"`
		Reconnecting bool     `json:"reconnecting"`
	} `json:"clients"`
}

func TestGracefulShutdown(t *testing.T) {
	const (
		perTransport = 5
		burst        = 300
		deadline     = 10 * time.Second // the server's shutdown timeout
	)
	srv := testutil.Start(t, "chatserver", "-handshake-rate", "0", "-max-packet-rate", "0")

	// Go clients of protocol revision 3, reading everything they get.
	type goClient struct {
		transport string
		c         *testutil.ChatClient
		mu        sync.Mutex
		received  []string
	}
	var goClients []*goClient
	for _, transport := range []string{"polling", "websocket"} {
		gc := &goClient{transport: transport}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		c, err := testutil.DialChat(ctx, srv.URL(), testutil.ChatOptions{Protocol: 3, Transport: transport, OnLine: func(l testutil.ChatLine) {
			gc.mu.Lock()
			gc.received = append(gc.received, l.Message)
			gc.mu.Unlock()
		}})
		cancel()
		if err != nil {
			t.Fatalf("revision 3 %s client: %v", transport, err)
		}
		gc.c = c
		goClients = append(goClients, gc)
	}

	script := filepath.Join(t.TempDir(), "shutdown-client.js")
	if err := os.WriteFile(script, []byte(shutdownClientJS), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	node := testutil.NodeCommand(ctx, t, script, srv.URL(), fmt.Sprint(perTransport))
	stdin, err := node.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := node.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderrMu sync.Mutex
	var stderrBuf strings.Builder
	node.Stderr = lockedBuilder{&stderrMu, &stderrBuf}
	stderr := func() string {
		stderrMu.Lock()
		defer stderrMu.Unlock()
		return stderrBuf.String()
	}
	if err := node.Start(); err != nil {
		t.Fatal(err)
	}
	defer node.Wait()
	events := make(chan shutdownReport)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			var r shutdownReport
			if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
				t.Errorf("node: %q: %v", sc.Text(), err)
				continue
			}
			events <- r
		}
	}()
	await := func(event string) shutdownReport {
		t.Helper()
		select {
		case r, ok := <-events:
			if !ok || r.Event != event {
				t.Fatalf("node: waiting for %q, got %+v (stdout closed: %v)\nstderr:\n%s", event, r, !ok, stderr())
			}
			return r
		case <-ctx.Done():
			t.Fatalf("node: no %q event\nstderr:\n%s", event, stderr())
		}
		panic("unreachable")
	}

	await("ready")
	// Every line of the burst is accepted (acknowledged) before SIGTERM, and
	// the signal comes right after the last ack, while the clients are still
	// receiving: polls are in flight and queues are not empty.
	fmt.Fprintf(stdin, "burst %d\n", burst)
	await("acked")
	signalled := time.Now()
	if err := srv.Cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-srv.Done():
	case <-time.After(deadline + 5*time.Second):
		t.Fatalf("the server did not exit within %v of SIGTERM", deadline)
	}
	exited := time.Since(signalled)
	t.Logf("server exited %v after SIGTERM", exited)
	if exited > deadline {
		t.Errorf("the server took %v to exit, beyond its %v shutdown deadline", exited, deadline)
	}
	if code := srv.Cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("the server exited with status %d\n%s", code, srv.Logs())
	}

	want := make([]string, burst)
	for i := range want {
		want[i] = fmt.Sprintf("burst %d", i)
	}
	report := await("report")
	if len(report.Clients) != 2*perTransport {
		t.Fatalf("node reported %d clients, want %d", len(report.Clients), 2*perTransport)
	}
	for i, c := range report.Clients {
		name := fmt.Sprintf("socket.io-client 4.x #%d (%s)", i, c.Transport)
		if c.Reason != "transport close" {
			t.Errorf("%s: disconnect reason %q, want \"transport close\" (told to go, not cut off)", name, c.Reason)
		}
		if c.Transport == "websocket" && (c.Code == nil || *c.Code != int(ws.StatusNormalClosure)) {
			t.Errorf("%s: WebSocket closed with code %v, want a close frame with 1000", name, c.Code)
		}
		if !c.Reconnecting {
			t.Errorf("%s: did not try to reconnect", name)
		}
		wantWholeBurst(t, name, c.Received, want)
	}
	for _, gc := range goClients {
		name := "revision 3 client (" + gc.transport + ")"
		select {
		case <-gc.c.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: still connected after the server exited", name)
		}
		if err := gc.c.Err(); !errors.Is(err, testutil.ErrChatClosedByServer) {
			t.Errorf("%s: session ended with %v, want a close packet or frame from the server", name, err)
		} else if gc.c.Conn() != nil && gc.c.CloseCode != ws.StatusNormalClosure {
			t.Errorf("%s: close frame with code %d, want 1000", name, gc.c.CloseCode)
		}
		gc.mu.Lock()
		wantWholeBurst(t, name, gc.received, want)
		gc.mu.Unlock()
	}
}

// wantWholeBurst verifies a client received the whole burst, in order, before
// its disconnect.
func wantWholeBurst(t *testing.T, name string, got, want []string) {
	t.Helper()
	if len(got) == len(want) {
		for i := range got {
			if got[i] != want[i] {
				t.Errorf("%s: line %d is %q, want %q", name, i, got[i], want[i])
				return
			}
		}
		return
	}
	last := "none"
	if len(got) > 0 {
		last = got[len(got)-1]
	}
	t.Errorf("%s: received %d of the %d accepted lines before the disconnect (last: %s)", name, len(got), len(want), last)
}
