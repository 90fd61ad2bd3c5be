package socketio

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"siogo/engineio"
)

// Handshake describes how a socket connected.
type Handshake struct {
	Auth    json.RawMessage // CONNECT payload, or the namespace query (protocol 4)
	Headers http.Header
	Query   url.Values
	Address string
	Time    time.Time
	URL     string
	Secure  bool
}

// Socket is a client's connection to one namespace.
type Socket struct {
	id        SocketID
	nsp       *Namespace
	client    *client                   // the Socket.IO client, or nil for a raw socket
	raw       *rawClient                // the raw connection of a raw socket (see Namespace.ConnectRaw)
	auth      json.RawMessage           // the CONNECT payload
	handshake atomic.Pointer[Handshake] // made when first asked for
	data      atomic.Pointer[any]
	// pid is the private session id of a recoverable socket, "" when the
	// socket cannot be recovered.
	pid       string
	recovered bool
	// replaying is set while a recovered socket is being brought up to
	// date; deliveries wait in pending meanwhile.
	replaying atomic.Bool
	// floor is the offset a recovered socket has been brought up to, until
	// a delivery passes it: deliveries at or below it are ones it has had.
	floor atomic.Pointer[string]

	mu        sync.Mutex
	connected bool
	nextAck   uint64
	acks      map[uint64]*pendingAck
	pending   []pendingDelivery
}

type pendingAck struct {
	fn    AckFunc
	timer *time.Timer
}

// AckFunc receives a client's answer to EmitWithAck: its arguments, with
// binary values as placeholders indexing attachments, or an error such as
// ErrAckTimeout.
type AckFunc func(args []json.RawMessage, attachments [][]byte, err error)

// Errors passed to an AckFunc.
var (
	ErrAckTimeout   = errors.New("socketio: ack timed out")
	ErrDisconnected = errors.New("socketio: socket disconnected")
)

// newSocket returns a socket on conn for a client of the given Socket.IO
// protocol revision, 0 for a raw socket; the caller sets client or raw.
// session is the recovered session it takes over, or nil.
func newSocket(nsp *Namespace, conn RawConn, protocol int, auth json.RawMessage, recoverable bool, session *SavedSession) *Socket {
	// Protocol 4 and raw sockets take the connection's id (with the
	// namespace's name in front but on "/"), as the reference does for
	// Engine.IO 3 clients; protocol 5 gives each socket one of its own.
	id := SocketID(engineio.NewSessionID())
	if protocol != 5 {
		id = SocketID(conn.ID())
		if nsp.name != "/" {
			id = SocketID(nsp.name + "#" + conn.ID())
		}
	}
	if auth == nil {
		auth = emptyAuth
	}
	pid := ""
	switch {
	case session != nil:
		id, pid = session.SID, session.PID
	case recoverable:
		pid = newPID()
	}
	s := &Socket{
		id:        id,
		pid:       pid,
		recovered: session != nil,
		nsp:       nsp,
		connected: true,
		auth:      auth,
	}
	if session != nil {
		var data any = session.Data
		s.data.Store(&data)
	}
	return s
}

// ID returns the socket id, unique within the namespace.
func (s *Socket) ID() SocketID { return s.id }

// Namespace returns the socket's namespace.
func (s *Socket) Namespace() *Namespace { return s.nsp }

// emptyAuth is the auth of a CONNECT without a payload.
var emptyAuth = json.RawMessage("{}")

// Handshake describes the connection request. It is made from the
// connection's request the first time it is asked for, so that a socket
// whose handlers never look holds only its auth.
func (s *Socket) Handshake() *Handshake {
	if h := s.handshake.Load(); h != nil {
		return h
	}
	req := s.conn().Request()
	h := &Handshake{
		Auth:    s.auth,
		Headers: req.Header,
		Query:   req.URL.Query(),
		Address: req.RemoteAddr,
		Time:    req.Time,
		URL:     req.URL.RequestURI(),
		Secure:  req.Secure,
	}
	if s.handshake.CompareAndSwap(nil, h) {
		return h
	}
	return s.handshake.Load()
}

// Protocol returns the Socket.IO protocol revision, 4 or 5, or 0 for a raw
// socket (see Namespace.ConnectRaw).
func (s *Socket) Protocol() int {
	if s.raw != nil {
		return 0
	}
	return s.client.protocol()
}

// Transport returns the transport currently in use.
func (s *Socket) Transport() string { return s.conn().Transport() }

// SessionID returns the id of the Engine.IO session under the socket, or of
// a raw socket's connection.
func (s *Socket) SessionID() string { return s.conn().ID() }

// conn is the connection under the socket.
func (s *Socket) conn() RawConn {
	if s.raw != nil {
		return s.raw.conn
	}
	return s.client.conn
}

