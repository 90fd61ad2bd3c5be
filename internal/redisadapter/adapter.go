package redisadapter

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"siogo/socketio"
)

// Adapter is the socketio.Adapter of one namespace in a cluster. Local
// delivery and room membership are the embedded MemoryAdapter's; Broadcast
// also publishes to the other nodes, and the adapter answers their requests.
type Adapter struct {
	*socketio.MemoryAdapter
	c   *Cluster
	nsp *socketio.Namespace

	channel                 string // socket.io#<nsp>#
	pattern                 string // channel, glob-escaped, then *
	requestChannel          string // socket.io-request#<nsp>#
	responseChannel         string // socket.io-response#<nsp>#
	specificResponseChannel string // socket.io-response#<nsp>#<uid>#

	mu       sync.Mutex
	requests map[string]*pendingRequest
	handlers map[string]func(*ServerSideEvent)
	closed   bool
}

func (c *Cluster) newAdapter(nsp *socketio.Namespace) *Adapter {
	name := nsp.Name()
	a := &Adapter{
		MemoryAdapter:   socketio.NewMemoryAdapter(nsp),
		c:               c,
		nsp:             nsp,
		channel:         c.cfg.Key + "#" + name + "#",
		requestChannel:  c.cfg.Key + "-request#" + name + "#",
		responseChannel: c.cfg.Key + "-response#" + name + "#",
		requests:        make(map[string]*pendingRequest),
		handlers:        make(map[string]func(*ServerSideEvent)),
	}
	a.specificResponseChannel = a.responseChannel + c.uid + "#"
	a.pattern = globEscaper.Replace(a.channel) + "*"
	c.register(a)
	return a
}

// Broadcast delivers to the local sockets and, unless opts.Local, publishes
// the packet for the other nodes: on the room's own channel when it targets
// exactly one room, so nodes without a member of that room skip it cheaply.
func (a *Adapter) Broadcast(p *socketio.Packet, opts socketio.BroadcastOptions) error {
	err := a.MemoryAdapter.Broadcast(p, opts)
	if opts.Local || p.Type != socketio.PacketEvent || p.HasID {
		return err
	}
	msg, encErr := encodeBroadcast(a.c.uid, a.nsp.Name(), p, opts)
	if encErr != nil {
		return errors.Join(err, encErr)
	}
	channel := a.channel
	if len(opts.Rooms) == 1 {
		channel += string(opts.Rooms[0]) + "#"
	}
	a.c.publish(channel, msg)
	return err
}

// Close implements socketio.Adapter: it unsubscribes the namespace and fails
// its requests in flight. The Cluster stays open.
func (a *Adapter) Close() error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return nil
	}
	a.closed = true
	pending := a.requests
	a.requests = make(map[string]*pendingRequest)
	a.mu.Unlock()
	for _, pr := range pending {
		pr.finish(errors.New("redisadapter: adapter closed"))
	}
	a.c.unregister(a)
	return nil
}

// globEscaper keeps a namespace name such as "/a*" from widening the
// subscription pattern to other namespaces' channels.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// onBroadcast handles a message from a broadcast channel.
func (a *Adapter) onBroadcast(channel string, data []byte) error {
	if !strings.HasPrefix(channel, a.channel) {
		return nil
	}
	room := ""
	if len(channel) > len(a.channel) {
		room = channel[len(a.channel) : len(channel)-1]
	}
	if room != "" && !a.HasRoom(socketio.Room(room)) {
		return nil
	}
	m, err := decodeBroadcast(data)
	if err != nil {
		return err
	}
	if m.UID == a.c.uid || m.Nsp != a.nsp.Name() {
		return nil
	}
	if m.Type != int(socketio.PacketEvent) && m.Type != int(socketio.PacketBinaryEvent) {
		return malformed("broadcast of packet type %d", m.Type)
	}
	return a.MemoryAdapter.Broadcast(
		&socketio.Packet{Type: socketio.PacketEvent, Namespace: a.nsp.Name(), Data: m.Data, Attachments: m.Attachments},
		socketio.BroadcastOptions{Rooms: m.Rooms, Except: m.Except, Local: true})
}

// respond publishes an answer where the requester listens. A Node.js node
// listens on both response channels whatever its settings, so the one
// named after the requester keeps answers away from the other nodes.
func (a *Adapter) respond(r *request, payload []byte) {
	channel := a.responseChannel
	if r.UID != "" {
		channel += r.UID + "#"
	}
	a.c.publish(channel, payload)
}

func (a *Adapter) respondJSON(r *request, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	a.respond(r, b)
	return nil
}

