package admin

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"siogo/internal/testutil"
	"siogo/socketio"
)

const wait = 10 * time.Second

// member is the data the test's chat middleware gives each socket, as the
// chat gives its clientID.
type member struct {
	ClientID int `json:"clientID"`
}

// logBuffer collects a server's logs, to check what refusals say.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// startServer runs a Socket.IO server with a chat-like root namespace
// (each socket's data holds a clientID) and the instrumentation.
func startServer(t *testing.T, opts Options) (*socketio.Server, *Admin, string, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	io := socketio.NewServer(socketio.Options{Logger: log})
	next := 0
	var mu sync.Mutex
	io.Of("/").Use(func(s *socketio.Socket, _ json.RawMessage) error {
		mu.Lock()
		defer mu.Unlock()
		s.SetData(member{ClientID: next})
		next++
		return nil
	})
	if opts.StatsInterval == 0 {
		opts.StatsInterval = 100 * time.Millisecond
	}
	opts.Logger = log
	adm, err := Instrument(io, opts)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(io)
	t.Cleanup(func() {
		adm.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		io.Close(ctx)
		ts.Close()
	})
	return io, adm, ts.URL, logs
}

func TestInstrumentNeedsAuthentication(t *testing.T) {
	hash, _ := bcrypt.GenerateFromPassword([]byte("secret"), bcrypt.MinCost)
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"none", Options{}, "authentication must be configured"},
		{"both", Options{NoAuth: true, Auth: &BasicAuth{Username: "admin", PasswordHash: string(hash)}}, "both set"},
		{"no user", Options{Auth: &BasicAuth{PasswordHash: string(hash)}}, "needs a user name"},
		{"not bcrypt", Options{Auth: &BasicAuth{Username: "admin", PasswordHash: "secret"}}, "valid bcrypt hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			io := socketio.NewServer(socketio.Options{})
			defer io.Close(context.Background())
			_, err := Instrument(io, tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Instrument: %v, want an error saying %q", err, tc.want)
			}
			if _, ok := findNamespace(io, "/admin"); ok {
				t.Fatal("a refused configuration created the admin namespace")
			}
		})
	}
}

func findNamespace(io *socketio.Server, name string) (*socketio.Namespace, bool) {
	for _, n := range io.Namespaces() {
		if n.Name() == name {
			return n, true
		}
	}
	return nil, false
}

