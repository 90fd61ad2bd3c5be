package integration

// The Socket.IO Admin UI against the real binary: the dashboard of
// @socket.io/admin-ui in headless Chromium on a three-node cluster behind
// nginx, the authentication refusals, a server without -admin, and a
// Node.js socket.io node instrumented with @socket.io/admin-ui in the same
// Redis.

import (
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gomodule/redigo/redis"
	"golang.org/x/crypto/bcrypt"

	"siogo/internal/testutil"
)

var updateDocs = flag.Bool("update-docs", false, "write the screenshot the README shows (docs/admin-ui.png)")

const (
	adminUser     = "admin"
	adminPassword = "s3cret"
	adminWait     = 20 * time.Second
)

// adminHash is the bcrypt hash of adminPassword, at bcrypt's default cost
// as a deployment would use.
func adminHash(t *testing.T) string {
	t.Helper()
	h, err := bcrypt.GenerateFromPassword([]byte(adminPassword), bcrypt.DefaultCost)
	if err != nil {
		t.Fatal(err)
	}
	return string(h)
}

// adminBrowser drives testdata/node/admin-browser.js.
type adminBrowser struct {
	t *testing.T
	s *testutil.Script
}

// browserEvent is one line of admin-browser.js.
type browserEvent struct {
	Ev      string     `json:"ev"`
	SID     string     `json:"sid"`
	Rows    [][]string `json:"rows"`
	Rooms   []string   `json:"rooms"`
	Data    string     `json:"data"`
	Cmd     string     `json:"cmd"`
	Message string     `json:"message"`
}

// do sends a command and waits for the event it answers with.
func (b *adminBrowser) do(cmd map[string]any, want string) browserEvent {
	b.t.Helper()
	seen := len(b.s.Lines())
	b.s.Send(cmd)
	var got browserEvent
	b.s.WaitFor(adminWait+10*time.Second, want, func(lines []json.RawMessage) bool {
		for _, l := range lines[seen:] {
			var ev browserEvent
			if json.Unmarshal(l, &ev) == nil && (ev.Ev == want || ev.Ev == "error") {
				got = ev
				return true
			}
		}
		return false
	})
	if got.Ev == "error" {
		b.t.Fatalf("admin-browser.js %s: %s\n%s", got.Cmd, got.Message, b.s.Dump())
	}
	return got
}

