package socketio

import (
	"bytes"
	"encoding/json"
	"slices"
	"sync"
	"sync/atomic"

	"siogo/engineio"
)

// This file holds the listeners a program adds to watch a server: new
// namespaces and connections, sockets joining and leaving rooms, transport
// upgrades, and catch-all listeners for the events going in and out, as
// Node.js socket.io offers them (io.on("new_namespace"),
// io.engine.on("connection"), the adapter's "join-room" and "leave-room",
// socket.conn.on("upgrade"), socket.onAny, socket.onAnyOutgoing). Without
// listeners none of them costs anything on the paths they watch: a nil
// load, no lock and no allocation.

// listeners is a list of functions that is read without a lock and
// replaced whole when one is added.
type listeners[F any] struct {
	mu   sync.Mutex
	list atomic.Pointer[[]F]
}

func (l *listeners[F]) add(f F) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var next []F
	if p := l.list.Load(); p != nil {
		next = slices.Clone(*p)
	}
	next = append(next, f)
	l.list.Store(&next)
}

// load returns the listeners, nil when there is none.
func (l *listeners[F]) load() []F {
	if p := l.list.Load(); p != nil {
		return *p
	}
	return nil
}

// serverHooks are the listeners of a Server.
type serverHooks struct {
	namespace       listeners[func(*Namespace)]
	connection      listeners[func(*engineio.Session)]
	connectionClose listeners[func(*engineio.Session, string)]
}

// namespaceHooks are the listeners of a Namespace.
type namespaceHooks struct {
	joinRoom    listeners[func(Room, SocketID)]
	leaveRoom   listeners[func(Room, SocketID)]
	upgrade     listeners[func(*Socket)]
	anyIncoming listeners[EventHandler]
	anyOutgoing listeners[OutgoingHandler]
}

// Namespaces returns the server's namespaces.
func (s *Server) Namespaces() []*Namespace {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*Namespace, 0, len(s.nsps))
	for _, n := range s.nsps {
		out = append(out, n)
	}
	return out
}

// OnNamespace adds a listener called with each namespace created from now
// on (see Namespaces for the existing ones).
func (s *Server) OnNamespace(f func(*Namespace)) { s.hooks.namespace.add(f) }

// OnConnection adds a listener called with each new connection: an
// Engine.IO session, over which the client then opens its sockets, one per
// namespace. It runs before any of them connects.
func (s *Server) OnConnection(f func(conn *engineio.Session)) { s.hooks.connection.add(f) }

// OnConnectionClose adds a listener called once a connection has closed,
// with the reason (e.g. "transport close", "ping timeout"), after its
// sockets have disconnected.
func (s *Server) OnConnectionClose(f func(conn *engineio.Session, reason string)) {
	s.hooks.connectionClose.add(f)
}

// OnJoinRoom adds a listener called each time a socket of this node joins
// a room it was not in, its own room included, as the "join-room" event of
// a Node.js adapter. Listeners run after the change, outside any lock of
// the namespace.
func (n *Namespace) OnJoinRoom(f func(room Room, id SocketID)) { n.hooks.joinRoom.add(f) }

// OnLeaveRoom adds a listener called each time a socket of this node
// leaves a room it was in, which it does from every room when it
// disconnects, as the "leave-room" event of a Node.js adapter.
func (n *Namespace) OnLeaveRoom(f func(room Room, id SocketID)) { n.hooks.leaveRoom.add(f) }

// OnUpgrade adds a listener called when the connection of a socket of the
// namespace has moved from long-polling to WebSocket; Socket.Transport
// then returns the new transport.
func (n *Namespace) OnUpgrade(f func(s *Socket)) { n.hooks.upgrade.add(f) }

// OnAny adds a catch-all listener, called with every event a client sends
// to the namespace, before the event's handler and whether or not it has
// one, as socket.onAny in Node.js. It runs on the socket's reading
// goroutine and must not keep m.
func (n *Namespace) OnAny(h EventHandler) { n.hooks.anyIncoming.add(h) }

// OnAnyOutgoing adds a catch-all listener, called with every event sent to
// sockets of the namespace on this node, as socket.onAnyOutgoing in
// Node.js: once per Socket.Emit with that socket, and once per broadcast
// delivered here with all its local recipients. Acknowledgements are not
// events and do not count.
func (n *Namespace) OnAnyOutgoing(h OutgoingHandler) { n.hooks.anyOutgoing.add(h) }

// OutgoingHandler watches events on their way to sockets. to and e are
// only valid during the call.
type OutgoingHandler func(e *OutgoingEvent, to []*Socket)

// OutgoingEvent is an event on its way to sockets.
type OutgoingEvent struct {
	// Name is the event name.
	Name string
	// Data is the event as a JSON array [name, ...args], binary values as
	// placeholders {"_placeholder":true,"num":i} indexing Attachments.
	Data        json.RawMessage
	Attachments [][]byte
}

// Args splits the event's arguments after the name.
func (e *OutgoingEvent) Args() ([]json.RawMessage, error) {
	elems, err := splitArgs(e.Data)
	if err != nil || len(elems) == 0 {
		return nil, err
	}
	return elems[1:], nil
}

// notifyOutgoing calls the outgoing listeners for an event about to go to
// the sockets in to.
func notifyOutgoing(hooks []OutgoingHandler, data json.RawMessage, attachments [][]byte, to []*Socket) {
	e := &OutgoingEvent{Name: outgoingName(data), Data: data, Attachments: attachments}
	for _, h := range hooks {
		h(e, to)
	}
}

// outgoingName reads the name of an event this server encoded: compact
// JSON, so a name without escapes is the text between the first quotes.
func outgoingName(data json.RawMessage) string {
	if len(data) > 2 && data[0] == '[' && data[1] == '"' {
		if i := bytes.IndexByte(data[2:], '"'); i >= 0 && bytes.IndexByte(data[2:2+i], '\\') < 0 {
			return string(data[2 : 2+i])
		}
	}
	name, _ := eventName(data)
	return name
}

// targetPool holds recipient lists handed to outgoing listeners, which
// run after the namespace's delivery lock is released.
var targetPool = sync.Pool{New: func() any { return new([]*Socket) }}

// joinRooms adds a socket to rooms and tells the listeners about the rooms
// it was not in yet.
func (n *Namespace) joinRooms(id SocketID, rooms ...Room) { n.enterRooms(id, rooms, false) }

// enterRooms adds a socket to rooms; fresh says it has just come, so that
// its own room is new to it too. The listeners hear of each room it was
// not in yet.
func (n *Namespace) enterRooms(id SocketID, rooms []Room, fresh bool) {
	hooks := n.hooks.joinRoom.load()
	if hooks == nil {
		n.rooms.join(id, rooms, nil, fresh)
		return
	}
	for _, room := range n.rooms.join(id, rooms, make([]Room, 0, len(rooms)), fresh) {
		for _, h := range hooks {
			h(room, id)
		}
	}
}

// leaveRoom removes a socket from a room and tells the listeners if it was
// in it.
func (n *Namespace) leaveRoom(id SocketID, room Room) {
	if n.rooms.leave(id, room) {
		for _, h := range n.hooks.leaveRoom.load() {
			h(room, id)
		}
	}
}

// leaveAllRooms removes a socket from every room and tells the listeners.
func (n *Namespace) leaveAllRooms(id SocketID) {
	hooks := n.hooks.leaveRoom.load()
	if hooks == nil {
		n.rooms.leaveAll(id, false)
		return
	}
	for _, room := range n.rooms.leaveAll(id, true) {
		for _, h := range hooks {
			h(room, id)
		}
	}
}
