package engineio

import (
	"errors"
	"net"
	"net/http"
	"net/url"
	"siogo/internal/eioparser"
	"sync"
	"time"
)

// ErrClosed is returned by Send on a closed session.
var ErrClosed = errors.New("engineio: session closed")

// ErrQueueFull is returned by Send when the client has fallen so far behind
// that its send queue is full; the session is closed.
var ErrQueueFull = errors.New("engineio: send queue full")

// RequestInfo describes the HTTP request that opened a session.
type RequestInfo struct {
	RemoteAddr string
	Host       string
	URL        *url.URL
	Header     http.Header
	Time       time.Time
	Secure     bool
}

// Session is one Engine.IO connection. Its methods are safe for concurrent
// use.
type Session struct {
	srv      *Server
	id       string
	protocol int
	b64      bool
	req      RequestInfo
	handler  Handler

	// inMu serialises delivery to the handler: polling POSTs and the
	// WebSocket reader may overlap during an upgrade.
	inMu sync.Mutex

	mu        sync.Mutex
	transport string
	queue     []eioparser.Packet
	spare     []eioparser.Packet // the previous batch's backing array, reused
	closed    bool
	reason    string
	polling   bool          // a GET is waiting for packets
	posting   bool          // a POST is being read
	pollWake  chan struct{} // wakes the waiting GET; capacity 1
	upgrading bool          // a WebSocket has probed; polls return at once
	upgraded  bool
	ws        net.Conn
	writing   bool          // a WebSocket writer goroutine is running
	writeWake chan struct{} // wakes a lingering writer; capacity 1
	wmu       sync.Mutex    // held while writing to ws

	// Packet rate limit: a token bucket refilled at MaxPacketsPerSecond,
	// holding at most one second's worth. Touched only by the goroutine
	// delivering the client's packets, under inMu.
	tokens     float64
	tokensTime time.Time

	pingTimer    *time.Timer // EIO4: next ping
	timeoutTimer *time.Timer // heartbeat deadline
}

func newSession(srv *Server, protocol int, transport string, r *http.Request) *Session {
	u := *r.URL
	return &Session{
		srv:       srv,
		id:        srv.cfg.NewID(),
		protocol:  protocol,
		transport: transport,
		pollWake:  make(chan struct{}, 1),
		req: RequestInfo{
			RemoteAddr: r.RemoteAddr,
			Host:       r.Host,
			URL:        &u,
			Header:     r.Header.Clone(),
			Time:       time.Now(),
			Secure:     r.TLS != nil,
		},
	}
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Protocol returns the Engine.IO revision, 3 or 4.
func (s *Session) Protocol() int { return s.protocol }

// Request describes the handshake request.
func (s *Session) Request() RequestInfo { return s.req }

// Transport returns the current transport name.
func (s *Session) Transport() string { return s.currentTransport() }

func (s *Session) currentTransport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transport
}

// start hands the session to the upper layer and arms the heartbeat.
func (s *Session) start() {
	if obs := s.srv.cfg.Observer; obs != nil {
		obs.SessionOpened(s.transport, s.protocol)
	}
	h := s.srv.onConnect(s)
	cfg := &s.srv.cfg
	s.mu.Lock()
	defer s.mu.Unlock()
	s.handler = h
	if s.closed {
		// Closed while the upper layer was setting up (e.g. its first
		// packets overflowed the queue): it still needs to hear of it.
		reason := s.reason
		go h.OnClose(reason)
		return
	}
	if s.protocol == 3 {
		// The client pings; expect one every interval.
		s.timeoutTimer = time.AfterFunc(cfg.PingInterval+cfg.PingTimeout, s.onHeartbeatTimeout)
		return
	}
	s.pingTimer = time.AfterFunc(cfg.PingInterval, s.sendPing)
}

func (s *Session) sendPing() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.timeoutTimer == nil {
		s.timeoutTimer = time.AfterFunc(s.srv.cfg.PingTimeout, s.onHeartbeatTimeout)
	} else {
		s.timeoutTimer.Reset(s.srv.cfg.PingTimeout)
	}
	s.mu.Unlock()
	s.send(eioparser.Packet{Type: eioparser.PacketPing})
}

func (s *Session) onHeartbeatTimeout() { s.closeWith("ping timeout", closeDrop) }

// onHeartbeat handles a ping (EIO3) or pong (EIO4) from the client. A
// heartbeat in the wrong direction closes the session, as the reference
// implementation does.
func (s *Session) onHeartbeat(p eioparser.Packet) {
	cfg := &s.srv.cfg
	if (p.Type == eioparser.PacketPing) != (s.protocol == 3) {
		s.closeWith("invalid heartbeat direction", closeDrop)
		return
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	if s.protocol == 3 {
		s.timeoutTimer.Reset(cfg.PingInterval + cfg.PingTimeout)
		s.mu.Unlock()
		s.send(eioparser.Packet{Type: eioparser.PacketPong, Data: append([]byte(nil), p.Data...)})
		return
	}
	if s.timeoutTimer != nil {
		s.timeoutTimer.Stop()
	}
	s.pingTimer.Reset(cfg.PingInterval)
	s.mu.Unlock()
}

// Message is one Engine.IO message: text, or raw bytes when Binary is set.
type Message struct {
	Data   []byte
	Binary bool
}

// Send queues messages for the client, as one unit: no other packet is
// interleaved with them. The messages' Data must not be modified afterwards;
// the same bytes may be shared by many sessions.
func (s *Session) Send(msgs ...Message) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if len(s.queue)+len(msgs) > s.srv.cfg.MaxQueuedPackets {
		s.mu.Unlock()
		s.overflow()
		return ErrQueueFull
	}
	for _, m := range msgs {
		s.queue = append(s.queue, eioparser.Packet{Type: eioparser.PacketMessage, Data: m.Data, Binary: m.Binary})
	}
	s.wakeLocked()
	s.mu.Unlock()
	return nil
}

