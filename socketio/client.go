package socketio

import (
	"encoding/json"
	"net/url"
	"strings"
	"sync"
	"time"

	"siogo/engineio"
)

// client is one Engine.IO session and the sockets it has opened, one per
// namespace.
type client struct {
	srv  *Server
	conn *engineio.Session
	dec  decoder // used only from OnMessage, which never overlaps itself

	mu           sync.Mutex
	sockets      map[string]*Socket
	connectTimer *time.Timer
	closed       bool
}

func (c *client) protocol() int {
	if c.conn.Protocol() == 3 {
		return 4
	}
	return 5
}

func (c *client) onConnectTimeout() {
	c.mu.Lock()
	idle := len(c.sockets) == 0 && !c.closed
	c.mu.Unlock()
	if idle {
		c.conn.Close("connect timeout")
	}
}

// OnMessage implements engineio.Handler.
func (c *client) OnMessage(data []byte, binary bool) {
	p, err := c.dec.add(data, binary)
	if err != nil {
		c.srv.log.Debug("socketio: closing connection on bad packet", "sid", c.conn.ID(), "err", err)
		c.conn.Close("parse error")
		return
	}
	if p != nil {
		c.srv.opts.Observer.PacketIn()
		c.onPacket(p)
	}
}

func (c *client) onPacket(p *packet) {
	name, auth := p.Namespace, p.Data
	if c.conn.Protocol() == 3 {
		// Protocol 4 carries the auth data as a query in the namespace.
		name, auth = splitNamespaceQuery(p.Namespace)
	}
	c.mu.Lock()
	sock := c.sockets[name]
	c.mu.Unlock()
	switch {
	case sock == nil && p.Type == packetConnect:
		c.connect(name, auth)
	case sock != nil && p.Type != packetConnect && p.Type != packetConnectError:
		sock.onPacket(p)
	default:
		c.srv.log.Debug("socketio: invalid state", "sid", c.conn.ID(), "type", p.Type, "nsp", name)
		c.conn.Close("invalid state")
	}
}

func splitNamespaceQuery(nsp string) (string, json.RawMessage) {
	name, query, ok := strings.Cut(nsp, "?")
	if !ok {
		return nsp, nil
	}
	values, _ := url.ParseQuery(query)
	obj := make(map[string]string, len(values))
	for k, v := range values {
		obj[k] = v[0]
	}
	b, _ := json.Marshal(obj)
	return name, b
}

// connect joins the namespace, running its middlewares first. A client
// that presents the pid and offset of a recoverable session gets that
// session back, with what it missed.
func (c *client) connect(name string, auth json.RawMessage) {
	nsp := c.srv.namespace(name)
	if nsp == nil {
		c.sendPacket(&packet{Type: packetConnectError, Namespace: name, Data: json.RawMessage(`{"message":"Invalid namespace"}`)})
		return
	}
	recoverable := c.srv.keeper != nil && c.protocol() == 5
	var session *SavedSession
	var missed []missed
	var last string
	if recoverable {
		if pid, offset, ok := recoveryAuth(auth); ok {
			session, missed, last = nsp.tryRecover(pid, offset)
		}
	}
	sock := newSocket(nsp, c.conn, c.protocol(), auth, recoverable, session)
	sock.client = c
	if session == nil || !c.srv.opts.Recovery.SkipMiddlewares {
		if err := nsp.runMiddlewares(sock, auth); err != nil {
			c.sendPacket(&packet{Type: packetConnectError, Namespace: name, Data: connectErrorData(c.protocol(), err)})
			return
		}
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.sockets[name] = sock
	c.connectTimer.Stop()
	c.mu.Unlock()

	if session != nil {
		if old, ok := nsp.Socket(sock.id); ok {
			// The client came back before its old connection was
			// found dead.
			old.client.conn.Close("replaced by a recovered connection")
		}
	}
	// The CONNECT reply goes out before the socket can receive broadcasts.
	reply := &packet{Type: packetConnect, Namespace: name}
	if c.protocol() == 5 {
		reply.Data, _ = json.Marshal(struct {
			SID SocketID `json:"sid"`
			PID string   `json:"pid,omitempty"`
		}{sock.id, sock.pid})
	}
	c.sendPacket(reply)
	if session != nil {
		sock.replaying.Store(true)
		nsp.register(sock, session.Rooms)
		nsp.restore(sock, missed, last)
	} else {
		nsp.register(sock, nil)
	}
	if recoverable {
		c.srv.keeper.connected(sock)
	}
	nsp.connected(sock)
}

func (c *client) sendPacket(p *packet) error {
	return c.conn.Send(p.Frames()...)
}

func (c *client) remove(sock *Socket) {
	c.mu.Lock()
	if c.sockets[sock.nsp.name] == sock {
		delete(c.sockets, sock.nsp.name)
	}
	c.mu.Unlock()
}

// OnClose implements engineio.Handler.
func (c *client) OnClose(reason string) {
	c.mu.Lock()
	c.closed = true
	c.connectTimer.Stop()
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	clear(c.sockets)
	c.mu.Unlock()
	for _, s := range socks {
		s.onClose(reason)
	}
	for _, f := range c.srv.hooks.connectionClose.load() {
		f(c.conn, reason)
	}
}

// OnUpgrade implements engineio.UpgradeHandler.
func (c *client) OnUpgrade() {
	c.mu.Lock()
	socks := make([]*Socket, 0, len(c.sockets))
	for _, s := range c.sockets {
		socks = append(socks, s)
	}
	c.mu.Unlock()
	for _, s := range socks {
		for _, f := range s.nsp.hooks.upgrade.load() {
			f(s)
		}
	}
}