// TestAuthentication connects real socket.io clients to the admin
// namespace with no, wrong and right credentials, then with the session
// the login handed out, and with a forged one.
func TestAuthentication(t *testing.T) {
	hash, err := bcrypt.GenerateFromPassword([]byte("s3cret"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	_, adm, url, logs := startServer(t, Options{Auth: &BasicAuth{Username: "admin", PasswordHash: string(hash)}})

	refused := func(auth any) {
		t.Helper()
		c := testutil.StartAdminClient(t, url, auth)
		evs := c.WaitFor(wait, "the refusal", func(evs []testutil.AdminEvent) bool { return len(evs) > 0 })
		if evs[0].Ev != "connect_error" || evs[0].Message != "invalid credentials" {
			t.Fatalf("auth %v: got %+v, want connect_error \"invalid credentials\"", auth, evs[0])
		}
	}
	refused(map[string]any{})
	refused(map[string]any{"username": "admin", "password": "wrong"})
	refused(map[string]any{"username": "root", "password": "s3cret"})
	refused(map[string]any{"username": "admin", "password": 42})
	if got := adm.Refused(); got != 4 {
		t.Fatalf("Refused() = %d, want 4", got)
	}
	if n := strings.Count(logs.String(), "admin: connection refused: invalid credentials"); n != 4 {
		t.Fatalf("%d refusals logged, want 4:\n%s", n, logs)
	}
	if !strings.Contains(logs.String(), "addr=127.0.0.1") {
		t.Fatalf("the refusals are not logged with the address:\n%s", logs)
	}

	// The login hands out a session, then the features.
	c := testutil.StartAdminClient(t, url, map[string]any{"username": "admin", "password": "s3cret"})
	evs := c.WaitFor(wait, "session and config", func(evs []testutil.AdminEvent) bool { return len(evs) >= 3 })
	if evs[0].Ev != "connect" || evs[1].Name != "session" || evs[2].Name != "config" {
		t.Fatalf("login: got %+v, want connect, session, config", evs[:3])
	}
	var session string
	evs[1].Arg(t, 0, &session)

	// The session lets the dashboard reconnect without the password; it
	// gets no new one.
	c2 := testutil.StartAdminClient(t, url, map[string]any{"sessionId": session})
	evs = c2.WaitFor(wait, "config", func(evs []testutil.AdminEvent) bool { return len(evs) >= 2 })
	if evs[0].Ev != "connect" || evs[1].Name != "config" {
		t.Fatalf("session: got %+v, want connect, config", evs[:2])
	}

	forged := session[:len(session)-1] + string("0123456789abcdef"[(strings.IndexByte("0123456789abcdef", session[len(session)-1])+1)%16])
	refused(map[string]any{"sessionId": forged})
	refused(map[string]any{"sessionId": "whatever"})
	if got := adm.Refused(); got != 6 {
		t.Fatalf("Refused() = %d, want 6", got)
	}
}

func TestSessionExpires(t *testing.T) {
	au := newAuthenticator(&BasicAuth{Username: "admin", PasswordHash: "x"}, -time.Second)
	if au.validSession(au.newSession()) {
		t.Fatal("an expired session is accepted")
	}
	au = newAuthenticator(&BasicAuth{Username: "admin", PasswordHash: "x"}, time.Hour)
	other := newAuthenticator(&BasicAuth{Username: "admin", PasswordHash: "y"}, time.Hour)
	s := au.newSession()
	if !au.validSession(s) || other.validSession(s) {
		t.Fatal("a session is valid only where the same credentials are configured")
	}
}

// socketByClient finds, in a list of serialized sockets, the one whose
// connection is sid.
func socketByClient(sockets []serializedSocket, sid string) (serializedSocket, bool) {
	for _, s := range sockets {
		if s.ClientID == sid {
			return s, true
		}
	}
	return serializedSocket{}, false
}

// TestDashboardProtocol follows a dashboard through what instrument()
// sends and answers: the socket list, socket and room events, the server
// stats with the counts, and the commands, against real protocol clients.
func TestDashboardProtocol(t *testing.T) {
	io, _, url, _ := startServer(t, Options{NoAuth: true})
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	endpoint := url + "/socket.io/"
	a, err := testutil.JoinSIO(ctx, endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Send(ctx, "1")

	dash := testutil.StartAdminClient(t, url, map[string]any{})
	cfg := dash.WaitEvent(wait, "config", nil)
	var config struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	cfg.Arg(t, 0, &config)
	want := []string{"EMIT", "JOIN", "LEAVE", "DISCONNECT", "MJOIN", "MLEAVE", "MDISCONNECT", "AGGREGATED_EVENTS", "ALL_EVENTS"}
	if !slices.Equal(config.SupportedFeatures, want) {
		t.Fatalf("features %v, want %v", config.SupportedFeatures, want)
	}

	// The socket list: the chat socket with its connection, transport and
	// data, and the dashboard's own socket.
	var all []serializedSocket
	dash.WaitEvent(wait, "all_sockets", nil).Arg(t, 0, &all)
	sa, ok := socketByClient(all, a.SID())
	if !ok || sa.Nsp != "/" || sa.Transport != "polling" || string(sa.Data) != `{"clientID":0}` ||
		!slices.Equal(sa.Rooms, []socketio.Room{socketio.Room(sa.ID)}) || sa.Handshake.Headers == nil || string(sa.Handshake.Address) != `"127.0.0.1"` {
		t.Fatalf("all_sockets: chat socket %+v (found %v) in %+v", sa, ok, all)
	}
	if len(all) != 2 || all[1].Nsp != "/admin" {
		t.Fatalf("all_sockets: %+v, want the chat socket and the dashboard's", all)
	}

	// A socket connecting later is announced with its own room.
	b, err := testutil.JoinSIO(ctx, endpoint, 4, "polling", nil)
	if err != nil {
		t.Fatal(err)
	}
	var sb serializedSocket
	dash.WaitEvent(wait, "socket_connected", func(e testutil.AdminEvent) bool {
		var s serializedSocket
		e.Arg(t, 0, &s)
		return s.ClientID == b.SID()
	}).Arg(t, 0, &sb)
	if string(sb.Data) != `{"clientID":1}` {
		t.Fatalf("socket_connected: %+v", sb)
	}
	isEvent := func(args ...string) func(testutil.AdminEvent) bool {
		return func(e testutil.AdminEvent) bool {
			for i, want := range args {
				var got string
				if i >= len(e.Args) || json.Unmarshal(e.Args[i], &got) != nil || got != want {
					return false
				}
			}
			return true
		}
	}
	dash.WaitEvent(wait, "room_joined", isEvent("/", string(sb.ID), string(sb.ID)))

	// join, leave and emit act on the sockets they select.
	dash.Emit("join", "/", "vip", string(sb.ID))
	dash.WaitEvent(wait, "room_joined", isEvent("/", "vip", string(sb.ID)))
	chat, _ := findNamespace(io, "/")
	if s, ok := chat.Socket(sb.ID); !ok || !slices.Contains(s.Rooms(), "vip") {
		t.Fatalf("the socket is not in the room the dashboard made it join")
	}
	dash.Emit("emit", "/", "vip", "hello", map[string]any{"from": "admin"})
	expectPacket(ctx, t, b, `42["hello",{"from":"admin"}]`)
	dash.Emit("leave", "/", "vip", string(sb.ID))
	dash.WaitEvent(wait, "room_left", isEvent("/", "vip", string(sb.ID)))

	// Malformed commands and unknown namespaces are ignored; nothing is
	// created, and the dashboard keeps working.
	dash.Emit("join", 42, "vip")
	dash.Emit("join", "/nowhere", "vip")
	dash.Emit("_disconnect")
	if _, ok := findNamespace(io, "/nowhere"); ok {
		t.Fatal("a command created a namespace")
	}

	// The upgrade is reported.
	if err := b.Upgrade(ctx); err != nil {
		t.Fatal(err)
	}
	var updated struct{ ID, Nsp, Transport string }
	dash.WaitEvent(wait, "socket_updated", func(e testutil.AdminEvent) bool {
		e.Arg(t, 0, &updated)
		return updated.ID == string(sb.ID)
	})
	if updated.Nsp != "/" || updated.Transport != "websocket" {
		t.Fatalf("socket_updated: %+v", updated)
	}

	// Traffic is counted: an event in, and out.
	if err := a.Send(ctx, `42["serverReceiver","hi"]`); err != nil {
		t.Fatal(err)
	}
	counted := map[string]int64{}
	dash.WaitFor(wait, "packetsIn and rawConnection counts", func(evs []testutil.AdminEvent) bool {
		clear(counted)
		for _, e := range evs {
			if e.Name != "server_stats" {
				continue
			}
			var st serverStats
			if json.Unmarshal(e.Args[0], &st) != nil {
				continue
			}
			for _, ag := range st.AggregatedEvents {
				counted[ag.Type] += ag.Count
			}
		}
		return counted["packetsIn"] >= 1 && counted["packetsOut"] >= 1 && counted["rawConnection"] >= 1
	})
	var st serverStats
	dash.WaitEvent(wait, "server_stats", nil).Arg(t, 0, &st)
	if st.PID == 0 || st.ServerID == "" || len(st.Namespaces) != 2 || st.Namespaces[0].Name != "/" {
		t.Fatalf("server_stats: %+v", st)
	}

	// _disconnect disconnects the socket and is reported.
	dash.Emit("_disconnect", "/", false, string(sb.ID))
	dash.WaitEvent(wait, "socket_disconnected", isEvent("/", string(sb.ID), "server namespace disconnect"))
	expectPacket(ctx, t, b, "41")
}

// expectPacket reads c's packets until one whose text is want.
func expectPacket(ctx context.Context, t *testing.T, c *testutil.EIOClient, want string) {
	t.Helper()
	for {
		p, err := c.Next(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		if p.Text() == want {
			return
		}
	}
}

// TestReadOnlyAndProduction checks the reduced modes: read-only offers no
// command, production sends no socket list.
func TestReadOnlyAndProduction(t *testing.T) {
	io, _, url, _ := startServer(t, Options{NoAuth: true, ReadOnly: true, Production: true})
	dash := testutil.StartAdminClient(t, url, map[string]any{})
	var config struct {
		SupportedFeatures []string `json:"supportedFeatures"`
	}
	dash.WaitEvent(wait, "config", nil).Arg(t, 0, &config)
	if !slices.Equal(config.SupportedFeatures, []string{"AGGREGATED_EVENTS"}) {
		t.Fatalf("features %v", config.SupportedFeatures)
	}
	dash.Emit("join", "/admin", "vip")
	// Two server stats later, no socket list, no room event, no join.
	n := 0
	dash.WaitFor(wait, "two server stats", func(evs []testutil.AdminEvent) bool {
		n = 0
		for _, e := range evs {
			if e.Name == "server_stats" {
				n++
			}
		}
		return n >= 2
	})
	for _, e := range dash.Events() {
		if e.Name == "all_sockets" || e.Name == "room_joined" || e.Name == "socket_connected" {
			t.Fatalf("production mode sent %s", e.Name)
		}
	}
	adminNsp, _ := findNamespace(io, "/admin")
	for _, s := range adminNsp.Sockets() {
		if slices.Contains(s.Rooms(), "vip") {
			t.Fatal("read-only mode ran a join")
		}
	}
}