// send queues control packets (pings, pongs).
func (s *Session) send(pkts ...eioparser.Packet) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if len(s.queue)+len(pkts) > s.srv.cfg.MaxQueuedPackets {
		s.mu.Unlock()
		s.overflow()
		return ErrQueueFull
	}
	s.queue = append(s.queue, pkts...)
	s.wakeLocked()
	s.mu.Unlock()
	return nil
}

// overflow closes a session whose client has fallen too far behind.
func (s *Session) overflow() {
	if obs := s.srv.cfg.Observer; obs != nil {
		obs.QueueOverflow()
	}
	// Closed from another goroutine: the caller may be in the middle of a
	// broadcast, and the close runs the upper layer's handlers.
	go s.closeWith("send queue full", closeDrop)
}

// wakeLocked makes the current transport pick up the queue.
func (s *Session) wakeLocked() {
	if s.ws != nil && !s.upgrading {
		s.kickWriterLocked()
		return
	}
	select {
	case s.pollWake <- struct{}{}:
	default:
	}
}

// kickWriterLocked wakes the WebSocket writer, starting one if none runs.
func (s *Session) kickWriterLocked() {
	if s.writing {
		select {
		case s.writeWake <- struct{}{}:
		default:
		}
		return
	}
	s.writing = true
	if s.writeWake == nil {
		s.writeWake = make(chan struct{}, 1)
	}
	go s.writeLoop(s.ws)
}

// takeQueue removes and returns the queued packets. The caller returns the
// slice with releaseBatch once written, so its array can be reused.
func (s *Session) takeQueueLocked() []eioparser.Packet {
	batch := s.queue
	s.queue = s.spare[:0]
	s.spare = nil
	return batch
}

func (s *Session) releaseBatch(batch []eioparser.Packet) {
	clear(batch)
	s.mu.Lock()
	// Keep small arrays for reuse; let a burst's large one go.
	if s.spare == nil && cap(batch) <= 256 {
		s.spare = batch[:0]
	}
	s.mu.Unlock()
}

// Close ends the session from the server side. Queued packets are still
// written, then the client is told the session is over.
func (s *Session) Close(reason string) { s.closeWith(reason, closeFlush) }

// closeMode says how a session ends.
type closeMode int

const (
	// closeFlush writes what is queued, then the transport's close signal.
	closeFlush closeMode = iota
	// closeDrop drops the connection; a polling client still gets a close
	// packet on its next poll.
	closeDrop
	// closeByPeer ends a session the client closed: a waiting poll is
	// answered with a noop.
	closeByPeer
)

// closeWith ends the session.
func (s *Session) closeWith(reason string, mode closeMode) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.reason = reason
	if s.pingTimer != nil {
		s.pingTimer.Stop()
	}
	if s.timeoutTimer != nil {
		s.timeoutTimer.Stop()
	}
	transport := s.transport
	ws := s.ws
	h := s.handler
	lingering := false
	if ws != nil && !s.upgrading {
		if mode == closeFlush {
			s.kickWriterLocked()
		} else {
			s.queue = nil
			ws.Close()
		}
	} else {
		// A polling client learns of the end from a close packet, which
		// the pending or next poll delivers.
		if mode != closeByPeer {
			s.queue = append(s.queue, eioparser.Packet{Type: eioparser.PacketClose})
		}
		if ws != nil {
			// A probing WebSocket that never finished the upgrade.
			ws.Close()
		}
		select {
		case s.pollWake <- struct{}{}:
		default:
		}
		// A server-side close with no poll waiting keeps the session
		// findable until the next poll has collected the rest of the
		// queue, or for a ping timeout at most. Sessions ended by an
		// error are gone at once: their next request gets 400.
		lingering = mode == closeFlush && !s.polling
	}
	s.mu.Unlock()

	if lingering {
		time.AfterFunc(s.srv.cfg.PingTimeout, func() { s.srv.remove(s) })
	} else {
		s.srv.remove(s)
	}
	if obs := s.srv.cfg.Observer; obs != nil {
		obs.SessionClosed(transport, s.protocol, reason)
	}
	if h != nil {
		h.OnClose(reason)
	}
}

// Closed reports whether the session has ended.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// allowPacket spends a token of the rate limit; the caller holds inMu.
func (s *Session) allowPacket() bool {
	limit := s.srv.cfg.MaxPacketsPerSecond
	if limit <= 0 {
		return true
	}
	now := time.Now()
	if s.tokensTime.IsZero() {
		s.tokens = float64(limit)
	} else {
		s.tokens = min(float64(limit), s.tokens+now.Sub(s.tokensTime).Seconds()*float64(limit))
	}
	s.tokensTime = now
	if s.tokens < 1 {
		return false
	}
	s.tokens--
	return true
}

// onPacket handles one packet from the client on any transport.
func (s *Session) onPacket(p eioparser.Packet) {
	s.inMu.Lock()
	allowed := s.allowPacket()
	s.inMu.Unlock()
	if !allowed {
		if obs := s.srv.cfg.Observer; obs != nil {
			obs.PacketRateExceeded()
		}
		s.closeWith("packet rate limit exceeded", closeDrop)
		return
	}
	switch p.Type {
	case eioparser.PacketMessage:
		s.inMu.Lock()
		if !s.Closed() {
			s.handler.OnMessage(p.Data, p.Binary)
		}
		s.inMu.Unlock()
	case eioparser.PacketPing, eioparser.PacketPong:
		s.onHeartbeat(p)
	case eioparser.PacketClose:
		s.closeWith("transport close", closeByPeer)
	}
}