func optsOf(o *wireOpts) socketio.BroadcastOptions {
	if o == nil {
		return socketio.BroadcastOptions{}
	}
	return socketio.BroadcastOptions{Rooms: toRooms(o.Rooms), Except: toRooms(o.Except)}
}

// onRequest handles a message from the request channel.
func (a *Adapter) onRequest(data []byte) error {
	r, err := decodeRequest(data)
	if err != nil {
		return err
	}
	own := r.UID == a.c.uid
	switch r.typ() {
	case reqSockets:
		if own {
			return nil
		}
		var rooms []roomName
		if len(r.Rooms) > 0 {
			if err := json.Unmarshal(r.Rooms, &rooms); err != nil {
				return malformed("rooms: %v", err)
			}
		}
		ids := []socketio.SocketID{}
		for _, s := range a.Select(socketio.BroadcastOptions{Rooms: toRooms(rooms)}, nil) {
			ids = append(ids, s.ID())
		}
		return a.respondJSON(r, map[string]any{"requestId": r.id(), "sockets": ids})

	case reqAllRooms:
		if own {
			return nil
		}
		return a.respondJSON(r, map[string]any{"requestId": r.id(), "rooms": a.MemoryAdapter.AllRooms()})

	case reqRemoteJoin, reqRemoteLeave, reqRemoteDisconnect:
		// Our own requests were applied locally when sent.
		if own {
			return nil
		}
		return a.applyRemote(r)

	case reqRemoteFetch:
		if own {
			return nil
		}
		sockets := a.localSockets(optsOf(r.Opts))
		return a.respondJSON(r, map[string]any{"requestId": r.id(), "sockets": sockets})

	case reqServerSideEmit:
		if own {
			return nil
		}
		return a.onServerSideEmit(r)

	case reqBroadcast:
		if own {
			return nil
		}
		return a.broadcastWithAck(r)
	}
	return nil // types added by later versions
}

// applyRemote applies a remote join, leave or disconnect. The current form
// selects sockets with opts; the legacy form names one socket and expects
// an answer.
func (a *Adapter) applyRemote(r *request) error {
	if r.Opts != nil {
		rooms, err := r.roomList()
		if err != nil {
			return err
		}
		for _, s := range a.Select(optsOf(r.Opts), nil) {
			switch r.typ() {
			case reqRemoteJoin:
				a.MemoryAdapter.Join(s.ID(), rooms...)
			case reqRemoteLeave:
				for _, room := range rooms {
					a.MemoryAdapter.Leave(s.ID(), room)
				}
			case reqRemoteDisconnect:
				s.Disconnect(r.Close)
			}
		}
		return nil
	}
	s, ok := a.nsp.Socket(socketio.SocketID(r.SID))
	if !ok {
		return nil
	}
	switch r.typ() {
	case reqRemoteJoin:
		a.MemoryAdapter.Join(s.ID(), socketio.Room(r.Room))
	case reqRemoteLeave:
		a.MemoryAdapter.Leave(s.ID(), socketio.Room(r.Room))
	case reqRemoteDisconnect:
		s.Disconnect(r.Close)
	}
	return a.respondJSON(r, map[string]any{"requestId": r.id()})
}

// broadcastWithAck delivers another node's broadcast that expects an
// acknowledgement from every client: it answers with the number of local
// recipients, then with each client's acknowledgement as it comes.
func (a *Adapter) broadcastWithAck(r *request) error {
	var p wirePacket
	if err := json.Unmarshal(r.Packet, &p); err != nil {
		return malformed("packet: %v", err)
	}
	if !socketio.ValidEventData(p.Data) {
		return malformed("packet data is not an event")
	}
	var timeout time.Duration
	if r.Opts != nil && len(r.Opts.Flags) > 0 {
		var flags struct {
			Timeout *float64 `json:"timeout"`
		}
		if json.Unmarshal(r.Opts.Flags, &flags) == nil && flags.Timeout != nil && *flags.Timeout > 0 {
			timeout = time.Duration(*flags.Timeout * float64(time.Millisecond))
		}
	}
	targets := a.Select(optsOf(r.Opts), nil)
	if err := a.respondJSON(r, map[string]any{"type": reqBroadcastClientCount, "requestId": r.id(), "clientCount": len(targets)}); err != nil {
		return err
	}
	id := r.id()
	for _, s := range targets {
		s.EmitDataWithAck(p.Data, r.attachments, timeout, func(args []json.RawMessage, attachments [][]byte, err error) {
			if err != nil {
				return // the requester times out on its own
			}
			var arg json.RawMessage
			if len(args) > 0 {
				arg = args[0]
			}
			msg, err := encodeBroadcastAck(id, arg, attachments)
			if err != nil {
				a.c.log.Warn("redisadapter: cannot encode an acknowledgement", "err", err)
				return
			}
			a.respond(r, msg)
		})
	}
	return nil
}