// TestAdminUI opens the dashboard of @socket.io/admin-ui, served by the
// cluster itself, in headless Chromium through nginx, logs in, and checks
// that it shows the three servers and the six chat clients' sockets;
// disconnects, from the dashboard, a client that lives on another node than
// the dashboard's connection; makes another join a room from its page
// (which shows the chat's clientID in the socket's data) and checks, by
// asking the cluster from a Node.js socket.io node, that the socket's node
// has it in that room.
func TestAdminUI(t *testing.T) {
	if _, err := os.Stat("/usr/bin/chromium"); err != nil {
		t.Fatalf("chromium is not installed at /usr/bin/chromium (make setup installs it): %v", err)
	}
	c := startBalancedCluster(t, 3, "-admin", "-admin-user", adminUser, "-admin-password-hash", adminHash(t))
	specs := []string{"4:default", "4:default", "4:polling", "4:default", "2:polling", "4:polling"}
	chat := startLBClients(t, c.lb.URL(), specs...)
	all := indexes(len(specs))
	chat.connected(all, 1)
	clients := chat.snapshot()

	b := &adminBrowser{t: t, s: testutil.StartScript(t, "testdata/node/admin-browser.js",
		"--url", c.lb.URL(), "--user", adminUser, "--password", adminPassword)}
	adminNode := owner(b.do(map[string]any{"cmd": "login"}, "connected").SID)
	if c.node(adminNode) < 0 {
		t.Fatalf("the dashboard's session %q names no node", adminNode)
	}
	t.Logf("the dashboard is connected to %s", adminNode)

	// Every node's stats reach the dashboard, wherever it is connected.
	servers := b.do(map[string]any{"cmd": "servers", "count": 3}, "servers").Rows
	var serverIDs []string
	for _, row := range servers {
		serverIDs = append(serverIDs, row[0])
	}
	slices.Sort(serverIDs)
	if !slices.Equal(serverIDs, c.ids) {
		t.Fatalf("servers %v, want %v", serverIDs, c.ids)
	}

	// Every node's sockets, with their transport.
	rows := b.do(map[string]any{"cmd": "sockets", "count": len(specs)}, "sockets").Rows
	shown := map[string]string{}
	for _, row := range rows {
		shown[row[0]] = row[2]
	}
	for i, cl := range clients {
		want := "WebSocket"
		if strings.HasSuffix(cl.spec, ":polling") {
			want = "HTTP long-polling"
		}
		if got, ok := shown[cl.ids[0]]; !ok || got != want {
			t.Errorf("client %d (%s, socket %s on %s): dashboard shows %q (listed: %v), want %q",
				i, cl.spec, cl.ids[0], owner(cl.sid()), got, ok, want)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	// The clients on other nodes than the dashboard's.
	var remote []int
	for i, cl := range clients {
		if owner(cl.sid()) != adminNode {
			remote = append(remote, i)
		}
	}
	if len(remote) < 2 {
		t.Fatalf("nginx put fewer than two clients on nodes other than %s: %v", adminNode, chat.dump())
	}

	// Disconnect one from the dashboard.
	victim := remote[0]
	b.do(map[string]any{"cmd": "disconnect", "id": clients[victim].ids[0]}, "clicked")
	chat.waitFor("the client disconnected from the dashboard", func() bool {
		return slices.Contains(chat.clients[victim].disconnects, "io server disconnect")
	})
	b.do(map[string]any{"cmd": "sockets", "count": len(specs) - 1}, "sockets")
	for i, cl := range chat.snapshot() {
		if i != victim && len(cl.disconnects) != 0 {
			t.Errorf("client %d was disconnected too: %v", i, cl.disconnects)
		}
	}

	// Make another join a room from its page; the dashboard lists the
	// room once the socket's node has reported the join.
	joiner := remote[1]
	joinerID := clients[joiner].ids[0]
	joined := b.do(map[string]any{"cmd": "join", "id": joinerID, "room": "vip"}, "joined")
	if !slices.Contains(joined.Rooms, "vip") {
		t.Fatalf("the socket's page lists rooms %v", joined.Rooms)
	}
	// The page shows the chat's data: the socket's clientID.
	var data struct {
		ClientID *int64 `json:"clientID"`
	}
	if err := json.Unmarshal([]byte(joined.Data), &data); err != nil || data.ClientID == nil {
		t.Fatalf("the socket's page shows data %q, want the chat's clientID", joined.Data)
	}
	// Ask the cluster, as a Node.js socket.io node on the same broker:
	// io.fetchSockets() reaches every node through Redis.
	nodeURL := startNodeServer(t, c.redis.URL(), "--adapter", "streams")
	var sockets []struct {
		ID    string   `json:"id"`
		Rooms []string `json:"rooms"`
		Data  struct {
			ClientID *int64 `json:"clientID"`
		} `json:"data"`
	}
	// A Node.js node counts the servers whose answers it waits for from
	// their heartbeats (every 5 s), so just after it starts it may ask
	// fewer than all of them: ask until the answer stops growing.
	deadline := time.Now().Add(20 * time.Second)
	for {
		sockets = nil
		getJSON(t, nodeURL+"/cluster/fetch", &sockets)
		if len(sockets) >= len(specs)-1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	found := false
	for _, s := range sockets {
		if s.Data.ClientID == nil {
			t.Errorf("socket %s carries no clientID in its data", s.ID)
		}
		if s.ID == joinerID {
			found = true
			if !slices.Contains(s.Rooms, "vip") {
				t.Errorf("socket %s (on %s) is in rooms %v, want vip among them", s.ID, owner(clients[joiner].sid()), s.Rooms)
			}
		} else if slices.Contains(s.Rooms, "vip") {
			t.Errorf("socket %s joined vip too", s.ID)
		}
	}
	if !found || len(sockets) != len(specs)-1 {
		t.Fatalf("fetchSockets found %d sockets (the joiner: %v): %+v", len(sockets), found, sockets)
	}

	// The dashboard's home page, for the README.
	shot := filepath.Join(testutil.RepoRoot(t), "artifacts", "admin-ui.png")
	b.do(map[string]any{"cmd": "screenshot", "route": "/", "path": shot, "wait": "Servers"}, "screenshot")
	if *updateDocs {
		png, err := os.ReadFile(shot)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(testutil.RepoRoot(t), "docs", "admin-ui.png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestAdminStartRefused: -admin without credentials, or with half of them
// or a password that is not a bcrypt hash, stops the server at start with
// a message saying what to give.
func TestAdminStartRefused(t *testing.T) {
	bin := testutil.Binary(t, "chatserver")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-admin"}, "-admin needs -admin-user and -admin-password-hash"},
		{[]string{"-admin", "-admin-user", "admin"}, "-admin needs -admin-user and -admin-password-hash"},
		{[]string{"-admin", "-admin-password-hash", "$2a$10$abc"}, "-admin needs -admin-user and -admin-password-hash"},
		{[]string{"-admin", "-admin-user", "admin", "-admin-password-hash", "s3cret"}, "valid bcrypt hash"},
		{[]string{"-admin", "-admin-insecure", "-admin-user", "admin"}, "-admin-insecure turns authentication off"},
		{[]string{"-admin-user", "admin"}, "need -admin"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, bin, append(tc.args, "-addr", "127.0.0.1:0")...).CombinedOutput()
			if err == nil || ctx.Err() != nil || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v (context %v), output:\n%s\nwant a failure saying %q", err, ctx.Err(), out, tc.want)
			}
			if strings.Contains(string(out), "msg=listening") {
				t.Fatalf("the server started:\n%s", out)
			}
		})
	}
}

// TestAdminAuthRefusals: no credentials and a wrong password get the
// reference's refusal, each counted at /metrics and logged with the
// client's address; the right ones get in.
func TestAdminAuthRefusals(t *testing.T) {
	srv := testutil.Start(t, "chatserver", "-admin", "-admin-user", adminUser, "-admin-password-hash", adminHash(t))
	for _, auth := range []map[string]any{
		{},
		{"username": adminUser, "password": "wrong"},
		{"username": "root", "password": adminPassword},
	} {
		c := testutil.StartAdminClient(t, srv.URL(), auth)
		evs := c.WaitFor(adminWait, "the refusal", func(evs []testutil.AdminEvent) bool { return len(evs) > 0 })
		if evs[0].Ev != "connect_error" || evs[0].Message != "invalid credentials" {
			t.Fatalf("auth %v: %+v, want connect_error \"invalid credentials\"", auth, evs[0])
		}
		c.Close()
	}
	if got := scrapeMetrics(t, srv).Sum("siogo_admin_refused_total"); got != 3 {
		t.Fatalf("siogo_admin_refused_total = %v, want 3", got)
	}
	if n := strings.Count(srv.Logs(), `msg="admin: connection refused: invalid credentials" addr=127.0.0.1`); n != 3 {
		t.Fatalf("%d refusals logged with the address, want 3:\n%s", n, srv.Logs())
	}

	c := testutil.StartAdminClient(t, srv.URL(), map[string]any{"username": adminUser, "password": adminPassword})
	c.WaitEvent(adminWait, "config", nil)

	// The dashboard is served with the namespace.
	resp, err := http.Get(srv.URL() + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Socket.IO Admin UI") {
		t.Fatalf("GET /admin/: %s\n%s\n(run make bundle to embed the dashboard)", resp.Status, body)
	}
}

// redisMonitor records every command a redis-server runs (MONITOR).
type redisMonitor struct {
	conn redis.Conn
	mu   sync.Mutex
	log  strings.Builder
	seen chan struct{} // closed and replaced on every line
	done chan struct{}
}

func startRedisMonitor(t *testing.T, r *testutil.Redis) *redisMonitor {
	t.Helper()
	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Do("MONITOR"); err != nil {
		t.Fatal(err)
	}
	m := &redisMonitor{conn: conn, seen: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(m.done)
		for {
			line, err := redis.String(conn.Receive())
			if err != nil {
				return
			}
			m.mu.Lock()
			m.log.WriteString(line + "\n")
			close(m.seen)
			m.seen = make(chan struct{})
			m.mu.Unlock()
		}
	}()
	t.Cleanup(func() { conn.Close(); <-m.done })
	return m
}

// mark runs a command whose trace ends what the monitor has to show, and
// waits for it: every command Redis ran before is then in the log.
func (m *redisMonitor) mark(t *testing.T, r *testutil.Redis, name string) string {
	t.Helper()
	conn, err := redis.DialURL(r.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.Do("ECHO", name); err != nil {
		t.Fatal(err)
	}
	return m.waitFor(t, name)
}

// waitFor waits until the log holds s and returns the log.
func (m *redisMonitor) waitFor(t *testing.T, s string) string {
	t.Helper()
	timeout := time.After(adminWait)
	for {
		m.mu.Lock()
		log, seen := m.log.String(), m.seen
		m.mu.Unlock()
		if strings.Contains(log, s) {
			return log
		}
		select {
		case <-seen:
		case <-m.done:
			t.Fatalf("the monitor connection ended before %q", s)
		case <-timeout:
			t.Fatalf("Redis never ran %q:\n%s", s, log)
		}
	}
}

// TestAdminOff: without -admin there is no admin namespace, no dashboard
// and no admin metric, and nothing about it goes to Redis, even while a
// client knocks at /admin and chat flows; the same check sees an -admin
// node's traffic as soon as it starts.
func TestAdminOff(t *testing.T) {
	r := testutil.StartRedis(t)
	mon := startRedisMonitor(t, r)
	srv := testutil.Start(t, "chatserver", "-redis", r.URL(), "-node-id", "plain")
	waitReady(t, srv, http.StatusOK)

	resp, err := http.Get(srv.URL() + "/admin/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /admin/ without -admin: %s, want 404", resp.Status)
	}
	knock := testutil.StartAdminClient(t, srv.URL(), map[string]any{"username": adminUser, "password": adminPassword})
	evs := knock.WaitFor(adminWait, "the refusal", func(evs []testutil.AdminEvent) bool { return len(evs) > 0 })
	if evs[0].Ev != "connect_error" || evs[0].Message != "Invalid namespace" {
		t.Fatalf("a client of /admin without -admin: %+v, want connect_error \"Invalid namespace\"", evs[0])
	}
	chat := startLBClients(t, srv.URL(), "4:default", "4:polling")
	chat.connected([]int{0, 1}, 1)
	chat.round("off", 1, []int{0, 1}, []int{0, 1})
	// An -admin node subscribes to the admin namespace's channels and
	// sends its first stats as it starts, long before this point.
	log := mon.mark(t, r, "end-of-check")
	if strings.Contains(log, "admin") {
		t.Fatalf("admin traffic went to Redis without -admin:\n%s", log)
	}
	if !strings.Contains(log, "socket.io#/#") {
		t.Fatalf("the monitor saw no chat traffic, so its silence proves nothing:\n%s", log)
	}
	for name := range scrapeMetrics(t, srv) {
		if strings.Contains(name, "admin") {
			t.Fatalf("metric %s is registered without -admin", name)
		}
	}

	// The same monitor sees an -admin node's traffic at once.
	testutil.Start(t, "chatserver", "-redis", r.URL(), "-node-id", "instrumented", "-admin", "-admin-insecure")
	mon.waitFor(t, "socket.io#/admin#")
}

// TestAdminNodeInterop puts a Node.js socket.io node instrumented with
// @socket.io/admin-ui on the same Redis as two of our nodes. A dashboard
// on our node sees the Node.js server and its sockets (their connection
// and transport too, which it keeps in the socket's data) and can
// disconnect them; a dashboard on the Node.js node sees our servers and
// our sockets.
func TestAdminNodeInterop(t *testing.T) {
	r := testutil.StartRedis(t)
	var nodes []*testutil.Server
	for _, id := range []string{"go1", "go2"} {
		n := testutil.Start(t, "chatserver", "-redis", r.URL(), "-broker", "pubsub", "-node-id", id, "-admin", "-admin-insecure")
		t.Cleanup(func() { checkNodeLogs(t, n) })
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		waitReady(t, n, http.StatusOK)
	}
	nodeURL := testutil.StartNodeServer(t, "testdata/node/redis-node-server.js", "--redis", r.URL(), "--admin", "node-js")
	waitServerCount(t, r.URL(), 3)

	onGo := startLBClients(t, nodes[1].URL(), "4:default")
	onNode := startLBClients(t, nodeURL, "4:polling")
	onGo.connected([]int{0}, 1)
	onNode.connected([]int{0}, 1)
	goSocket, nodeSocket := onGo.snapshot()[0], onNode.snapshot()[0]

	statsFrom := func(c *testutil.AdminClient, ids ...string) {
		t.Helper()
		c.WaitFor(adminWait, "server_stats of "+strings.Join(ids, ", "), func(evs []testutil.AdminEvent) bool {
			seen := map[string]bool{}
			for _, e := range evs {
				var st struct {
					ServerID string `json:"serverId"`
				}
				if e.Name == "server_stats" && json.Unmarshal(e.Args[0], &st) == nil {
					seen[st.ServerID] = true
				}
			}
			for _, id := range ids {
				if !seen[id] {
					return false
				}
			}
			return true
		})
	}
	type listed struct {
		ID        string          `json:"id"`
		ClientID  string          `json:"clientId"`
		Transport string          `json:"transport"`
		Nsp       string          `json:"nsp"`
		Data      json.RawMessage `json:"data"`
	}
	socketList := func(c *testutil.AdminClient) map[string]listed {
		t.Helper()
		var all []listed
		c.WaitEvent(adminWait, "all_sockets", nil).Arg(t, 0, &all)
		out := map[string]listed{}
		for _, s := range all {
			out[s.ID] = s
		}
		return out
	}

	// Our dashboard: every server, and the Node.js socket with its
	// connection, transport and data.
	dash := testutil.StartAdminClient(t, nodes[0].URL(), map[string]any{})
	statsFrom(dash, "go1", "go2", "node-js")
	list := socketList(dash)
	gs, ns := list[goSocket.ids[0]], list[nodeSocket.ids[0]]
	if gs.ClientID != goSocket.sid() || gs.Transport != "websocket" || !strings.Contains(string(gs.Data), `"clientID"`) {
		t.Errorf("our socket as listed: %+v", gs)
	}
	if ns.ClientID == "" || !strings.HasPrefix(nodeSocket.sid(), ns.ClientID) || ns.Transport != "polling" ||
		!strings.Contains(string(ns.Data), `"clientID"`) || strings.Contains(string(ns.Data), "_admin") {
		t.Errorf("the Node.js socket as listed: %+v (session %s)", ns, nodeSocket.sid())
	}

	// A dashboard on the Node.js node sees our servers and sockets.
	nodeDash := testutil.StartAdminClient(t, nodeURL, map[string]any{})
	statsFrom(nodeDash, "go1", "go2", "node-js")
	if _, ok := socketList(nodeDash)[goSocket.ids[0]]; !ok {
		t.Errorf("the Node.js node's dashboard does not list our socket %s", goSocket.ids[0])
	}

	// Our dashboard's commands reach the Node.js node: a join, reported by
	// it, then a disconnection.
	dash.Emit("join", "/", "vip", nodeSocket.ids[0])
	dash.WaitEvent(adminWait, "room_joined", func(e testutil.AdminEvent) bool {
		var nsp, room, id string
		e.Arg(t, 0, &nsp)
		e.Arg(t, 1, &room)
		e.Arg(t, 2, &id)
		return nsp == "/" && room == "vip" && id == nodeSocket.ids[0]
	})
	dash.Emit("_disconnect", "/", false, nodeSocket.ids[0])
	onNode.waitFor("the Node.js node's client disconnected from our dashboard", func() bool {
		return slices.Contains(onNode.clients[0].disconnects, "io server disconnect")
	})
	dash.WaitEvent(adminWait, "socket_disconnected", func(e testutil.AdminEvent) bool {
		var id string
		e.Arg(t, 1, &id)
		return id == nodeSocket.ids[0]
	})
}
