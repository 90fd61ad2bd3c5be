package engineio

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/gobwas/ws"

	"siogo/internal/eioparser"
	"siogo/internal/wsconn"
)

// The WebSocket transport keeps an idle connection cheap: one goroutine
// blocked in a header read, no buffers. A writer goroutine exists only while
// there is something to write; it drains the whole queue into a pooled
// buffered writer and flushes once, so a burst of broadcasts costs one
// system call per connection instead of one per frame (see wsconn.Writer).

// wsTransport is the WebSocket transport of a session: the writer of its
// connection, draining the session's queue. The writer's state is guarded
// by the session's mu.
type wsTransport struct {
	wsconn.Writer[eioparser.Packet]
	s *Session
}

func (s *Session) newWSTransport(conn net.Conn) *wsTransport {
	t := &wsTransport{s: s}
	t.Conn = conn
	t.Timeout = s.srv.cfg.WriteTimeout
	return t
}

// kickLocked wakes the writer, starting one if none runs.
func (t *wsTransport) kickLocked() { t.KickLocked(t) }

// Lock and Unlock make the session's mu the writer's lock.
func (t *wsTransport) Lock()   { t.s.mu.Lock() }
func (t *wsTransport) Unlock() { t.s.mu.Unlock() }

// QueueLocked implements wsconn.Source.
func (t *wsTransport) QueueLocked() (*[]eioparser.Packet, bool) { return &t.s.queue, t.s.closed }

// WriteBatch implements wsconn.Source.
func (t *wsTransport) WriteBatch(w io.Writer, hdr []byte, batch []eioparser.Packet) error {
	return writeFrames(w, hdr, t.s.protocol, batch)
}

// Done implements wsconn.Source.
func (t *wsTransport) Done(err error) {
	if err != nil {
		t.s.closeWith("transport error", closeDrop)
	} else {
		t.WriteClose(ws.StatusNormalClosure, "")
	}
	t.Conn.Close()
}

// serveUpgrade handles a WebSocket request for an existing polling session:
// the probe exchange, then the switch of transports.
func (s *Session) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	busy := s.ws != nil || s.closed
	s.mu.Unlock()
	if busy {
		writeError(w, codeBadRequest)
		return
	}
	conn, err := wsconn.Upgrade(w, r)
	if err != nil {
		return
	}
	t := s.newWSTransport(conn)
	s.mu.Lock()
	if s.ws != nil || s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.upgrading = true
	s.ws = t
	s.mu.Unlock()

	abort := func() {
		conn.Close()
		s.mu.Lock()
		if s.ws == t && s.upgrading {
			s.ws = nil
			s.upgrading = false
		}
		s.mu.Unlock()
	}
	timer := time.AfterFunc(s.srv.cfg.UpgradeTimeout, abort)
	defer timer.Stop()

	rd := wsconn.NewReader(conn, s.srv.cfg.MaxPayload, t, nil)
	for {
		op, data, err := rd.Next()
		if err != nil || op != ws.OpText {
			abort()
			return
		}
		p, err := eioparser.DecodePacket(data)
		if err != nil {
			abort()
			return
		}
		switch {
		case p.Type == eioparser.PacketPing && string(p.Data) == "probe":
			// Answered directly, in one write: the writer is not on this
			// connection yet.
			var pong bytes.Buffer
			writeFrames(&pong, make([]byte, ws.MaxHeaderSize), s.protocol, []eioparser.Packet{{Type: eioparser.PacketPong, Data: p.Data}})
			if _, err := t.Write(pong.Bytes()); err != nil {
				abort()
				return
			}
			// Hand back the pending poll so the client can pause polling.
			s.mu.Lock()
			s.poll.wakeLocked()
			s.mu.Unlock()
		case p.Type == eioparser.PacketUpgrade:
			timer.Stop()
			s.mu.Lock()
			if s.closed || s.ws != t {
				s.mu.Unlock()
				conn.Close()
				return
			}
			s.upgrading = false
			s.spare = nil // polling is over
			s.poll.wakeLocked()
			if len(s.queue) > 0 {
				t.kickLocked()
			}
			s.mu.Unlock()
			if obs := s.srv.cfg.Observer; obs != nil {
				obs.SessionUpgraded(s.protocol)
			}
			go s.readLoop(t, rd)
			return
		default:
			abort()
			return
		}
	}
}

// runWebSocket serves a session that was opened over WebSocket.
func (s *Session) runWebSocket(conn net.Conn) {
	t := s.newWSTransport(conn)
	s.mu.Lock()
	s.ws = t
	if len(s.queue) > 0 || s.closed {
		t.kickLocked()
	}
	s.mu.Unlock()
	go s.readLoop(t, wsconn.NewReader(conn, s.srv.cfg.MaxPayload, t, nil))
}

// readLoop reads packets until the connection fails or the session ends.
// It runs on a goroutine of its own rather than the HTTP handler's: the
// handler's stack has grown through request parsing and the upgrade, and an
// idle connection would keep it for its whole life.
func (s *Session) readLoop(t *wsTransport, rd *wsconn.Reader) {
	for {
		op, data, err := rd.Next()
		if err != nil {
			reason, code := wsconn.CloseFor(err)
			if code != 0 {
				t.WriteClose(code, reason)
			}
			s.closeWith(reason, closeDrop)
			t.Conn.Close()
			return
		}
		var p eioparser.Packet
		switch {
		case op == ws.OpBinary && s.protocol == 4:
			p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data, Binary: true}
		case op == ws.OpBinary:
			if len(data) == 0 || data[0] != byte(eioparser.PacketMessage) {
				s.closeWith("parse error", closeDrop)
				t.Conn.Close()
				return
			}
			p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data[1:], Binary: true}
		default:
			p, err = eioparser.DecodePacket(data)
			if err != nil {
				s.closeWith("parse error", closeDrop)
				t.Conn.Close()
				return
			}
		}
		if p.Type == eioparser.PacketClose {
			// Over WebSocket the client's close packet is ignored, as in
			// the reference implementation; the socket closing ends it.
			continue
		}
		s.onPacket(p)
		if s.Closed() {
			return
		}
	}
}

// writeFrames writes each packet as one WebSocket frame: text packets as
// "<type><data>", binary messages as raw bytes (EIO4) or with a leading
// type byte (EIO3). hdr is scratch space of ws.MaxHeaderSize bytes.
func writeFrames(w io.Writer, hdr []byte, protocol int, pkts []eioparser.Packet) error {
	for _, p := range pkts {
		h := ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(p.Data)) + 1}
		typ := '0' + byte(p.Type)
		if p.Binary {
			h.OpCode = ws.OpBinary
			typ = byte(p.Type)
			if protocol == 4 {
				h.Length--
			}
		}
		if err := ws.WriteHeaderBuffer(w, h, hdr); err != nil {
			return err
		}
		if !p.Binary || protocol == 3 {
			// The header is in w already; its buffer carries the type.
			hdr[0] = typ
			if _, err := w.Write(hdr[:1]); err != nil {
				return err
			}
		}
		if _, err := w.Write(p.Data); err != nil {
			return err
		}
	}
	return nil
}
