package redisbroker

import (
	"context"
	"encoding/json"
	"testing"

	"siogo/internal/testutil"
)

// startNodeJS runs the Node.js cluster member of testdata/node on redisURL
// and returns its base URL.
func startNodeJS(t *testing.T, redisURL string) string {
	t.Helper()
	return testutil.StartNodeServer(t, "testdata/node/redis-node-server.js", "--redis", redisURL)
}

// TestRequestsAnsweredByNodeJS sends this node's requests and broadcasts to
// a Node.js socket.io node with the Redis adapter and checks its answers and
// what its client receives.
func TestRequestsAnsweredByNodeJS(t *testing.T) {
	r := testutil.StartRedis(t)
	a := startNode(t, r.URL())
	waitSubscribed(t, a)
	nodeURL := startNodeJS(t, r.URL())
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	testutil.Eventually(t, waitTimeout, func() bool {
		n, err := a.nsp().ServerCount(ctx)
		return err == nil && n == 2
	}, "the Node.js node to subscribe")

	ca, sa := a.connect(t)
	cn := dialWS(t, nodeURL, "/")

	rooms, err := a.nsp().AllRooms(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(rooms) != 2 || !containsRoom(rooms, Room(sa.ID())) || !containsRoom(rooms, Room(cn.sid)) {
		t.Errorf("AllRooms = %v, want the rooms of %s and %s", rooms, sa.ID(), cn.sid)
	}

	sockets, err := a.nsp().Except(Room(sa.ID())).FetchSockets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(sockets) != 1 || string(sockets[0].ID) != cn.sid {
		t.Fatalf("FetchSockets = %+v, want the Node.js client only", sockets)
	}
	var hs map[string]json.RawMessage
	json.Unmarshal(sockets[0].Handshake, &hs)
	var data struct{ ClientID *int64 }
	json.Unmarshal(sockets[0].Data, &data)
	if hs["headers"] == nil || hs["query"] == nil || data.ClientID == nil {
		t.Errorf("Node.js socket: handshake %s, data %s", sockets[0].Handshake, sockets[0].Data)
	}

	answers, err := a.nsp().ServerSideEmitWithAck(ctx, "ping", 1, "two")
	if err != nil {
		t.Fatal(err)
	}
	if len(answers) != 1 || string(answers[0]) != `{"node":true,"args":[1,"two"]}` {
		t.Errorf("serverSideEmit answers %s", answers)
	}

	// Binary arguments reach the Node.js client as binary attachments.
	a.io.Of("/").Emit("bin", []byte{1, 2, 3}, "t")
	for _, c := range []*wsClient{ca, cn} {
		c.expect(`51-["bin",{"_placeholder":true,"num":0},"t"]`)
		c.expectBinary([]byte{1, 2, 3})
	}

	// The Node.js node applies our remote join: a broadcast to the room,
	// sent after it, reaches its client.
	a.nsp().SocketsJoin("gold")
	a.io.Of("/").To("gold").Emit("gold-only")
	ca.expect(`2["gold-only"]`)
	cn.expect(`2["gold-only"]`)

	a.nsp().To(Room(cn.sid)).DisconnectSockets(false)
	cn.expect("1")
	a.io.Of("/").Emit("still here")
	ca.expect(`2["still here"]`)
}

func containsRoom(rooms []Room, r Room) bool {
	for _, x := range rooms {
		if x == r {
			return true
		}
	}
	return false
}
