package engineio

import (
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"siogo/internal/eioparser"
	"siogo/internal/ratelimit"
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

// NewRequestInfo describes r, keeping copies of its URL and headers, as of
// now.
func NewRequestInfo(r *http.Request) RequestInfo {
	u := *r.URL
	return RequestInfo{
		RemoteAddr: r.RemoteAddr,
		Host:       r.Host,
		URL:        &u,
		Header:     r.Header.Clone(),
		Time:       time.Now(),
		Secure:     r.TLS != nil,
	}
}

// request is what a session keeps of the request that opened it, for
// Session.Request: the strings the HTTP server made for it, its headers as
// one string, and a time in nanoseconds. A parsed URL and a header map
// would take several times the room, on every session, for what few
// programs ever ask.
type request struct {
	remoteAddr, host, uri string
	header                string // "Key: value\n" for each value
	unixNano              int64
	secure                bool
}

func newRequest(r *http.Request) request {
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 3
		}
	}
	var b strings.Builder
	b.Grow(n)
	for k, vs := range r.Header {
		for _, v := range vs {
			b.WriteString(k)
			b.WriteString(": ")
			b.WriteString(v)
			b.WriteByte('\n')
		}
	}
	uri := r.RequestURI
	if uri == "" {
		uri = r.URL.RequestURI()
	}
	return request{remoteAddr: r.RemoteAddr, host: r.Host, uri: uri, header: b.String(),
		unixNano: time.Now().UnixNano(), secure: r.TLS != nil}
}

// info unpacks the request.
func (q *request) info() RequestInfo {
	h := make(http.Header)
	for line := range strings.SplitSeq(q.header, "\n") {
		if k, v, ok := strings.Cut(line, ": "); ok {
			h[k] = append(h[k], v)
		}
	}
	u, err := url.ParseRequestURI(q.uri)
	if err != nil {
		u = &url.URL{Path: q.uri}
	}
	return RequestInfo{RemoteAddr: q.remoteAddr, Host: q.host, URL: u, Header: h,
		Time: time.Unix(0, q.unixNano), Secure: q.secure}
}

// Message is one Engine.IO message: text, or raw bytes when Binary is set.
type Message struct {
	Data   []byte
	Binary bool

	shared *sharedFrame // set by Server.PrepareBroadcast
}

// outPacket is a packet in a session's send queue. shared, on a broadcast's
// message, holds the compressed frame every recipient sends.
type outPacket struct {
	eioparser.Packet
	shared *sharedFrame
}

// Session is one Engine.IO connection. Its methods are safe for concurrent
// use.
//
// The session owns what both transports share: the send queue, the
// heartbeat and the close. The state of each transport lives in its own
// struct, poll and ws, guarded by the session's mu.
type Session struct {
	srv      *Server
	id       string
	protocol int
	req      request
	handler  Handler

	// inMu serialises delivery to the handler: polling POSTs and the
	// WebSocket reader may overlap during an upgrade. It also guards the
	// packet rate limit.
	inMu sync.Mutex
	rate ratelimit.Bucket

	mu         sync.Mutex
	queue      []outPacket
	spare      []outPacket // the previous poll's batch array, reused
	closed     bool
	overflowed bool // the queue overflowed: the session is being dropped
	reason     string
	upgrading  bool         // a WebSocket has probed; polls return at once
	polling    bool         // counted in Server.PollingCount
	poll       pollState    // the polling transport
	ws         *wsTransport // the WebSocket transport, once one is open

	beat beat      // what the heartbeat waits for
	due  time.Time // when, on the server's wheel
}

func newSession(srv *Server, protocol int, r *http.Request) *Session {
	return &Session{
		srv:      srv,
		id:       srv.cfg.NewID(),
		protocol: protocol,
		req:      newRequest(r),
	}
}

// ID returns the session id.
func (s *Session) ID() string { return s.id }

// Protocol returns the Engine.IO revision, 3 or 4.
func (s *Session) Protocol() int { return s.protocol }

// Request describes the handshake request, a copy of its own for each
// call.
func (s *Session) Request() RequestInfo { return s.req.info() }

// Transport returns the current transport name.
func (s *Session) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.transportLocked()
}

func (s *Session) transportLocked() string {
	if s.ws != nil && !s.upgrading {
		return TransportWebSocket
	}
	return TransportPolling
}

