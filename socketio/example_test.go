package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"siogo/engineio"
	"siogo/internal/eioclient"
	"siogo/socketio"
)

// The chat this project started from: a client emits serverReceiver with a
// line, and every client receives clientReceiver with the line and the
// sender's number.
func Example() {
	io := socketio.NewServer(socketio.Options{})
	chat := io.Of("/")
	var next atomic.Int64
	chat.OnConnect(func(s *socketio.Socket) {
		s.SetData(next.Add(1) - 1) // the client's number, from 0
	})
	chat.On("serverReceiver", func(s *socketio.Socket, message string) {
		chat.Emit("clientReceiver", map[string]any{"clientID": s.Data(), "message": message})
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", io)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	// A client of this example; a socket.io client in a browser, in real
	// life.
	c := dial(srv.URL, "/", "")
	c.emit(`["serverReceiver","hello"]`)
	fmt.Println(c.next())
	// Output: 2["clientReceiver",{"clientID":0,"message":"hello"}]
}

// Handlers take the event's arguments as typed parameters; their results
// answer a client that asked for an acknowledgement.
func ExampleNamespace_On() {
	io := socketio.NewServer(socketio.Options{})
	io.Of("/").On("add", func(s *socketio.Socket, a, b int) int { return a + b })

	srv := httptest.NewServer(io)
	defer srv.Close()
	c := dial(srv.URL, "/", "")
	c.emit(`7["add",2,3]`) // 7 asks for an acknowledgement
	fmt.Println(c.next())
	// Output: 37[5]
}

// Rooms group sockets; a broadcast to a room reaches its members on every
// node.
func ExampleSocket_Join() {
	io := socketio.NewServer(socketio.Options{})
	nsp := io.Of("/")
	nsp.On("join", func(s *socketio.Socket, room string) {
		s.Join(socketio.Room(room))
		nsp.To(socketio.Room(room)).Emit("welcome", room)
	})

	srv := httptest.NewServer(io)
	defer srv.Close()
	c := dial(srv.URL, "/", "")
	c.emit(`["join","blue"]`)
	fmt.Println(c.next())
	// Output: 2["welcome","blue"]
}

// A server asks a client for an acknowledgement and gives up after a
// timeout.
func ExampleSocket_EmitWithAck() {
	io := socketio.NewServer(socketio.Options{})
	answered := make(chan string)
	io.Of("/").OnConnect(func(s *socketio.Socket) {
		s.EmitWithAck("question", 100*time.Millisecond, func(args []json.RawMessage, _ [][]byte, err error) {
			switch {
			case errors.Is(err, socketio.ErrAckTimeout):
				answered <- "no answer in time"
			case err != nil:
				answered <- err.Error()
			default:
				answered <- "answer " + string(args[0])
			}
		}, "ready?")
	})

	srv := httptest.NewServer(io)
	defer srv.Close()
	c := dial(srv.URL, "/", "")
	fmt.Println(c.next()) // the client does not answer
	fmt.Println(<-answered)
	// Output:
	// 20["question","ready?"]
	// no answer in time
}

// A []byte argument travels as a binary attachment.
func ExampleSocket_Emit_binary() {
	io := socketio.NewServer(socketio.Options{})
	io.Of("/").OnConnect(func(s *socketio.Socket) {
		s.Emit("file", "logo.png", []byte{0x89, 'P', 'N', 'G'})
	})

	srv := httptest.NewServer(io)
	defer srv.Close()
	c := dial(srv.URL, "/", "")
	fmt.Println(c.next())
	fmt.Printf("% x\n", c.nextBinary())
	// Output:
	// 51-["file","logo.png",{"_placeholder":true,"num":0}]
	// 89 50 4e 47
}

// A middleware checks the auth a client sends when it connects; a refused
// client gets the error's message.
func ExampleNamespace_Use() {
	io := socketio.NewServer(socketio.Options{})
	admin := io.Of("/admin")
	admin.Use(func(s *socketio.Socket, auth json.RawMessage) error {
		var a struct{ Token string }
		if json.Unmarshal(auth, &a) != nil || a.Token != "secret" {
			return &socketio.ConnectError{Message: "not authorized"}
		}
		return nil
	})

	srv := httptest.NewServer(io)
	defer srv.Close()
	fmt.Println(dial(srv.URL, "/admin", `{"token":"guess"}`).connectReply)
	fmt.Println(strings.HasPrefix(dial(srv.URL, "/admin", `{"token":"secret"}`).connectReply, `0/admin,{"sid":`))
	// Output:
	// 4/admin,{"message":"not authorized"}
	// true
}

// exampleClient is a minimal Socket.IO client for the examples.
type exampleClient struct {
	c            *eioclient.Client
	connectReply string
}

func dial(base, nsp, auth string) *exampleClient {
	ctx := context.Background()
	c, err := eioclient.Dial(ctx, base+"/socket.io/", 4, "websocket", nil)
	if err != nil {
		panic(err)
	}
	connect := "40"
	if nsp != "/" {
		connect += nsp + ","
	}
	if err := c.Send(ctx, connect+auth); err != nil {
		panic(err)
	}
	e := &exampleClient{c: c}
	e.connectReply = e.next()
	return e
}

func (e *exampleClient) emit(packet string) {
	if err := e.c.Send(context.Background(), "42"+packet); err != nil {
		panic(err)
	}
}

// next returns the next Socket.IO packet, as text.
func (e *exampleClient) next() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := e.c.Next(ctx)
	if err != nil {
		panic(err)
	}
	return string(p.Data)
}

func (e *exampleClient) nextBinary() []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p, err := e.c.Next(ctx)
	if err != nil || !p.Binary {
		panic(fmt.Sprint("want a binary message: ", err))
	}
	return p.Data
}

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
	chat.On("say", func(s *socketio.Socket, text string) {
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
