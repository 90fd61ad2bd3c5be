package integration

// The client matrix: every socket.io client generation (1.x to 4.x) over
// every transport mode (polling only, WebSocket only, polling upgraded to
// WebSocket) runs each scenario of testdata/node/matrix-client.js against
// the real chatserver and conformance binaries. The script reports what the
// clients saw as one JSON line; the assertions live here.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"siogo/internal/testutil"
)

// -matrix.server=node runs the same matrix against the Node.js reference
// server (testdata/node/refserver.js) for comparison.
var matrixServerFlag = flag.String("matrix.server", "go", `server the client matrix runs against: "go" (our binaries) or "node" (the reference)`)

const (
	matrixScript = "testdata/node/matrix-client.js"
	// Non-ASCII text checks the UTF-16 length prefixes of Engine.IO 3
	// polling and UTF-8 handling everywhere else.
	unicodeText = "héllo €😀"
	// socket.io-client 1.x UTF-8-encodes text once more inside polling
	// payloads, which EIO3 servers since the 2.x era do not undo, so its
	// runs stay within ASCII (see matrix-client.js).
	asciiText    = "hello, plain ascii"
	burstSize    = 50
	orderClients = 8
	orderSize    = orderClients * 25 // clients × messages each, as in matrix-client.js
	matrixModes  = "polling websocket default"
)

var (
	generations = []int{1, 2, 3, 4}
	modes       = strings.Fields(matrixModes)
	scenarios   = []string{"chat", "sequential", "acks", "binary", "burst"}
	packageOf   = map[int]string{1: "1.", 2: "2.", 3: "3.", 4: "4."}
	nonNegInt   = regexp.MustCompile(`^(0|[1-9][0-9]*)$`)
)

// matrixServers are the two endpoints one part of the matrix talks to.
type matrixServers struct {
	chat, conformance string
}

// startMatrixServers starts a chat server and a conformance server of the
// kind -matrix.server selects; both stop when t ends.
func startMatrixServers(t *testing.T) matrixServers {
	t.Helper()
	return matrixServers{chat: startMatrixServer(t, "chatserver"), conformance: startMatrixServer(t, "conformance")}
}

// startMatrixServer starts one server, name being the command under cmd/,
// or its stand-in refserver.js under -matrix.server=node, and returns its URL.
func startMatrixServer(t *testing.T, name string) string {
	t.Helper()
	switch *matrixServerFlag {
	case "go":
		return testutil.Start(t, name).URL()
	case "node":
		if name == "conformance" {
			return startRefServer(t, "--conformance")
		}
		return startRefServer(t)
	default:
		t.Fatalf("-matrix.server=%q: want go or node", *matrixServerFlag)
		return ""
	}
}

// matrixClient is one client's part of the script's report.
type matrixClient struct {
	Index              int               `json:"index"`
	Generation         int               `json:"generation"`
	Version            string            `json:"version"`
	Mode               string            `json:"mode"`
	Connected          bool              `json:"connected"`
	TransportAtConnect string            `json:"transportAtConnect"`
	TransportAtEmit    string            `json:"transportAtEmit"`
	Transport          string            `json:"transport"`
	Upgraded           bool              `json:"upgraded"`
	Received           []string          `json:"received"`
	ClientIDs          []json.RawMessage `json:"clientIDs"`
	Foreign            int               `json:"foreign"`

	Ack         json.RawMessage `json:"ack"`
	Auth        json.RawMessage `json:"auth"`
	MessageAck  json.RawMessage `json:"messageAck"`
	AckRequest  json.RawMessage `json:"ackRequest"`
	AckResponse json.RawMessage `json:"ackResponse"`
	Sent        json.RawMessage `json:"sent"`
	MessageBack json.RawMessage `json:"messageBack"`
	SentAck     json.RawMessage `json:"sentAck"`
}

type matrixReport struct {
	Scenario  string         `json:"scenario"`
	Run       string         `json:"run"`
	Text      string         `json:"text"`
	Error     string         `json:"error"`
	ElapsedMs int            `json:"elapsedMs"`
	Clients   []matrixClient `json:"clients"`
}

// matrixRun describes one invocation of the script.
type matrixRun struct {
	scenario string
	gens     []int    // client i uses gens[i] (the last entry repeats)
	modes    []string // likewise
}

func (r matrixRun) text() string {
	for _, g := range r.gens {
		if g == 1 {
			return asciiText
		}
	}
	return unicodeText
}