// SetData attaches application data to the socket. It travels with the
// socket, encoded with encoding/json: FetchSockets on any node shows it, and
// a recovered socket gets it back.
func (s *Socket) SetData(v any) {
	s.data.Store(&v)
	s.sessionChanged()
}

// Data returns what SetData stored, or nil. A recovered socket's data is
// the json.RawMessage it was stored as, until SetData replaces it.
func (s *Socket) Data() any {
	if p := s.data.Load(); p != nil {
		return *p
	}
	return nil
}

// Recovered reports whether the socket took over the session of a
// disconnected one, with its id, rooms and data, after connection-state
// recovery.
func (s *Socket) Recovered() bool { return s.recovered }

// Connected reports whether the socket is still connected.
func (s *Socket) Connected() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connected
}

// Emit sends an event to this client. A json.RawMessage argument is sent as
// it is, a []byte argument as a binary attachment, and any other value is
// encoded with encoding/json.
func (s *Socket) Emit(event string, args ...any) error {
	data, attachments, err := encodeEvent(event, args)
	if err != nil {
		return err
	}
	return s.sendEvent(&packet{Type: packetEvent, Namespace: s.nsp.name, Data: data, Attachments: attachments})
}

// EmitRaw sends an event whose arguments are already JSON, with binary
// values as placeholders indexing attachments: what a Message carries, so a
// handler can pass a client's arguments on unchanged.
func (s *Socket) EmitRaw(event string, args []json.RawMessage, attachments [][]byte) error {
	data, err := rawEvent(event, args)
	if err != nil {
		return err
	}
	return s.sendEvent(&packet{Type: packetEvent, Namespace: s.nsp.name, Data: data, Attachments: attachments})
}

// sendEvent sends an event to this client, once the namespace's outgoing
// listeners have seen it: its frames on the Engine.IO session, or its raw
// form on a raw socket's connection.
func (s *Socket) sendEvent(p *packet) error {
	if hooks := s.nsp.hooks.anyOutgoing.load(); hooks != nil {
		notifyOutgoing(hooks, p.Data, p.Attachments, []*Socket{s})
	}
	if s.raw != nil {
		return s.raw.send(p)
	}
	return s.client.sendPacket(p)
}

func rawEvent(event string, args []json.RawMessage) (json.RawMessage, error) {
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a
	}
	data, _, err := encodeEvent(event, vals)
	return data, err
}

// EmitWithAck sends an event and asks the client to acknowledge it. ack is
// called exactly once: with the client's answer, with ErrAckTimeout after
// timeout (when timeout > 0), or with ErrDisconnected.
func (s *Socket) EmitWithAck(event string, timeout time.Duration, ack AckFunc, args ...any) error {
	data, attachments, err := encodeEvent(event, args)
	if err != nil {
		return err
	}
	return s.emitWithAck(data, attachments, timeout, ack)
}

// emitWithAck registers ack under the next id and sends the encoded event
// asking for it.
func (s *Socket) emitWithAck(data json.RawMessage, attachments [][]byte, timeout time.Duration, ack AckFunc) error {
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return ErrDisconnected
	}
	id := s.nextAck
	s.nextAck++
	pa := &pendingAck{fn: ack}
	if s.acks == nil {
		s.acks = make(map[uint64]*pendingAck)
	}
	s.acks[id] = pa
	if timeout > 0 {
		pa.timer = time.AfterFunc(timeout, func() {
			if p := s.takeAck(id); p != nil {
				p.fn(nil, nil, ErrAckTimeout)
			}
		})
	}
	s.mu.Unlock()
	err := s.sendEvent(&packet{Type: packetEvent, Namespace: s.nsp.name, ID: id, HasID: true, Data: data, Attachments: attachments})
	if err != nil {
		if p := s.takeAck(id); p != nil && p.timer != nil {
			p.timer.Stop()
		}
	}
	return err
}

func (s *Socket) takeAck(id uint64) *pendingAck {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.acks[id]
	delete(s.acks, id)
	return p
}

// Join adds the socket to rooms.
func (s *Socket) Join(rooms ...Room) {
	s.nsp.joinRooms(s.id, rooms...)
	s.sessionChanged()
}

// Leave removes the socket from a room.
func (s *Socket) Leave(room Room) {
	s.nsp.leaveRoom(s.id, room)
	s.sessionChanged()
}

// sessionChanged stores a recoverable socket's session again.
func (s *Socket) sessionChanged() {
	if k := s.nsp.srv.keeper; k != nil && s.pid != "" {
		k.changed(s)
	}
}

// Rooms returns the rooms the socket is in.
func (s *Socket) Rooms() []Room { return s.nsp.rooms.of(s.id) }

