package socketio

import (
	"bytes"
	"encoding/json"
	"slices"

	"siogo/engineio"
)

// RawConn is a connection that carries bare messages, with no Engine.IO or
// Socket.IO framing, such as a plain WebSocket; Namespace.ConnectRaw makes
// it a socket. Its methods must be safe for concurrent use. An
// *engineio.Session is a RawConn too.
type RawConn interface {
	// ID identifies the connection; the socket's id is derived from it.
	ID() string
	// Request describes the request that opened the connection.
	Request() engineio.RequestInfo
	// Transport names the connection's transport (Socket.Transport).
	Transport() string
	// Send queues messages for the client, as one unit, without waiting
	// for them to be written. Their Data may be shared by many
	// connections and must not be modified.
	Send(msgs ...engineio.Message) error
	// Close ends the connection, telling the client why when it can.
	Close(reason string)
}

var _ RawConn = (*engineio.Session)(nil)

// ConnectRaw connects conn to the namespace as a socket: the namespace's
// middlewares run first (with nil auth), then its connect handlers. A
// middleware's error refuses the connection and is returned; conn is left
// open for the caller to close.
//
// A raw socket is a socket like any other: it joins rooms, receives
// broadcasts and is described by FetchSockets. Only the framing differs:
//
//   - Each event the socket is sent reaches conn as one message holding the
//     event's first argument alone: its JSON text, or its bytes in a binary
//     message when it is binary (the text null when there is none). A
//     broadcast computes that message once for every raw socket it reaches.
//   - Each text message conn receives is the event named event, with the
//     text as its one string argument; a binary message is the event with
//     one binary argument.
//   - A raw socket cannot acknowledge anything: EmitWithAck's callback gets
//     ErrAckTimeout or ErrDisconnected, and Message.WantsAck is false.
//
// The returned Handler is conn's: pass it every message conn receives, one
// at a time, and call OnClose once, when conn ends (even if it ended before
// ConnectRaw returned).
func (n *Namespace) ConnectRaw(conn RawConn, event string) (engineio.Handler, error) {
	sock := newSocket(n, conn, 0, nil, false, nil)
	r := &rawClient{sock: sock, conn: conn, event: event}
	sock.raw = r
	if err := n.runMiddlewares(sock, nil); err != nil {
		return nil, err
	}
	n.register(sock, nil)
	n.connected(sock)
	return r, nil
}

// rawClient is the connection under a socket connected with ConnectRaw.
type rawClient struct {
	sock  *Socket
	conn  RawConn
	event string
}

// OnMessage implements engineio.Handler.
func (r *rawClient) OnMessage(data []byte, binary bool) {
	r.sock.nsp.srv.opts.Observer.PacketIn()
	m := &Message{Event: r.event, socket: r.sock}
	if binary {
		m.Args = []json.RawMessage{appendPlaceholder(nil, 0)}
		m.Attachments = [][]byte{slices.Clone(data)}
	} else {
		arg, err := json.Marshal(string(data))
		if err != nil {
			return
		}
		m.Args = []json.RawMessage{arg}
	}
	r.sock.dispatch(m)
}

// OnClose implements engineio.Handler.
func (r *rawClient) OnClose(reason string) { r.sock.onClose(reason) }

// send sends an event packet in its raw form; other packets have none.
func (r *rawClient) send(p *packet) error {
	if p.Type != packetEvent {
		return nil
	}
	msg, err := rawMessage(p.Data, p.Attachments)
	if err != nil {
		return err
	}
	return r.conn.Send(msg)
}

// rawMessage is what a raw socket receives for an event: its first
// argument alone, binary when that is an attachment's placeholder.
func rawMessage(data json.RawMessage, attachments [][]byte) (engineio.Message, error) {
	elems, err := splitArgs(data)
	if err != nil {
		return engineio.Message{}, err
	}
	if len(elems) < 2 {
		return engineio.Message{Data: []byte("null")}, nil
	}
	arg := elems[1]
	if i, ok := placeholderIndex(arg); ok && i < len(attachments) {
		return engineio.Message{Data: attachments[i], Binary: true}, nil
	}
	return engineio.Message{Data: arg}, nil
}

// placeholderIndex returns the attachment index arg stands for, if it is a
// placeholder {"_placeholder":true,"num":i}.
func placeholderIndex(arg json.RawMessage) (int, bool) {
	if jsonKind(arg) != '{' || !bytes.Contains(arg, []byte(`"_placeholder"`)) {
		return 0, false
	}
	var p struct {
		Placeholder bool `json:"_placeholder"`
		Num         *int `json:"num"`
	}
	if json.Unmarshal(arg, &p) != nil || !p.Placeholder || p.Num == nil || *p.Num < 0 {
		return 0, false
	}
	return *p.Num, true
}
