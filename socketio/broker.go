package socketio

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"siogo/engineio"
)

// A Broker links a Server to the other nodes of a cluster. The server does
// every delivery to its own sockets itself; the broker carries what this
// node sends to the others and hands what they send to the BrokerHandler it
// was opened with. MemoryBroker serves a single node; package redisbroker
// has the Redis implementations.
//
// A broadcast thus goes from the server to its own sockets and, through the
// broker, to the other nodes. A DurableBroker is the exception: it keeps one
// log of every node's broadcasts and hands all of them back, this node's
// own included, in log order and with their offsets, so that every node
// delivers in the same order and an offset tells exactly what a client has
// seen.
type Broker interface {
	// Open starts the broker. From then on it calls h with what the
	// other nodes send. A broker serves one Server, which opens it once,
	// in NewServer.
	Open(h BrokerHandler)
	// Subscribe makes the broker carry a namespace's traffic. The server
	// calls it once per namespace, when the namespace is created.
	Subscribe(nsp string) error
	// Publish sends a broadcast of this node to the other nodes. A
	// DurableBroker also hands it back to HandleBroadcast, once, for this
	// node's sockets; for any other broker the server delivers it itself.
	Publish(b *Broadcast)
	// Send sends a request or a notice to the other nodes that serve
	// m.Namespace.
	Send(m *NodeRequest) error
	// Reply answers the request of the node named to.
	Reply(to string, r *NodeReply) error
	// ServerCount returns how many nodes serve a namespace, this one
	// included.
	ServerCount(ctx context.Context, nsp string) (int, error)
	// Close stops the broker, sending what it still holds.
	Close(ctx context.Context) error
}

// A DurableBroker is a Broker that keeps a log of broadcasts and the
// sessions of disconnected sockets: what connection-state recovery needs.
// It hands this node's own broadcasts back in log order (see Broker).
type DurableBroker interface {
	Broker
	// Replay calls fn, in order, with each broadcast of nsp logged after
	// offset and its own offset. It returns ErrOffsetUnknown when offset
	// is not in the log, or no longer.
	Replay(ctx context.Context, nsp, offset string, fn func(b *Broadcast, offset string) error) error
	// SaveSessions stores sessions until their Expires, each replacing an
	// earlier one with the same PID.
	SaveSessions(ctx context.Context, sessions []*SavedSession) error
	// DropSessions removes the sessions of pids.
	DropSessions(ctx context.Context, pids []string) error
	// TakeSession removes and returns a stored session. It returns
	// ErrSessionUnknown when there is none, and ErrSessionExpired when it
	// has expired (where the broker can tell).
	TakeSession(ctx context.Context, pid string) (*SavedSession, error)
}

// Errors of a DurableBroker.
var (
	ErrOffsetUnknown  = errors.New("socketio: offset not in the log")
	ErrSessionUnknown = errors.New("socketio: session unknown")
	ErrSessionExpired = errors.New("socketio: session expired")
)

// BrokerHandler receives what a Broker carries to this node. Its methods
// may be called from any goroutine; calls for broadcasts come in the order
// the sockets are to receive them.
type BrokerHandler interface {
	// HandleBroadcast delivers a broadcast to this node's sockets. offset
	// is its position in the broker's log, or "" for a broker without one.
	HandleBroadcast(b *Broadcast, offset string)
	// HandleRequest handles a request or notice of another node.
	HandleRequest(m *NodeRequest)
	// HandleReply handles an answer to one of this node's requests.
	HandleReply(r *NodeReply)
}

// Broadcast is an event for many sockets, as it travels between nodes.
type Broadcast struct {
	Namespace string
	// Data is the event as a JSON array [name, ...args], binary values as
	// placeholders {"_placeholder":true,"num":i} indexing Attachments.
	Data        json.RawMessage
	Attachments [][]byte
	Opts        BroadcastOptions

	frames []engineio.Message // the packet encoded once, for this node
}

// RequestType says what a NodeRequest asks for.
type RequestType int

// Requests and notices between nodes.
const (
	// RequestSocketsJoin makes the selected sockets join Rooms.
	RequestSocketsJoin RequestType = iota + 1
	// RequestSocketsLeave makes the selected sockets leave Rooms.
	RequestSocketsLeave
	// RequestDisconnectSockets disconnects the selected sockets.
	RequestDisconnectSockets
	// RequestFetchSockets asks for the selected sockets.
	RequestFetchSockets
	// RequestAllRooms asks for every room with a member.
	RequestAllRooms
	// RequestServerSideEmit is an event for the other servers.
	RequestServerSideEmit
	// RequestBroadcastWithAck is a broadcast whose recipients each
	// acknowledge it.
	RequestBroadcastWithAck
)

// NodeRequest is a request or a notice from one node to the others.
type NodeRequest struct {
	Type      RequestType
	Namespace string
	// From names the sending node; Broker.Reply answers it. The broker
	// sets it on receipt.
	From string
	// RequestID is set when answers are expected.
	RequestID string
	// Opts selects the sockets concerned.
	Opts BroadcastOptions
	// Rooms to join or leave.
	Rooms []Room
	// Close also closes the connections of disconnected sockets.
	Close bool
	// Data is the event [name, ...args] of a server-side emit or of a
	// broadcast with acknowledgements, binary values as placeholders
	// indexing Attachments.
	Data        json.RawMessage
	Attachments [][]byte
	// Timeout bounds the wait for acknowledgements.
	Timeout time.Duration
}

// ReplyType says what a NodeReply answers.
type ReplyType int

// Answers between nodes.
const (
	// ReplyFetchSockets carries Sockets.
	ReplyFetchSockets ReplyType = iota + 1
	// ReplyAllRooms carries Rooms.
	ReplyAllRooms
	// ReplyServerSideEmit carries one acknowledgement in Data.
	ReplyServerSideEmit
	// ReplyBroadcastClientCount carries how many sockets of the node
	// received a broadcast with acknowledgements.
	ReplyBroadcastClientCount
	// ReplyBroadcastAck carries one socket's acknowledgement in Data.
	ReplyBroadcastAck
)

// NodeReply is a node's answer to a request.
type NodeReply struct {
	Type      ReplyType
	Namespace string
	RequestID string
	Sockets   []RemoteSocket
	Rooms     []Room
	// Data is one acknowledgement argument, nil when the acknowledgement
	// carried none; binary values are placeholders indexing Attachments.
	Data        json.RawMessage
	Attachments [][]byte
	ClientCount int
}

// RemoteSocket describes a socket of any node, as FetchSockets returns it.
// Handshake has the shape a Node.js server gives it.
type RemoteSocket struct {
	ID        SocketID        `json:"id"`
	Handshake json.RawMessage `json:"handshake"`
	Rooms     []Room          `json:"rooms"`
	Data      json.RawMessage `json:"data"`
	// SessionID is the id of the socket's connection (its Engine.IO
	// session) and Transport the transport it uses. Sockets of Node.js
	// nodes, whose answers do not carry them, leave both empty.
	SessionID string `json:"sessionId,omitempty"`
	Transport string `json:"transport,omitempty"`
}

// SavedSession is what a socket leaves for connection-state recovery.
type SavedSession struct {
	// PID is the private session id the client presents to recover.
	PID   string
	SID   SocketID
	Rooms []Room
	// Data is the socket's data as JSON.
	Data json.RawMessage
	// Expires is when the session can no longer be recovered.
	Expires time.Time
}