// ServerSideEvent is an event another node sent to the cluster's servers
// with serverSideEmit.
type ServerSideEvent struct {
	Name string
	Args []json.RawMessage

	reply func(arg json.RawMessage)
	acked atomic.Bool
}

// WantsAck reports whether the sender waits for an acknowledgement.
func (e *ServerSideEvent) WantsAck() bool { return e.reply != nil }

// Ack answers the sender with one argument, encoded with encoding/json (a
// json.RawMessage as it is). Only the first call counts.
func (e *ServerSideEvent) Ack(arg any) error {
	if e.reply == nil || e.acked.Swap(true) {
		return nil
	}
	raw, ok := arg.(json.RawMessage)
	if !ok {
		b, err := json.Marshal(arg)
		if err != nil {
			e.acked.Store(false)
			return err
		}
		raw = b
	}
	e.reply(raw)
	return nil
}

// OnServerSideEmit sets the handler of an event other nodes send with
// serverSideEmit. Handlers run on their own goroutine.
//
// An event with no handler that asks for an acknowledgement is answered at
// once without a value (the sender sees undefined), as if a handler had
// acknowledged it without arguments: the sender then completes instead of
// timing out because this node has nothing to say.
func (a *Adapter) OnServerSideEmit(event string, h func(*ServerSideEvent)) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.handlers[event] = h
}

func (a *Adapter) onServerSideEmit(r *request) error {
	var data []json.RawMessage
	if err := json.Unmarshal(r.Data, &data); err != nil || len(data) == 0 {
		return malformed("serverSideEmit data is not [event, ...args]")
	}
	e := &ServerSideEvent{Args: data[1:]}
	if err := json.Unmarshal(data[0], &e.Name); err != nil {
		return malformed("serverSideEmit event name is not a string")
	}
	if r.RequestID != nil {
		id := *r.RequestID
		e.reply = func(arg json.RawMessage) {
			a.respondJSON(r, &request{Type: ptr(reqServerSideEmit), RequestID: &id, Data: arg})
		}
	}
	a.mu.Lock()
	h := a.handlers[e.Name]
	a.mu.Unlock()
	if h == nil {
		if e.reply != nil {
			e.acked.Store(true)
			e.reply(nil)
		}
		return nil
	}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				a.c.log.Error("redisadapter: serverSideEmit handler panicked", "event", e.Name, "panic", p)
			}
		}()
		h(e)
	}()
	return nil
}

func ptr[T any](v T) *T { return &v }

// pendingRequest is a request of this node waiting for other nodes' answers.
type pendingRequest struct {
	typ      int
	numSub   int // answers expected, this node's own counted in msgCount
	msgCount int
	rooms    map[socketio.Room]struct{}
	sockets  []RemoteSocket
	answers  []json.RawMessage
	err      error
	done     chan struct{}
	once     sync.Once
}

func (pr *pendingRequest) finish(err error) {
	pr.once.Do(func() {
		pr.err = err
		close(pr.done)
	})
}

// onResponse handles a message from a response channel.
func (a *Adapter) onResponse(data []byte) error {
	r, err := decodeRequest(data)
	if err != nil {
		return err
	}
	id := r.id()
	a.mu.Lock()
	defer a.mu.Unlock()
	pr := a.requests[id]
	if pr == nil {
		return nil // another node's request, or one that timed out
	}
	switch pr.typ {
	case reqAllRooms:
		var rooms []roomName
		if err := json.Unmarshal(r.Rooms, &rooms); err != nil {
			return malformed("allRooms answer: %v", err)
		}
		for _, room := range rooms {
			pr.rooms[socketio.Room(room)] = struct{}{}
		}
		pr.msgCount++
	case reqRemoteFetch:
		var sockets []RemoteSocket
		if err := json.Unmarshal(r.Sockets, &sockets); err != nil {
			return malformed("fetchSockets answer: %v", err)
		}
		pr.sockets = append(pr.sockets, sockets...)
		pr.msgCount++
	case reqServerSideEmit:
		arg := r.Data
		if arg == nil {
			arg = json.RawMessage("null")
		}
		pr.answers = append(pr.answers, arg)
		pr.msgCount++
	}
	if pr.msgCount >= pr.numSub {
		delete(a.requests, id)
		pr.finish(nil)
	}
	return nil
}