func joinInts(xs []int) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}

// runMatrix runs the script once and returns its decoded report, after the
// checks every scenario shares: the right package generation was loaded,
// every client connected, and each ended on the transport its mode implies.
func runMatrix(t *testing.T, srv matrixServers, run matrixRun) matrixReport {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out := testutil.Node(ctx, t, matrixScript,
		"--url", srv.chat,
		"--conformance-url", srv.conformance,
		"--client", joinInts(run.gens),
		"--mode", strings.Join(run.modes, ","),
		"--scenario", run.scenario,
		"--text", run.text(),
		"--timeout", "15000",
	)
	var rep matrixReport
	if err := json.Unmarshal(bytes.TrimSpace(out), &rep); err != nil {
		t.Fatalf("matrix-client output is not one JSON line: %v\n%s", err, out)
	}
	if rep.Error != "" {
		t.Fatalf("matrix-client reported an error: %s\n%s", rep.Error, out)
	}
	if rep.Text != run.text() {
		t.Fatalf("script used text %q, want %q", rep.Text, run.text())
	}
	for i, c := range rep.Clients {
		gen := run.gens[min(i, len(run.gens)-1)]
		mode := run.modes[min(i, len(run.modes)-1)]
		if c.Generation != gen || !strings.HasPrefix(c.Version, packageOf[gen]) {
			t.Errorf("client %d: loaded generation %d version %q, want %d.x", i, c.Generation, c.Version, gen)
		}
		if !c.Connected {
			t.Errorf("client %d never connected", i)
		}
		switch mode {
		case "polling":
			if c.Transport != "polling" || c.Upgraded {
				t.Errorf("client %d (polling only): ended on %q (upgraded=%v), want polling without upgrade", i, c.Transport, c.Upgraded)
			}
		case "websocket":
			if c.Transport != "websocket" || c.TransportAtConnect != "websocket" {
				t.Errorf("client %d (websocket only): connected on %q, ended on %q, want websocket throughout", i, c.TransportAtConnect, c.Transport)
			}
		case "default":
			if c.Transport != "websocket" || !c.Upgraded {
				t.Errorf("client %d (default): ended on %q (upgraded=%v), want an upgrade to websocket", i, c.Transport, c.Upgraded)
			}
		}
		if len(c.Received) != len(c.ClientIDs) {
			t.Fatalf("client %d: %d messages but %d clientIDs", i, len(c.Received), len(c.ClientIDs))
		}
		for j, id := range c.ClientIDs {
			if !nonNegInt.Match(id) {
				t.Errorf("client %d: message %d has clientID %s, want a non-negative integer", i, j, id)
			}
		}
	}
	if t.Failed() {
		t.Logf("report: %s", out)
	}
	return rep
}

func chatMsg(r matrixReport, client, seq int) string {
	return fmt.Sprintf("%d|%d|%s", client, seq, r.Text)
}

