// Package plainws serves plain WebSocket clients: connections with no
// Engine.IO or Socket.IO framing, such as a browser's bare WebSocket, a bot
// or websocat. Each text message a client sends goes to the Handler of its
// connection, and Conn.Send queues messages for it.
//
// A plain connection is held to the limits of the Engine.IO server it is
// served beside (see NewServer): the origin check and AllowRequest (hence the
// connection cap and handshake rate), heartbeats with WebSocket ping and pong
// frames at the Engine.IO ping interval and timeout, the largest message
// (close code 1009), the packet rate (1008), and the bounded send queue of
// a client that cannot keep up (the connection is dropped). Binary messages
// are refused with close code 1003 and text that is not UTF-8 with 1007,
// each with a reason. Server.Close ends every connection with 1001.
//
// The Engine.IO server's Observer is told of plain connections too, with
// the transport Transport and protocol revision 0.
package plainws

import (
	"context"
	"errors"
	"maps"
	"net/http"
	"slices"
	"sync"

	"github.com/gobwas/ws"

	"siogo/engineio"
	"siogo/internal/wsconn"
)

// Transport names plain connections: Conn.Transport returns it, and the
// Observer is told of their sessions under it.
const Transport = "plain"

// Server is an http.Handler for a plain WebSocket endpoint.
type Server struct {
	cfg       engineio.Config
	onConnect func(*Conn) (engineio.Handler, error)

	mu      sync.Mutex
	conns   map[*Conn]struct{}
	closing bool
	open    sync.WaitGroup // one per connection in conns
}

// NewServer returns a server for plain clients, held to the limits,
// heartbeat and Observer of the Engine.IO server engine (its transports and
// upgrade timeout do not apply). For each new connection it calls
// onConnect before completing the WebSocket handshake, so that a client
// whose WebSocket opens is already connected; the Handler returned
// receives the connection's messages. An error refuses the connection: the
// client gets close code 1008 with the error's text as the reason.
func NewServer(engine *engineio.Server, onConnect func(*Conn) (engineio.Handler, error)) *Server {
	return &Server{cfg: engine.Config(), onConnect: onConnect, conns: make(map[*Conn]struct{})}
}

// Len returns the number of open connections.
func (s *Server) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ServeHTTP checks a request against the limits, connects it and completes
// its WebSocket handshake.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !engineio.OriginAllowed(r, s.cfg.AllowedOrigins) {
		s.refuse(w, http.StatusForbidden, "origin not allowed")
		return
	}
	if !wsconn.IsUpgradeRequest(r) {
		scheme := "ws"
		if r.TLS != nil {
			scheme = "wss"
		}
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "a WebSocket endpoint: connect with a WebSocket client, e.g. websocat "+scheme+"://"+r.Host+r.URL.Path, http.StatusUpgradeRequired)
		return
	}
	if allow := s.cfg.AllowRequest; allow != nil {
		if err := allow(r); err != nil {
			status := http.StatusForbidden
			var rerr *engineio.RequestError
			if errors.As(err, &rerr) {
				status = rerr.Status
			}
			s.refuse(w, status, err.Error())
			return
		}
	}
	c := newConn(s, r)
	if !s.add(c) {
		http.Error(w, "server is shutting down", http.StatusServiceUnavailable)
		return
	}
	if obs := s.cfg.Observer; obs != nil {
		obs.SessionOpened(Transport, 0)
	}
	h, err := s.onConnect(c)
	conn, _, uerr := wsconn.Upgrade(w, r, false)
	if uerr != nil {
		// Not a valid handshake after all, or the client has gone.
		if h != nil {
			c.setHandler(h)
		}
		c.closeWith("transport error", closeDrop, 0, "")
		c.closeConn()
		return
	}
	c.start(conn, h, err)
}

func (s *Server) refuse(w http.ResponseWriter, status int, message string) {
	if obs := s.cfg.Observer; obs != nil {
		obs.RequestRefused(status)
	}
	http.Error(w, message, status)
}

// add registers a new connection, unless the server is closing.
func (s *Server) add(c *Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	s.open.Add(1)
	return true
}

// remove forgets a connection once it is closed.
func (s *Server) remove(c *Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; ok {
		delete(s.conns, c)
		s.open.Done()
	}
}

// Close refuses new connections and closes every connection with close
// code 1001 ("going away") once what is queued for it is written; clients
// take it for a lost connection and reconnect. It returns once every
// connection is closed, or with ctx's error when ctx ends first.
func (s *Server) Close(ctx context.Context) error {
	s.mu.Lock()
	s.closing = true
	all := slices.Collect(maps.Keys(s.conns))
	s.mu.Unlock()
	for _, c := range all {
		c.closeWith("server shutting down", closeFlush, ws.StatusGoingAway, "server shutting down")
	}
	closed := make(chan struct{})
	go func() {
		s.open.Wait()
		close(closed)
	}()
	select {
	case <-closed:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