// request publishes req under a new request id and waits until pr has
// collected its answers, the request timeout passes or ctx is done.
func (a *Adapter) request(ctx context.Context, name string, req *request, pr *pendingRequest) error {
	id := newUID()
	req.UID, req.RequestID = a.c.uid, &id
	payload, err := json.Marshal(req)
	if err != nil {
		return err
	}
	pr.done = make(chan struct{})
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return errors.New("redisadapter: adapter closed")
	}
	a.requests[id] = pr
	a.mu.Unlock()
	a.c.publish(a.requestChannel, payload)

	timer := time.NewTimer(a.c.cfg.RequestTimeout)
	defer timer.Stop()
	select {
	case <-pr.done:
		return pr.err
	case <-timer.C:
		err = fmt.Errorf("redisadapter: timeout reached while waiting for %s response", name)
	case <-ctx.Done():
		err = ctx.Err()
	}
	a.mu.Lock()
	delete(a.requests, id)
	a.mu.Unlock()
	return err
}

// ServerCount returns the number of nodes serving this namespace, this one
// included.
func (a *Adapter) ServerCount(ctx context.Context) (int, error) {
	return a.c.serverCount(ctx, a.requestChannel)
}

// AllRooms returns the rooms with at least one member on any node.
func (a *Adapter) AllRooms(ctx context.Context) ([]socketio.Room, error) {
	local := a.MemoryAdapter.AllRooms()
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return local, nil
	}
	pr := &pendingRequest{typ: reqAllRooms, numSub: n, msgCount: 1, rooms: make(map[socketio.Room]struct{})}
	for _, r := range local {
		pr.rooms[r] = struct{}{}
	}
	if err := a.request(ctx, "allRooms", &request{Type: ptr(reqAllRooms)}, pr); err != nil {
		return nil, err
	}
	rooms := make([]socketio.Room, 0, len(pr.rooms))
	for r := range pr.rooms {
		rooms = append(rooms, r)
	}
	return rooms, nil
}

// RemoteSocket describes a socket of any node, as fetchSockets returns it.
type RemoteSocket struct {
	ID        socketio.SocketID `json:"id"`
	Handshake json.RawMessage   `json:"handshake"`
	Rooms     []socketio.Room   `json:"rooms"`
	Data      json.RawMessage   `json:"data"`
}

// FetchSockets returns the sockets of every node selected by opts (only
// this node's with opts.Local).
func (a *Adapter) FetchSockets(ctx context.Context, opts socketio.BroadcastOptions) ([]RemoteSocket, error) {
	local := a.localSockets(opts)
	if opts.Local {
		return local, nil
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n <= 1 {
		return local, nil
	}
	pr := &pendingRequest{typ: reqRemoteFetch, numSub: n, msgCount: 1, sockets: local}
	req := &request{Type: ptr(reqRemoteFetch), Opts: wireOptsOf(opts)}
	if err := a.request(ctx, "fetchSockets", req, pr); err != nil {
		return nil, err
	}
	return pr.sockets, nil
}

func wireOptsOf(opts socketio.BroadcastOptions) *wireOpts {
	o := &wireOpts{Rooms: []roomName{}, Except: []roomName{}}
	for _, r := range opts.Rooms {
		o.Rooms = append(o.Rooms, roomName(r))
	}
	for _, r := range opts.Except {
		o.Except = append(o.Except, roomName(r))
	}
	return o
}

// ServerSideEmit sends an event to the other nodes' servers (not to
// clients). Arguments are encoded with encoding/json.
func (a *Adapter) ServerSideEmit(event string, args ...any) error {
	data, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return err
	}
	// Without a requestId the other nodes do not answer.
	payload, err := json.Marshal(&request{UID: a.c.uid, Type: ptr(reqServerSideEmit), Data: data})
	if err != nil {
		return err
	}
	a.c.publish(a.requestChannel, payload)
	return nil
}

// ServerSideEmitWithAck sends an event to the other nodes' servers and
// returns one acknowledgement per node.
func (a *Adapter) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	data, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return nil, err
	}
	n, err := a.ServerCount(ctx)
	if err != nil {
		return nil, err
	}
	if n-1 <= 0 {
		return []json.RawMessage{}, nil
	}
	pr := &pendingRequest{typ: reqServerSideEmit, numSub: n - 1}
	if err := a.request(ctx, "serverSideEmit", &request{Type: ptr(reqServerSideEmit), Data: data}, pr); err != nil {
		return pr.answersSoFar(a), err
	}
	return pr.answers, nil
}

func (pr *pendingRequest) answersSoFar(a *Adapter) []json.RawMessage {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]json.RawMessage(nil), pr.answers...)
}

