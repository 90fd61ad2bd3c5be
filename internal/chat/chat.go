package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"siogo/engineio"
	"siogo/socketio"
)

// Event names of the page's protocol.
const (
	EventIn  = "serverReceiver"
	EventOut = "clientReceiver"
)

// CounterKey is the Redis key of the cluster's clientID counter.
const CounterKey = "siogo:chat:clientID"

// Counter is a sequence whose Next returns 1, 2, 3 and so on, each value
// once: the n-th value is clientID n-1.
type Counter interface {
	Next(ctx context.Context) (int64, error)
}

// MemoryCounter is the Counter of a single node.
type MemoryCounter struct{ n atomic.Int64 }

// Next implements Counter.
func (m *MemoryCounter) Next(context.Context) (int64, error) { return m.n.Add(1), nil }

// Member is the chat's data of a socket: it travels with the socket, so a
// node that describes the socket (FetchSockets) shows its clientID.
type Member struct {
	ClientID int64 `json:"clientID"`
}

// Line is what every client receives for one chat message.
type Line struct {
	ClientID int64  `json:"clientID"`
	Message  string `json:"message"`
}

// allocTimeout bounds how long a connecting client waits for its id.
const allocTimeout = 3 * time.Second

// Register installs the chat on a namespace.
func Register(nsp *socketio.Namespace, ids Counter, log *slog.Logger) {
	// The id is allocated before the socket counts as connected, so a
	// client that cannot get one is refused with a clear error instead of
	// chatting without an id.
	nsp.Use(func(s *socketio.Socket, _ json.RawMessage) error {
		if s.Recovered() {
			return nil // it has its clientID already
		}
		ctx, cancel := context.WithTimeout(context.Background(), allocTimeout)
		defer cancel()
		n, err := ids.Next(ctx)
		if err != nil {
			log.Error("chat: cannot allocate a client id", "err", err)
			return &socketio.ConnectError{Message: fmt.Sprintf("chat: cannot allocate a client id: %v", err)}
		}
		s.SetData(Member{ClientID: n - 1})
		return nil
	})
	// A recovered socket keeps its clientID: it comes back as the JSON its
	// data was stored as.
	nsp.OnConnect(func(s *socketio.Socket) {
		if raw, ok := s.Data().(json.RawMessage); ok && s.Recovered() {
			var member Member
			if err := json.Unmarshal(raw, &member); err != nil {
				log.Warn("chat: recovered socket without a clientID", "sid", s.ID(), "err", err)
			}
			s.SetData(member)
		}
	})
	nsp.OnEvent(EventIn, func(s *socketio.Socket, m *socketio.Message) {
		member, _ := s.Data().(Member)
		var text string
		if len(m.Args) == 0 || json.Unmarshal(m.Args[0], &text) != nil || m.Args[0][0] != '"' {
			log.Warn("chat: ignoring serverReceiver without a string message", "clientID", member.ClientID, "args", len(m.Args))
			return
		}
		if err := nsp.Emit(EventOut, Line{ClientID: member.ClientID, Message: text}); err != nil {
			log.Error("chat: broadcast failed", "err", err)
		}
		m.Ack(struct {
			ClientID int64 `json:"clientID"`
		}{member.ClientID})
	})
}

// ConnectPlain makes a connection without Socket.IO framing, such as a plain
// WebSocket, a member of the chat on nsp, which Register set up: each text
// message it sends is a line, exactly as if it had emitted serverReceiver
// with that string, and it receives every line as one message holding the
// JSON {"clientID": N, "message": "..."} that clientReceiver carries. The
// returned Handler takes the connection's messages (see
// socketio.Namespace.ConnectRaw).
func ConnectPlain(nsp *socketio.Namespace, conn socketio.RawConn) (engineio.Handler, error) {
	return nsp.ConnectRaw(conn, EventIn)
}
