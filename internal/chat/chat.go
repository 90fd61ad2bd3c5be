// Package chat is the chat application: a client emits serverReceiver with a
// string, and every connected client receives clientReceiver with
// {"clientID": <int>, "message": <string>}. clientIDs are integers handed out
// in connection order from 0 by an IDAllocator, which a cluster shares.
package chat

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"siogo/socketio"
)

// Event names of the page's protocol.
const (
	EventIn  = "serverReceiver"
	EventOut = "clientReceiver"
)

// IDAllocator hands out clientIDs: distinct integers in connection order,
// from 0.
type IDAllocator interface {
	Next(ctx context.Context) (int64, error)
}

// MemoryIDs allocates clientIDs within one process.
type MemoryIDs struct{ n atomic.Int64 }

// Next implements IDAllocator.
func (m *MemoryIDs) Next(context.Context) (int64, error) { return m.n.Add(1) - 1, nil }

// Line is what every client receives for one chat message.
type Line struct {
	ClientID int64  `json:"clientID"`
	Message  string `json:"message"`
}

// allocTimeout bounds how long a connecting client waits for its id.
const allocTimeout = 3 * time.Second

// Register installs the chat on a namespace.
func Register(nsp *socketio.Namespace, ids IDAllocator, log *slog.Logger) {
	// The id is allocated before the socket counts as connected, so a
	// client that cannot get one is refused with a clear error instead of
	// chatting without an id.
	nsp.Use(func(s *socketio.Socket, _ json.RawMessage) error {
		ctx, cancel := context.WithTimeout(context.Background(), allocTimeout)
		defer cancel()
		id, err := ids.Next(ctx)
		if err != nil {
			log.Error("chat: cannot allocate a client id", "err", err)
			return &socketio.ConnectError{Message: fmt.Sprintf("chat: cannot allocate a client id: %v", err)}
		}
		s.SetContext(id)
		return nil
	})
	nsp.OnEvent(EventIn, func(s *socketio.Socket, m *socketio.Message) {
		id, _ := s.Context().(int64)
		var text string
		if len(m.Args) == 0 || json.Unmarshal(m.Args[0], &text) != nil || m.Args[0][0] != '"' {
			log.Warn("chat: ignoring serverReceiver without a string message", "clientID", id, "args", len(m.Args))
			return
		}
		if err := nsp.Emit(EventOut, Line{ClientID: id, Message: text}); err != nil {
			log.Error("chat: broadcast failed", "err", err)
		}
		m.Ack(struct {
			ClientID int64 `json:"clientID"`
		}{id})
	})
}
