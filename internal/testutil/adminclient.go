package testutil

import (
	"encoding/json"
	"testing"
	"time"
)

// AdminEvent is one line of testdata/node/admin-client.js: the connection's
// own events (connect, connect_error, disconnect) and, as "event", every
// event the admin namespace sent it.
type AdminEvent struct {
	Ev      string            `json:"ev"`
	SID     string            `json:"sid"`
	Message string            `json:"message"`
	Reason  string            `json:"reason"`
	Name    string            `json:"name"`
	Args    []json.RawMessage `json:"args"`
}

// Arg decodes argument i of an event into v, failing the test if it cannot.
func (e AdminEvent) Arg(t testing.TB, i int, v any) {
	t.Helper()
	if i >= len(e.Args) {
		t.Fatalf("testutil: %s has %d arguments, not %d", e.Name, len(e.Args), i+1)
	}
	if err := json.Unmarshal(e.Args[i], v); err != nil {
		t.Fatalf("testutil: %s argument %d: %v in %s", e.Name, i, err, e.Args[i])
	}
}

// AdminClient is a real socket.io-client connected to an admin namespace,
// as the Socket.IO Admin UI's dashboard connects (admin-client.js).
type AdminClient struct {
	t      testing.TB
	script *Script
}

// StartAdminClient connects a dashboard-like client to url's admin
// namespace with the given CONNECT payload (auth), plus extra flags of
// admin-client.js (e.g. "--transports", "websocket"). It exits when the test
// ends.
func StartAdminClient(t testing.TB, url string, auth any, extra ...string) *AdminClient {
	t.Helper()
	b, err := json.Marshal(auth)
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"--url", url, "--auth", string(b)}, extra...)
	return &AdminClient{t: t, script: StartScript(t, "testdata/node/admin-client.js", args...)}
}

// Close disconnects the client and waits for it to exit.
func (c *AdminClient) Close() { c.script.Stop() }

// Emit sends an event to the admin namespace.
func (c *AdminClient) Emit(args ...any) { c.script.Send(map[string]any{"cmd": "emit", "args": args}) }

func decodeAdminEvents(lines []json.RawMessage) []AdminEvent {
	out := make([]AdminEvent, 0, len(lines))
	for _, l := range lines {
		var e AdminEvent
		if json.Unmarshal(l, &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

// Events returns what the client has received so far.
func (c *AdminClient) Events() []AdminEvent { return decodeAdminEvents(c.script.Lines()) }

// WaitFor waits until cond holds for the events received so far and
// returns them, failing the test after timeout or if the client exits.
func (c *AdminClient) WaitFor(timeout time.Duration, desc string, cond func([]AdminEvent) bool) []AdminEvent {
	c.t.Helper()
	lines := c.script.WaitFor(timeout, desc, func(lines []json.RawMessage) bool { return cond(decodeAdminEvents(lines)) })
	return decodeAdminEvents(lines)
}

// WaitEvent waits for an event named name for which match (nil: any)
// holds, and returns the first.
func (c *AdminClient) WaitEvent(timeout time.Duration, name string, match func(AdminEvent) bool) AdminEvent {
	c.t.Helper()
	var found AdminEvent
	c.WaitFor(timeout, "event "+name, func(evs []AdminEvent) bool {
		for _, e := range evs {
			if e.Ev == "event" && e.Name == name && (match == nil || match(e)) {
				found = e
				return true
			}
		}
		return false
	})
	return found
}
