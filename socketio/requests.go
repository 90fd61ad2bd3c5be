package socketio

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// This file holds what a namespace does across nodes: the operations that
// select sockets on every node, server-side events, and the answers this
// node gives to the requests of the others. Requests go out through the
// broker; the answers come back to onReply, which completes the waiting
// request once every other node has answered.

// FetchSockets describes the sockets of the namespace on every node.
func (n *Namespace) FetchSockets(ctx context.Context) ([]RemoteSocket, error) {
	return n.fetchSockets(ctx, BroadcastOptions{})
}

// SocketsJoin makes every socket of the namespace, on every node, join
// rooms.
func (n *Namespace) SocketsJoin(rooms ...Room) { n.socketsJoin(BroadcastOptions{}, rooms) }

// SocketsLeave makes every socket of the namespace, on every node, leave
// rooms.
func (n *Namespace) SocketsLeave(rooms ...Room) { n.socketsLeave(BroadcastOptions{}, rooms) }

// DisconnectSockets disconnects every socket of the namespace on every
// node; closeConn closes their underlying connections too.
func (n *Namespace) DisconnectSockets(closeConn bool) {
	n.disconnectSockets(BroadcastOptions{}, closeConn)
}

// ServerCount returns how many nodes serve the namespace, this one
// included.
func (n *Namespace) ServerCount(ctx context.Context) (int, error) {
	return n.srv.broker.ServerCount(ctx, n.name)
}

// AllRooms returns the rooms with at least one member on any node.
func (n *Namespace) AllRooms(ctx context.Context) ([]Room, error) {
	p := &pendingRequest{rooms: make(map[Room]struct{})}
	for _, r := range n.rooms.all(n) {
		p.rooms[r] = struct{}{}
	}
	if err := n.request(ctx, &NodeRequest{Type: RequestAllRooms}, p); err != nil {
		return nil, err
	}
	rooms := make([]Room, 0, len(p.rooms))
	for r := range p.rooms {
		rooms = append(rooms, r)
	}
	return rooms, nil
}

func (n *Namespace) fetchSockets(ctx context.Context, opts BroadcastOptions) ([]RemoteSocket, error) {
	local := n.localSockets(opts)
	if opts.Local {
		return local, nil
	}
	p := &pendingRequest{sockets: local}
	if err := n.request(ctx, &NodeRequest{Type: RequestFetchSockets, Opts: opts}, p); err != nil {
		return nil, err
	}
	return p.sockets, nil
}

func (n *Namespace) socketsJoin(opts BroadcastOptions, rooms []Room) {
	for _, s := range n.rooms.selectSockets(opts, n, nil) {
		s.Join(rooms...)
	}
	n.notify(&NodeRequest{Type: RequestSocketsJoin, Opts: opts, Rooms: rooms})
}

func (n *Namespace) socketsLeave(opts BroadcastOptions, rooms []Room) {
	for _, s := range n.rooms.selectSockets(opts, n, nil) {
		for _, r := range rooms {
			s.Leave(r)
		}
	}
	n.notify(&NodeRequest{Type: RequestSocketsLeave, Opts: opts, Rooms: rooms})
}

func (n *Namespace) disconnectSockets(opts BroadcastOptions, closeConn bool) {
	for _, s := range n.rooms.selectSockets(opts, n, nil) {
		s.Disconnect(closeConn)
	}
	n.notify(&NodeRequest{Type: RequestDisconnectSockets, Opts: opts, Close: closeConn})
}

// notify sends a message that expects no answer, unless opts keep it local.
func (n *Namespace) notify(m *NodeRequest) {
	if m.Opts.Local {
		return
	}
	m.Namespace = n.name
	if err := n.srv.broker.Send(m); err != nil {
		n.srv.log.Warn("socketio: cannot reach the other nodes", "nsp", n.name, "type", m.Type, "err", err)
	}
}

// ServerSideEvent is an event another node sent to the cluster's servers
// with ServerSideEmit.
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
// ServerSideEmit. Handlers run on their own goroutine.
//
// An event with no handler that asks for an acknowledgement is answered at
// once without a value, as if a handler had acknowledged it without
// arguments: the sender then completes instead of timing out because this
// node has nothing to say.
func (n *Namespace) OnServerSideEmit(event string, h func(*ServerSideEvent)) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.serverSide[event] = h
}

