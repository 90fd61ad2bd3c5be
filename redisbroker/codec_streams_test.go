package redisbroker

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"siogo/socketio"
)

// The stream entries and the session below were written by a Node.js
// socket.io 4.8.4 server with @socket.io/redis-streams-adapter 0.3.1:
//
//	io.emit("clientReceiver", {clientID: 3, message: "héllo"})
//	io.to("room1").except("room2").emit("bin", Buffer.from([1, 2, 3]), "x")
//	io.socketsJoin("vip")
//	io.in("vip").disconnectSockets(false)
//
// and, for the session, a socket that joined room1, had data {clientID: 7,
// nested: {b: true}}, and lost its connection.
var nodeEntries = []struct {
	name string
	typ  string
	data string
}{
	{"broadcast", "3", `{"packet":{"type":2,"data":["clientReceiver",{"clientID":3,"message":"héllo"}]},"opts":{"rooms":[],"except":[],"flags":{}}}`},
	{"binary broadcast", "3", "gqZwYWNrZXSCpHR5cGUCpGRhdGGTo2JpbsQDAQIDoXikb3B0c4Olcm9vbXORpXJvb20xpmV4Y2VwdJGlcm9vbTKlZmxhZ3OA"},
	{"socketsJoin", "4", `{"opts":{"rooms":[],"except":[],"flags":{}},"rooms":["vip"]}`},
	{"disconnectSockets", "6", `{"opts":{"rooms":["vip"],"except":[],"flags":{}},"close":false}`},
}

const nodeSession = "hKNzaWS0YjJDSV9Bck5wb2JWTjZoVkFBQUGjcGlktGtreEZCMEF0MkNjS01ma2VBQUFCpXJvb21zkrRiMkNJX0FyTnBvYlZONmhWQUFBQaVyb29tMaRkYXRhgqhjbGllbnRJRAembmVzdGVkgaFiww=="

func nodeFields(typ, data string) []string {
	return []string{"uid", "ccbe437028677333", "nsp", "/", "type", typ, "data", data}
}

func TestStreamEntriesMatchNode(t *testing.T) {
	ours := []struct {
		data        json.RawMessage
		attachments [][]byte
	}{
		{broadcastData(&socketio.Broadcast{Namespace: "/", Data: json.RawMessage(`["clientReceiver",{"clientID":3,"message":"héllo"}]`)}), nil},
		{broadcastData(&socketio.Broadcast{Namespace: "/", Data: json.RawMessage(`["bin",{"_placeholder":true,"num":0},"x"]`),
			Opts: socketio.BroadcastOptions{Rooms: []socketio.Room{"room1"}, Except: []socketio.Room{"room2"}}}), [][]byte{{1, 2, 3}}},
		{selectionData(&socketio.NodeRequest{Type: socketio.RequestSocketsJoin, Rooms: []socketio.Room{"vip"}}), nil},
		{selectionData(&socketio.NodeRequest{Type: socketio.RequestDisconnectSockets, Opts: socketio.BroadcastOptions{Rooms: []socketio.Room{"vip"}}}), nil},
	}
	for i, row := range nodeEntries {
		fields, err := entryFields("ccbe437028677333", "/", 0, ours[i].data, ours[i].attachments, 9)
		if err != nil {
			t.Fatal(err)
		}
		if got := fields[7].(string); got != row.data {
			t.Errorf("%s: data\n got %s\nwant %s", row.name, got, row.data)
		}
	}
}

func TestParseNodeEntries(t *testing.T) {
	var got []any
	for _, row := range nodeEntries {
		e, err := parseEntry("1-0", nodeFields(row.typ, row.data))
		if err != nil {
			t.Fatalf("%s: %v", row.name, err)
		}
		if e.uid != "ccbe437028677333" || e.nsp != "/" || e.seq != 0 {
			t.Fatalf("%s: %+v", row.name, e)
		}
		switch e.typ {
		case msgBroadcast:
			b, err := e.broadcast()
			if err != nil {
				t.Fatalf("%s: %v", row.name, err)
			}
			got = append(got, b)
		default:
			m, err := e.request()
			if err != nil {
				t.Fatalf("%s: %v", row.name, err)
			}
			got = append(got, m)
		}
	}
	want := []any{
		&socketio.Broadcast{Namespace: "/", Data: json.RawMessage(`["clientReceiver",{"clientID":3,"message":"héllo"}]`)},
		&socketio.Broadcast{Namespace: "/", Data: json.RawMessage(`["bin",{"_placeholder":true,"num":0},"x"]`), Attachments: [][]byte{{1, 2, 3}},
			Opts: socketio.BroadcastOptions{Rooms: []socketio.Room{"room1"}, Except: []socketio.Room{"room2"}}},
		&socketio.NodeRequest{Type: socketio.RequestSocketsJoin, Namespace: "/", From: "ccbe437028677333", Rooms: []socketio.Room{"vip"}},
		&socketio.NodeRequest{Type: socketio.RequestDisconnectSockets, Namespace: "/", From: "ccbe437028677333", Opts: socketio.BroadcastOptions{Rooms: []socketio.Room{"vip"}}},
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("%s:\n got %+v\nwant %+v", nodeEntries[i].name, got[i], want[i])
		}
	}
}

func TestSessionEncoding(t *testing.T) {
	s, err := decodeSession([]byte(nodeSession))
	if err != nil {
		t.Fatal(err)
	}
	want := &socketio.SavedSession{PID: "kkxFB0At2CcKMfkeAAAB", SID: "b2CI_ArNpobVN6hVAAAA",
		Rooms: []socketio.Room{"b2CI_ArNpobVN6hVAAAA", "room1"}, Data: json.RawMessage(`{"clientID":7,"nested":{"b":true}}`)}
	if !reflect.DeepEqual(s, want) {
		t.Fatalf("Node.js session:\n got %+v\nwant %+v", s, want)
	}
	want.Expires = time.UnixMilli(1796220641285)
	value, err := encodeSession(want)
	if err != nil {
		t.Fatal(err)
	}
	back, err := decodeSession([]byte(value))
	if err != nil || !reflect.DeepEqual(back, want) {
		t.Fatalf("round trip: %+v, %v", back, err)
	}
}

func TestMalformedEntries(t *testing.T) {
	for name, fields := range map[string][]string{
		"odd fields":        {"uid"},
		"bad type":          nodeFields("x", "{}"),
		"bad base64":        nodeFields("3", "!!!"),
		"bad JSON":          nodeFields("3", "{oops"),
		"bad seq":           append(nodeFields("3", "{}"), "seq", "-1"),
		"truncated msgpack": nodeFields("3", "gqZwYWNr"),
	} {
		if _, err := parseEntry("1-0", fields); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	for name, data := range map[string]string{
		"not an event":      `{"packet":{"type":2,"data":{}},"opts":{}}`,
		"reserved type":     `{"packet":{"type":0,"data":["x"]},"opts":{}}`,
		"opts not a object": `{"packet":{"type":2,"data":["x"]},"opts":[]}`,
	} {
		e, err := parseEntry("1-0", nodeFields("3", data))
		if err != nil {
			continue
		}
		if _, err := e.broadcast(); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
}