// start hands the session to the upper layer and arms the heartbeat.
func (s *Session) start(transport string) {
	if obs := s.srv.cfg.Observer; obs != nil {
		obs.SessionOpened(transport, s.protocol)
	}
	if transport == TransportPolling {
		s.mu.Lock()
		s.polling = true
		s.mu.Unlock()
		s.srv.polling.Add(1)
	}
	h := s.srv.onConnect(s)
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
	s.startHeartbeatLocked()
}

// Send queues messages for the client, as one unit: no other packet is
// interleaved with them. The messages' Data must not be modified afterwards;
// the same bytes may be shared by many sessions.
func (s *Session) Send(msgs ...Message) error { return s.push(nil, msgs) }

// send queues control packets (pings, pongs).
func (s *Session) send(pkts ...eioparser.Packet) error { return s.push(pkts, nil) }

// push queues pkts, then msgs as message packets, unless the session is
// closed or its queue would overflow.
func (s *Session) push(pkts []eioparser.Packet, msgs []Message) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return ErrClosed
	}
	if s.overflowed {
		// Being dropped: nothing more goes in, and it is counted once.
		s.mu.Unlock()
		return ErrQueueFull
	}
	if len(s.queue)+len(pkts)+len(msgs) > s.srv.cfg.MaxQueuedPackets {
		s.overflowed = true
		s.mu.Unlock()
		s.overflow()
		return ErrQueueFull
	}
	for _, p := range pkts {
		s.queue = append(s.queue, outPacket{Packet: p})
	}
	for _, m := range msgs {
		s.queue = append(s.queue, outPacket{
			Packet: eioparser.Packet{Type: eioparser.PacketMessage, Data: m.Data, Binary: m.Binary},
			shared: m.shared,
		})
	}
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
		s.ws.kickLocked()
		return
	}
	s.poll.wakeLocked()
}

// takeQueueLocked removes and returns the queued packets. The caller
// returns the slice with releaseBatch once written, so its array can be
// reused.
func (s *Session) takeQueueLocked() []outPacket {
	batch := s.queue
	s.queue = s.spare[:0]
	s.spare = nil
	return batch
}

func (s *Session) releaseBatch(batch []outPacket) {
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
	s.beat = beatNone
	transport := s.transportLocked()
	h := s.handler
	s.leavePollingLocked()
	lingering := false
	flushing := false // the WebSocket writer removes the session when done
	if s.ws != nil && !s.upgrading {
		if mode == closeFlush {
			s.ws.kickLocked()
			flushing = true
		} else {
			s.queue = nil
			s.ws.Conn.Close()
		}
	} else {
		// A polling client learns of the end from a close packet, which
		// the pending or next poll delivers.
		if mode != closeByPeer {
			s.queue = append(s.queue, outPacket{Packet: eioparser.Packet{Type: eioparser.PacketClose}})
		}
		if s.ws != nil {
			// A probing WebSocket that never finished the upgrade.
			s.ws.Conn.Close()
		}
		s.poll.wakeLocked()
		// A server-side close keeps the session findable until the next
		// poll has collected the rest of the queue, or for a ping timeout
		// at most: when no poll is waiting, or when one is but the close
		// packet must wait for the next (see servePoll). Sessions ended
		// by an error are gone at once: their next request gets 400.
		lingering = mode == closeFlush && (!s.poll.waiting || len(s.queue) > 1)
	}
	s.mu.Unlock()

	switch {
	case flushing:
		// Gone once the close frame is written (see wsTransport.Done), so
		// that Server.Close waits for it.
	case lingering:
		time.AfterFunc(s.srv.cfg.PingTimeout, func() { s.srv.remove(s) })
	default:
		s.srv.remove(s)
	}
	if obs := s.srv.cfg.Observer; obs != nil {
		obs.SessionClosed(transport, s.protocol, reason)
	}
	if h != nil {
		h.OnClose(reason)
	}
}

// leavePollingLocked takes the session out of the server's polling count,
// once: it has upgraded or ended.
func (s *Session) leavePollingLocked() {
	if s.polling {
		s.polling = false
		s.srv.polling.Add(-1)
	}
}

// Closed reports whether the session has ended.
func (s *Session) Closed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// onPacket handles one packet from the client on any transport.
func (s *Session) onPacket(p eioparser.Packet) {
	s.inMu.Lock()
	allowed := s.rate.Allow(s.srv.cfg.MaxPacketsPerSecond)
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