// ServerSideEmit sends an event to the other nodes' servers (not to
// clients). Arguments are encoded with encoding/json.
func (n *Namespace) ServerSideEmit(event string, args ...any) error {
	data, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return err
	}
	return n.srv.broker.Send(&NodeRequest{Type: RequestServerSideEmit, Namespace: n.name, Data: data})
}

// ServerSideEmitWithAck sends an event to the other nodes' servers and
// returns one acknowledgement per node. On a timeout it returns the
// acknowledgements received so far with the error.
func (n *Namespace) ServerSideEmitWithAck(ctx context.Context, event string, args ...any) ([]json.RawMessage, error) {
	data, err := json.Marshal(append([]any{event}, args...))
	if err != nil {
		return nil, err
	}
	p := &pendingRequest{acks: []json.RawMessage{}}
	err = n.request(ctx, &NodeRequest{Type: RequestServerSideEmit, Data: data}, p)
	return p.answers(n.srv), err
}

// pendingRequest is a request of this node waiting for the other nodes'
// answers.
type pendingRequest struct {
	expected, got int // guarded by Server.reqMu
	rooms         map[Room]struct{}
	sockets       []RemoteSocket
	acks          []json.RawMessage
	done          chan struct{}
	once          sync.Once
	err           error
}

func (p *pendingRequest) finish(err error) {
	p.once.Do(func() {
		p.err = err
		close(p.done)
	})
}

func (p *pendingRequest) answers(s *Server) []json.RawMessage {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	return append([]json.RawMessage{}, p.acks...)
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// request sends m to the other nodes and waits until each has answered
// into p, the request timeout passes, or ctx ends.
func (n *Namespace) request(ctx context.Context, m *NodeRequest, p *pendingRequest) error {
	srv := n.srv
	count, err := srv.broker.ServerCount(ctx, n.name)
	if err != nil {
		return err
	}
	if count <= 1 {
		return nil
	}
	m.Namespace = n.name
	m.RequestID = newRequestID()
	p.expected = count - 1
	p.done = make(chan struct{})
	srv.reqMu.Lock()
	srv.requests[m.RequestID] = p
	srv.reqMu.Unlock()
	defer func() {
		srv.reqMu.Lock()
		delete(srv.requests, m.RequestID)
		srv.reqMu.Unlock()
	}()
	if err := srv.broker.Send(m); err != nil {
		return err
	}
	timer := time.NewTimer(srv.opts.RequestTimeout)
	defer timer.Stop()
	select {
	case <-p.done:
		return p.err
	case <-timer.C:
		srv.reqMu.Lock()
		got := p.got
		srv.reqMu.Unlock()
		return fmt.Errorf("socketio: timeout reached: only %d responses received out of %d", got, p.expected)
	case <-ctx.Done():
		return ctx.Err()
	}
}

// onReply collects another node's answer to one of this node's
// requests.
func (s *Server) onReply(r *NodeReply) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	p := s.requests[r.RequestID]
	if p == nil {
		return // a request that timed out, or another node's
	}
	switch r.Type {
	case ReplyAllRooms:
		for _, room := range r.Rooms {
			p.rooms[room] = struct{}{}
		}
	case ReplyFetchSockets:
		p.sockets = append(p.sockets, r.Sockets...)
	case ReplyServerSideEmit:
		arg := r.Data
		if arg == nil {
			arg = json.RawMessage("null")
		}
		p.acks = append(p.acks, arg)
	default:
		return
	}
	p.got++
	if p.got >= p.expected {
		delete(s.requests, r.RequestID)
		p.finish(nil)
	}
}