// SocketsJoin makes the sockets selected by opts, on every node, join
// rooms.
func (a *Adapter) SocketsJoin(opts socketio.BroadcastOptions, rooms ...socketio.Room) {
	for _, s := range a.Select(opts, nil) {
		a.MemoryAdapter.Join(s.ID(), rooms...)
	}
	a.publishRemote(reqRemoteJoin, opts, rooms, false)
}

// SocketsLeave makes the sockets selected by opts, on every node, leave
// rooms.
func (a *Adapter) SocketsLeave(opts socketio.BroadcastOptions, rooms ...socketio.Room) {
	for _, s := range a.Select(opts, nil) {
		for _, r := range rooms {
			a.MemoryAdapter.Leave(s.ID(), r)
		}
	}
	a.publishRemote(reqRemoteLeave, opts, rooms, false)
}

// DisconnectSockets disconnects the sockets selected by opts on every node;
// closeConn closes their underlying connections too.
func (a *Adapter) DisconnectSockets(opts socketio.BroadcastOptions, closeConn bool) {
	for _, s := range a.Select(opts, nil) {
		s.Disconnect(closeConn)
	}
	a.publishRemote(reqRemoteDisconnect, opts, nil, closeConn)
}

func (a *Adapter) publishRemote(typ int, opts socketio.BroadcastOptions, rooms []socketio.Room, closeConn bool) {
	if opts.Local {
		return
	}
	req := &request{UID: a.c.uid, Type: &typ, Opts: wireOptsOf(opts), Close: closeConn}
	if typ != reqRemoteDisconnect {
		names := make([]string, len(rooms))
		for i, r := range rooms {
			names[i] = string(r)
		}
		req.Rooms, _ = json.Marshal(names)
	}
	payload, err := json.Marshal(req)
	if err != nil {
		return
	}
	a.c.publish(a.requestChannel, payload)
}

// localSockets describes this node's sockets selected by opts.
func (a *Adapter) localSockets(opts socketio.BroadcastOptions) []RemoteSocket {
	selected := a.Select(opts, nil)
	out := make([]RemoteSocket, 0, len(selected))
	for _, s := range selected {
		out = append(out, a.describe(s))
	}
	return out
}

func (a *Adapter) describe(s *socketio.Socket) RemoteSocket {
	rooms := a.MemoryAdapter.Rooms(s.ID())
	data := json.RawMessage("{}")
	if f := a.c.cfg.SocketData; f != nil {
		if b, err := json.Marshal(f(s)); err == nil {
			data = b
		}
	}
	hs, _ := json.Marshal(nodeHandshake(s.Handshake()))
	return RemoteSocket{ID: s.ID(), Handshake: hs, Rooms: rooms, Data: data}
}

// handshakeJSON is a handshake shaped as a Node.js server describes it.
type handshakeJSON struct {
	Headers map[string]any  `json:"headers"`
	Time    string          `json:"time"`
	Address string          `json:"address"`
	XDomain bool            `json:"xdomain"`
	Secure  bool            `json:"secure"`
	Issued  int64           `json:"issued"`
	URL     string          `json:"url"`
	Query   map[string]any  `json:"query"`
	Auth    json.RawMessage `json:"auth"`
}

func nodeHandshake(h *socketio.Handshake) handshakeJSON {
	out := handshakeJSON{
		Headers: make(map[string]any, len(h.Headers)),
		// Date.prototype.toString, as the time field holds.
		Time:    h.Time.Format("Mon Jan 02 2006 15:04:05 GMT-0700 (MST)"),
		Address: hostOnly(h.Address),
		XDomain: h.Headers.Get("Origin") != "",
		Secure:  h.Secure,
		Issued:  h.Time.UnixMilli(),
		URL:     h.URL,
		Query:   make(map[string]any, len(h.Query)),
		Auth:    h.Auth,
	}
	// Node.js lower-cases header names and joins repeated values, except
	// set-cookie, which stays a list.
	for k, vs := range h.Headers {
		name := strings.ToLower(k)
		if name == "set-cookie" {
			out.Headers[name] = vs
			continue
		}
		out.Headers[name] = strings.Join(vs, ", ")
	}
	for k, vs := range h.Query {
		if len(vs) == 1 {
			out.Query[k] = vs[0]
		} else {
			out.Query[k] = vs
		}
	}
	if len(out.Auth) == 0 {
		out.Auth = json.RawMessage("{}")
	}
	return out
}

// hostOnly strips the port: Node.js gives the remote address alone.
func hostOnly(addr string) string {
	if host, _, err := net.SplitHostPort(addr); err == nil {
		return host
	}
	return addr
}