// jsonEqual compares two JSON documents by value.
func jsonEqual(t *testing.T, a, b json.RawMessage) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("bad JSON %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("bad JSON %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func wantJSON(t *testing.T, what string, got json.RawMessage, want string) {
	t.Helper()
	if len(got) == 0 {
		t.Errorf("%s: missing, want %s", what, want)
		return
	}
	if !jsonEqual(t, got, json.RawMessage(want)) {
		t.Errorf("%s = %s, want %s", what, got, want)
	}
}

// idsBySender maps each received chat message to the clientID it carried.
func idsBySender(c matrixClient) map[string]string {
	m := make(map[string]string, len(c.Received))
	for i, msg := range c.Received {
		m[msg] = string(c.ClientIDs[i])
	}
	return m
}

// checkChat: both clients got both messages, in the same order, each
// message tagged with the same clientID everywhere, the two IDs distinct.
func checkChat(t *testing.T, r matrixReport) (id0, id1 string) {
	t.Helper()
	if len(r.Clients) != 2 {
		t.Fatalf("%d clients in report, want 2", len(r.Clients))
	}
	a, b := r.Clients[0], r.Clients[1]
	want := map[string]bool{chatMsg(r, 0, 0): true, chatMsg(r, 1, 0): true}
	for i, c := range r.Clients {
		if len(c.Received) != 2 || !want[c.Received[0]] || !want[c.Received[1]] || c.Received[0] == c.Received[1] {
			t.Fatalf("client %d received %q, want both %q", i, c.Received, []string{chatMsg(r, 0, 0), chatMsg(r, 1, 0)})
		}
	}
	if !reflect.DeepEqual(a.Received, b.Received) {
		t.Errorf("clients saw the broadcasts in different orders: %q vs %q", a.Received, b.Received)
	}
	ida, idb := idsBySender(a), idsBySender(b)
	if !reflect.DeepEqual(ida, idb) {
		t.Errorf("clientIDs differ between receivers: %v vs %v", ida, idb)
	}
	id0, id1 = ida[chatMsg(r, 0, 0)], ida[chatMsg(r, 1, 0)]
	if id0 == id1 {
		t.Errorf("both senders got clientID %s, want distinct IDs", id0)
	}
	return id0, id1
}

func checkSequential(t *testing.T, r matrixReport) (id0, id1 int) {
	t.Helper()
	s0, s1 := checkChat(t, r)
	if r.Clients[0].Received[0] != chatMsg(r, 0, 0) {
		t.Errorf("first broadcast is %q, want client 0's message", r.Clients[0].Received[0])
	}
	id0, _ = strconv.Atoi(s0) // checked to be integers by runMatrix
	id1, _ = strconv.Atoi(s1)
	if id0 >= id1 {
		t.Errorf("client 0 connected first but got clientID %d, client 1 got %d", id0, id1)
	}
	return id0, id1
}

func checkAcks(t *testing.T, r matrixReport, confGen int) {
	t.Helper()
	if len(r.Clients) != 2 {
		t.Fatalf("%d clients in report, want 2", len(r.Clients))
	}
	chat, conf := r.Clients[0], r.Clients[1]
	if len(chat.Received) != 1 || chat.Received[0] != chatMsg(r, 0, 0) {
		t.Fatalf("chat client received %q, want its own message", chat.Received)
	}
	wantJSON(t, "serverReceiver ack", chat.Ack, fmt.Sprintf(`{"clientID":%s}`, chat.ClientIDs[0]))
	wantJSON(t, "message-with-ack ack", conf.MessageAck, `[1,"2",{"3":[false]}]`)
	wantJSON(t, "ack-request args", conf.AckRequest, `["ping",42,{"k":[1,null]}]`)
	wantJSON(t, "ack-response args", conf.AckResponse, `["answer",7,{"echoed":3}]`)
	if confGen >= 3 {
		wantJSON(t, "auth event", conf.Auth, fmt.Sprintf(`{"token":%q}`, r.Run))
	} else {
		// Protocol v4 (1.x/2.x) has no CONNECT payload.
		wantJSON(t, "auth event", conf.Auth, `{}`)
	}
}

func checkBinary(t *testing.T, r matrixReport) {
	t.Helper()
	c := r.Clients[0]
	if !bytes.Contains(c.Sent, []byte(`"$bin"`)) || !bytes.Contains(c.SentAck, []byte(`"$bin"`)) {
		t.Fatalf("the script sent no binary: %s / %s", c.Sent, c.SentAck)
	}
	wantJSON(t, "message-back args", c.MessageBack, string(c.Sent))
	wantJSON(t, "binary message-with-ack ack", c.MessageAck, string(c.SentAck))
}

func checkBurst(t *testing.T, r matrixReport) {
	t.Helper()
	if len(r.Clients) != 2 {
		t.Fatalf("%d clients in report, want 2", len(r.Clients))
	}
	want := make([]string, burstSize)
	for k := range want {
		want[k] = chatMsg(r, 1, k)
	}
	var sender string
	for i, c := range r.Clients {
		if !reflect.DeepEqual(c.Received, want) {
			t.Errorf("client %d received %d messages, want the %d-message burst in order:\n got %q", i, len(c.Received), burstSize, c.Received)
			continue
		}
		for k, id := range c.ClientIDs {
			if sender == "" {
				sender = string(id)
			}
			if string(id) != sender {
				t.Errorf("client %d: message %d carries clientID %s, want the sender's %s", i, k, id, sender)
				break
			}
		}
	}
	t.Logf("burst emitted on %q, sender ended on %q", r.Clients[1].TransportAtEmit, r.Clients[1].Transport)
}

// TestClientMatrix runs every scenario for each client generation and
// transport mode; subtests are named v<generation>/<mode>/<scenario>. Each
// generation gets its own pair of servers, and its cells run in parallel
// (bounded by -parallel), so clientIDs there are distinct but not from 0.
func TestClientMatrix(t *testing.T) {
	testutil.NodeModules(t)
	for _, gen := range generations {
		t.Run(fmt.Sprintf("v%d", gen), func(t *testing.T) {
			srv := startMatrixServers(t)
			for _, mode := range modes {
				t.Run(mode, func(t *testing.T) {
					t.Parallel()
					for _, sc := range scenarios {
						t.Run(sc, func(t *testing.T) {
							t.Parallel()
							run := matrixRun{scenario: sc, gens: []int{gen}, modes: []string{mode}}
							r := runMatrix(t, srv, run)
							switch sc {
							case "chat":
								checkChat(t, r)
							case "sequential":
								checkSequential(t, r)
							case "acks":
								checkAcks(t, r, gen)
							case "binary":
								checkBinary(t, r)
							case "burst":
								checkBurst(t, r)
							}
						})
					}
				})
			}
		})
	}
}

// TestClientMatrixFreshIDs checks that a fresh chat server hands out
// clientIDs 0 and then 1, for every client generation.
func TestClientMatrixFreshIDs(t *testing.T) {
	testutil.NodeModules(t)
	for _, gen := range generations {
		t.Run(fmt.Sprintf("v%d", gen), func(t *testing.T) {
			t.Parallel()
			srv := startMatrixServers(t)
			r := runMatrix(t, srv, matrixRun{scenario: "sequential", gens: []int{gen}, modes: []string{"default"}})
			if id0, id1 := checkSequential(t, r); id0 != 0 || id1 != 1 {
				t.Errorf("fresh server handed out clientIDs %d, %d; want 0, 1", id0, id1)
			}
		})
	}
}

// TestClientMatrixMixed connects clients of different generations to one
// chat server and checks they see each other's messages. Each pair gets its
// own server: a 1.x client polling cannot parse the non-ASCII text of the
// other pairs (see asciiText).
func TestClientMatrixMixed(t *testing.T) {
	testutil.NodeModules(t)
	cases := []matrixRun{
		{gens: []int{4, 2}, modes: []string{"default", "default"}},
		{gens: []int{4, 2}, modes: []string{"websocket", "polling"}},
		{gens: []int{2, 4}, modes: []string{"websocket", "polling"}},
		{gens: []int{3, 1}, modes: []string{"default", "default"}},
	}
	for _, run := range cases {
		run.scenario = "chat"
		name := fmt.Sprintf("v%d-%s+v%d-%s", run.gens[0], run.modes[0], run.gens[1], run.modes[1])
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := matrixServers{chat: startMatrixServer(t, "chatserver")}
			srv.conformance = srv.chat // unused by the chat scenario
			checkChat(t, runMatrix(t, srv, run))
		})
	}
}