// onNodeRequest carries out another node's request or notice on this
// node's sockets.
func (n *Namespace) onNodeRequest(m *NodeRequest) {
	reply := func(r *NodeReply) {
		r.Namespace, r.RequestID = n.name, m.RequestID
		if err := n.srv.broker.Reply(m.From, r); err != nil {
			n.srv.log.Warn("socketio: cannot answer another node", "nsp", n.name, "type", m.Type, "err", err)
		}
	}
	opts := m.Opts
	opts.Local = true
	switch m.Type {
	case RequestSocketsJoin:
		n.socketsJoin(opts, m.Rooms)
	case RequestSocketsLeave:
		n.socketsLeave(opts, m.Rooms)
	case RequestDisconnectSockets:
		n.disconnectSockets(opts, m.Close)
	case RequestFetchSockets:
		reply(&NodeReply{Type: ReplyFetchSockets, Sockets: n.localSockets(opts)})
	case RequestAllRooms:
		reply(&NodeReply{Type: ReplyAllRooms, Rooms: n.rooms.all(n)})
	case RequestServerSideEmit:
		n.onServerSideEmit(m, reply)
	case RequestBroadcastWithAck:
		n.broadcastWithAck(m, opts, reply)
	}
}

func (n *Namespace) onServerSideEmit(m *NodeRequest, reply func(*NodeReply)) {
	var data []json.RawMessage
	if err := json.Unmarshal(m.Data, &data); err != nil || len(data) == 0 {
		n.srv.log.Warn("socketio: ignoring a server-side event that is not [event, ...args]", "nsp", n.name)
		return
	}
	e := &ServerSideEvent{Args: data[1:]}
	if err := json.Unmarshal(data[0], &e.Name); err != nil {
		n.srv.log.Warn("socketio: ignoring a server-side event without a name", "nsp", n.name)
		return
	}
	if m.RequestID != "" {
		e.reply = func(arg json.RawMessage) {
			reply(&NodeReply{Type: ReplyServerSideEmit, Data: arg})
		}
	}
	n.mu.RLock()
	h := n.serverSide[e.Name]
	n.mu.RUnlock()
	if h == nil {
		if e.reply != nil {
			e.acked.Store(true)
			e.reply(nil)
		}
		return
	}
	go func() {
		defer func() {
			if p := recover(); p != nil {
				n.srv.log.Error("socketio: server-side event handler panicked", "event", e.Name, "panic", p)
			}
		}()
		h(e)
	}()
}

// broadcastWithAck delivers another node's broadcast that expects an
// acknowledgement from every client: it answers with the number of local
// recipients, then with each client's acknowledgement as it comes.
func (n *Namespace) broadcastWithAck(m *NodeRequest, opts BroadcastOptions, reply func(*NodeReply)) {
	if _, err := eventName(m.Data); err != nil {
		n.srv.log.Warn("socketio: ignoring a broadcast that is not an event", "nsp", n.name)
		return
	}
	targets := n.rooms.selectSockets(opts, n, nil)
	reply(&NodeReply{Type: ReplyBroadcastClientCount, ClientCount: len(targets)})
	for _, s := range targets {
		s.emitWithAck(m.Data, m.Attachments, m.Timeout, func(args []json.RawMessage, attachments [][]byte, err error) {
			if err != nil {
				return // the requester times out on its own
			}
			var arg json.RawMessage
			if len(args) > 0 {
				arg = args[0]
			}
			reply(&NodeReply{Type: ReplyBroadcastAck, Data: arg, Attachments: attachments})
		})
	}
}

// localSockets describes this node's sockets selected by opts.
func (n *Namespace) localSockets(opts BroadcastOptions) []RemoteSocket {
	selected := n.rooms.selectSockets(opts, n, nil)
	out := make([]RemoteSocket, 0, len(selected))
	for _, s := range selected {
		out = append(out, s.Describe())
	}
	return out
}

// Describe gives the socket as FetchSockets returns it, shaped as a Node.js
// server describes its sockets.
func (s *Socket) Describe() RemoteSocket {
	data := json.RawMessage("{}")
	if v := s.Data(); v != nil {
		if b, err := json.Marshal(v); err == nil {
			data = b
		}
	}
	hs, _ := json.Marshal(nodeHandshake(s.Handshake()))
	return RemoteSocket{ID: s.id, Handshake: hs, Rooms: s.Rooms(), Data: data,
		SessionID: s.SessionID(), Transport: s.Transport()}
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

func nodeHandshake(h *Handshake) handshakeJSON {
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

var errClosed = errors.New("socketio: server closed")
