package socketio

import (
	"encoding/json"
	"errors"
	"sync"
)

// Middleware runs when a client asks to join a namespace, before the socket
// is connected. auth is the client's CONNECT payload (protocol 5) or the
// namespace query as a JSON object (protocol 4), or nil. A returned error
// refuses the connection with a CONNECT_ERROR; use *ConnectError to attach
// data.
type Middleware func(s *Socket, auth json.RawMessage) error

// ConnectError refuses a connection from a Middleware with a message and
// optional data the client receives.
type ConnectError struct {
	Message string
	Data    any
}

// Error returns the message.
func (e *ConnectError) Error() string { return e.Message }

func connectErrorData(protocol int, err error) json.RawMessage {
	var ce *ConnectError
	if !errors.As(err, &ce) {
		ce = &ConnectError{Message: err.Error()}
	}
	if protocol == 4 {
		if ce.Data != nil {
			if b, err := json.Marshal(ce.Data); err == nil {
				return b
			}
		}
		b, _ := json.Marshal(ce.Message)
		return b
	}
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
		Data    any    `json:"data,omitempty"`
	}{ce.Message, ce.Data})
	return b
}

// EventHandler handles one event from a client.
type EventHandler func(s *Socket, m *Message)

// Namespace is a communication channel multiplexed over a connection, with
// its own handlers, middlewares, sockets and rooms.
type Namespace struct {
	srv   *Server
	name  string
	rooms *rooms

	// fanout serialises deliveries so that every recipient sees
	// broadcasts in the same order. Send only appends to a queue, so
	// holding it is short.
	fanout  sync.Mutex
	targets []*Socket // the recipients of the current broadcast, reused

	mu           sync.RWMutex
	sockets      map[SocketID]*Socket
	middlewares  []Middleware
	onConnect    []func(*Socket)
	onDisconnect []func(*Socket, string)
	events       map[string]EventHandler
	serverSide   map[string]func(*ServerSideEvent)

	hooks namespaceHooks
}

func newNamespace(srv *Server, name string) *Namespace {
	return &Namespace{
		srv:        srv,
		name:       name,
		rooms:      newRooms(),
		sockets:    make(map[SocketID]*Socket),
		events:     make(map[string]EventHandler),
		serverSide: make(map[string]func(*ServerSideEvent)),
	}
}

// Name returns the namespace name, e.g. "/" or "/admin".
func (n *Namespace) Name() string { return n.name }

// Use adds a middleware.
func (n *Namespace) Use(m Middleware) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.middlewares = append(n.middlewares, m)
}

// OnConnect adds a handler called when a socket has connected.
func (n *Namespace) OnConnect(f func(s *Socket)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onConnect = append(n.onConnect, f)
}

// OnDisconnect adds a handler called once a socket has disconnected, with
// the reason (e.g. "transport close", "ping timeout", "client namespace
// disconnect", "server namespace disconnect").
func (n *Namespace) OnDisconnect(f func(s *Socket, reason string)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.onDisconnect = append(n.onDisconnect, f)
}

// OnEvent sets the handler of an event. Handlers of one socket run one at a
// time, in the order the client sent the events.
func (n *Namespace) OnEvent(event string, h EventHandler) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events[event] = h
}

func (n *Namespace) handler(event string) EventHandler {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.events[event]
}

func (n *Namespace) runMiddlewares(s *Socket, auth json.RawMessage) error {
	n.mu.RLock()
	mws := n.middlewares
	n.mu.RUnlock()
	for _, m := range mws {
		if err := m(s, auth); err != nil {
			return err
		}
	}
	return nil
}

// register adds a connected socket to the namespace and its rooms, from
// which on it receives broadcasts.
func (n *Namespace) register(s *Socket, rooms []Room) {
	n.enterRooms(s.id, append(rooms, Room(s.id)), true)
	n.mu.Lock()
	n.sockets[s.id] = s
	n.mu.Unlock()
}

// connected runs the connect handlers.
func (n *Namespace) connected(s *Socket) {
	n.mu.RLock()
	handlers := n.onConnect
	n.mu.RUnlock()
	for _, h := range handlers {
		h(s)
	}
}

func (n *Namespace) remove(s *Socket, reason string) {
	n.mu.Lock()
	ok := n.sockets[s.id] == s
	if ok {
		delete(n.sockets, s.id)
	}
	handlers := n.onDisconnect
	n.mu.Unlock()
	if !ok {
		return
	}
	n.leaveAllRooms(s.id)
	for _, h := range handlers {
		h(s, reason)
	}
}

// Socket returns the local socket with the given id.
func (n *Namespace) Socket(id SocketID) (*Socket, bool) {
	n.mu.RLock()
	defer n.mu.RUnlock()
	s, ok := n.sockets[id]
	return s, ok
}

// Sockets returns the local sockets.
func (n *Namespace) Sockets() []*Socket {
	n.mu.RLock()
	defer n.mu.RUnlock()
	all := make([]*Socket, 0, len(n.sockets))
	for _, s := range n.sockets {
		all = append(all, s)
	}
	return all
}

// Len returns the number of local sockets.
func (n *Namespace) Len() int {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return len(n.sockets)
}

// Emit broadcasts an event to every socket of the namespace, on every node.
func (n *Namespace) Emit(event string, args ...any) error {
	return n.broadcast(BroadcastOptions{}).Emit(event, args...)
}

// To selects the sockets in any of the rooms.
func (n *Namespace) To(rooms ...Room) *BroadcastOperator {
	return n.broadcast(BroadcastOptions{}).To(rooms...)
}

// Except excludes the sockets in any of the rooms.
func (n *Namespace) Except(rooms ...Room) *BroadcastOperator {
	return n.broadcast(BroadcastOptions{}).Except(rooms...)
}

// Local keeps the broadcast on this node.
func (n *Namespace) Local() *BroadcastOperator {
	return n.broadcast(BroadcastOptions{Local: true})
}

func (n *Namespace) broadcast(opts BroadcastOptions) *BroadcastOperator {
	return &BroadcastOperator{nsp: n, opts: opts}
}