// Broadcast selects every socket of the namespace but this one.
func (s *Socket) Broadcast() *BroadcastOperator {
	return s.nsp.broadcast(BroadcastOptions{Except: []Room{Room(s.id)}})
}

// To selects the sockets in rooms, leaving this socket out.
func (s *Socket) To(rooms ...Room) *BroadcastOperator { return s.Broadcast().To(rooms...) }

// Disconnect leaves the namespace, telling the client. With closeConn the
// whole underlying connection is closed too; a raw socket's connection,
// which serves that socket alone, is closed either way.
func (s *Socket) Disconnect(closeConn bool) {
	if !s.Connected() {
		return
	}
	if s.raw != nil {
		s.onClose("server namespace disconnect")
		s.raw.conn.Close("server namespace disconnect")
		return
	}
	s.client.sendPacket(&packet{Type: packetDisconnect, Namespace: s.nsp.name})
	s.client.remove(s)
	s.onClose("server namespace disconnect")
	if closeConn {
		s.client.conn.Close("forced close")
	}
}

func (s *Socket) onClose(reason string) {
	s.mu.Lock()
	if !s.connected {
		s.mu.Unlock()
		return
	}
	s.connected = false
	acks := s.acks
	s.acks = nil
	s.mu.Unlock()
	if k := s.nsp.srv.keeper; k != nil && s.pid != "" {
		k.disconnected(s, s.Rooms(), reason)
	}
	s.nsp.remove(s, reason)
	for _, p := range acks {
		if p.timer != nil {
			p.timer.Stop()
		}
		p.fn(nil, nil, ErrDisconnected)
	}
}

func (s *Socket) onPacket(p *packet) {
	switch p.Type {
	case packetEvent:
		s.onEvent(p)
	case packetAck:
		pa := s.takeAck(p.ID)
		if pa == nil {
			return
		}
		if pa.timer != nil {
			pa.timer.Stop()
		}
		args, err := splitArgs(p.Data)
		pa.fn(args, p.Attachments, err)
	case packetDisconnect:
		s.client.remove(s)
		s.onClose("client namespace disconnect")
	}
}

// Message is an event received from a client.
type Message struct {
	Event string
	// Args are the event's arguments after the name. Binary values are
	// placeholders {"_placeholder":true,"num":i} indexing Attachments.
	Args        []json.RawMessage
	Attachments [][]byte

	socket   *Socket
	ackID    uint64
	wantsAck bool
	acked    atomic.Bool
}

// WantsAck reports whether the client asked for an acknowledgement.
func (m *Message) WantsAck() bool { return m.wantsAck }

// Ack answers the client's acknowledgement request; only the first call
// sends. Arguments follow the rules of Socket.Emit.
func (m *Message) Ack(args ...any) error {
	data, attachments, err := encodeArgs(nil, args)
	if err != nil {
		return err
	}
	return m.ack(data, attachments)
}

// AckRaw answers with arguments that are already JSON (see EmitRaw).
func (m *Message) AckRaw(args []json.RawMessage, attachments [][]byte) error {
	vals := make([]any, len(args))
	for i, a := range args {
		vals[i] = a
	}
	data, _, err := encodeArgs(nil, vals)
	if err != nil {
		return err
	}
	return m.ack(data, attachments)
}

func (m *Message) ack(data json.RawMessage, attachments [][]byte) error {
	if !m.wantsAck || m.acked.Swap(true) {
		return nil
	}
	return m.socket.client.sendPacket(&packet{Type: packetAck, Namespace: m.socket.nsp.name, ID: m.ackID, HasID: true, Data: data, Attachments: attachments})
}

func (s *Socket) onEvent(p *packet) {
	elems, err := splitArgs(p.Data)
	if err != nil || len(elems) == 0 {
		return
	}
	name, _ := eventName(p.Data)
	s.dispatch(&Message{Event: name, Args: elems[1:], Attachments: p.Attachments, socket: s, ackID: p.ID, wantsAck: p.HasID})
}

// dispatch runs the namespace's listeners and handler of m's event.
func (s *Socket) dispatch(m *Message) {
	h := s.nsp.handler(m.Event)
	anyHooks := s.nsp.hooks.anyIncoming.load()
	if h == nil && anyHooks == nil {
		return
	}
	defer func() {
		// A failing handler costs its own client the connection, never
		// the process.
		if r := recover(); r != nil {
			s.nsp.srv.log.Error("socketio: event handler panicked", "event", m.Event, "panic", r, "stack", string(debug.Stack()))
			s.conn().Close("handler panic")
		}
	}()
	for _, f := range anyHooks {
		f(s, m)
	}
	if h != nil {
		h(s, m)
	}
}
