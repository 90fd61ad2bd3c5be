package socketio_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"

	"siogo/engineio"
	"siogo/socketio"
)

// lineConn stands for a connection without Socket.IO framing, a plain
// WebSocket say: it prints each message it is sent.
type lineConn struct{ id string }

func (c lineConn) ID() string        { return c.id }
func (c lineConn) Transport() string { return "lines" }
func (c lineConn) Close(string)      {}
func (c lineConn) Request() engineio.RequestInfo {
	return engineio.RequestInfo{URL: &url.URL{Path: "/"}, Header: http.Header{}}
}
func (c lineConn) Send(msgs ...engineio.Message) error {
	for _, m := range msgs {
		fmt.Printf("%s receives %s\n", c.id, m.Data)
	}
	return nil
}

// A connection that speaks neither Engine.IO nor Socket.IO joins a
// namespace as a raw socket: the text it sends is an event, and it receives
// the first argument of every event as JSON.
func ExampleNamespace_ConnectRaw() {
	io := socketio.NewServer(socketio.Options{})
	defer io.Close(context.Background())
	chat := io.Of("/")
	chat.OnEvent("say", func(s *socketio.Socket, m *socketio.Message) {
		var text string
		if len(m.Args) == 0 || json.Unmarshal(m.Args[0], &text) != nil {
			return
		}
		chat.Emit("said", map[string]string{"from": string(s.ID()), "text": text})
	})

	h, err := chat.ConnectRaw(lineConn{"plain-1"}, "say")
	if err != nil {
		fmt.Println("refused:", err)
		return
	}
	// The transport hands over each message the client sends.
	h.OnMessage([]byte("hello"), false)
	// Output: plain-1 receives {"from":"plain-1","text":"hello"}
}