// TestClientMatrixBroadcastOrder has eight clients of mixed generations and
// transports emit 25 messages each at the same moment: every client must
// receive all 200, each sender's messages in its own order, and all clients
// must see the same interleaving, as a single Node.js server delivers it.
func TestClientMatrixBroadcastOrder(t *testing.T) {
	testutil.NodeModules(t)
	srv := matrixServers{chat: startMatrixServer(t, "chatserver")}
	srv.conformance = srv.chat // unused by the order scenario
	r := runMatrix(t, srv, matrixRun{
		scenario: "order",
		gens:     []int{4, 2, 3, 4, 2, 3, 4, 2},
		modes:    []string{"websocket", "polling", "websocket", "polling", "default", "default", "polling", "websocket"},
	})
	if len(r.Clients) != orderClients {
		t.Fatalf("%d clients in report, want %d", len(r.Clients), orderClients)
	}
	first := r.Clients[0].Received
	for i, c := range r.Clients {
		if len(c.Received) != orderSize {
			t.Fatalf("client %d received %d messages, want %d", i, len(c.Received), orderSize)
		}
		next := make(map[string]int) // sender -> next expected sequence number
		for _, m := range c.Received {
			var sender string
			var seq int
			parts := strings.SplitN(m, "|", 3)
			sender = parts[0]
			seq, _ = strconv.Atoi(parts[1])
			if seq != next[sender] {
				t.Fatalf("client %d: message %q arrived when sequence %d of sender %s was due", i, m, next[sender], sender)
			}
			next[sender]++
		}
		if i > 0 && !reflect.DeepEqual(c.Received, first) {
			for j := range first {
				if c.Received[j] != first[j] {
					t.Errorf("client %d's order departs from client 0's at position %d: %q vs %q", i, j, c.Received[j], first[j])
					break
				}
			}
		}
	}
}
