package engineio

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"siogo/internal/eioparser"
	"siogo/internal/wsconn"
)

// The WebSocket transport keeps an idle connection cheap: no goroutine and
// no buffer. The poller reads it when bytes arrive (see wsconn.Conn.Serve).
// A writer goroutine exists only while there is something to write; it
// drains the whole queue into a pooled buffered writer and flushes once, so
// a burst of broadcasts costs one system call per connection instead of one
// per frame (see wsconn.Writer).

// wsTransport is the WebSocket transport of a session: the writer of its
// connection, draining the session's queue. The writer's state is guarded
// by the session's mu.
type wsTransport struct {
	wsconn.Writer[outPacket]
	s       *Session
	deflate bool // permessage-deflate was agreed
}

func (s *Session) newWSTransport(conn *wsconn.Conn, deflate bool) *wsTransport {
	t := &wsTransport{s: s, deflate: deflate}
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
func (t *wsTransport) QueueLocked() (*[]outPacket, bool) { return &t.s.queue, t.s.closed }

// WriteBatch implements wsconn.Source.
func (t *wsTransport) WriteBatch(w io.Writer, hdr []byte, batch []outPacket) error {
	deflateFrom := 0
	if t.deflate {
		deflateFrom = t.s.srv.cfg.PerMessageDeflateThreshold
	}
	fw := framePool.Get().(*frameWriter)
	err := fw.writeFrames(w, hdr, t.s.protocol, deflateFrom, batch)
	if cap(fw.z) > 64<<10 {
		fw.z = nil // one large message's buffer is not worth keeping
	}
	framePool.Put(fw)
	return err
}

// Done implements wsconn.Source: the queue is written, then the close
// frame, and only then is the session gone from the server.
func (t *wsTransport) Done(err error) {
	if err != nil {
		t.s.closeWith("transport error", closeDrop)
	} else {
		t.WriteClose(ws.StatusNormalClosure, "")
	}
	t.Conn.Close()
	t.s.srv.remove(t.s)
}

// frameWriter holds what writing frames needs beside the writer's buffer:
// room for a type byte, and for a message compressed for one connection.
type frameWriter struct {
	typ [1]byte
	z   []byte
}

var framePool = sync.Pool{New: func() any { return new(frameWriter) }}

// serveUpgrade handles a WebSocket request for an existing polling session:
// the probe exchange, then the switch of transports. A session that already
// has a WebSocket, probing or upgraded, or that has ended, answers a second
// one as the reference does: the handshake succeeds, then that WebSocket is
// closed at once, and the session carries on untouched.
func (s *Session) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	busy := s.ws != nil || s.closed
	s.mu.Unlock()
	conn, deflate, err := wsconn.Upgrade(w, r, s.srv.cfg.PerMessageDeflate && !busy)
	if err != nil {
		return
	}
	t := s.newWSTransport(conn, deflate)
	s.mu.Lock()
	if s.ws != nil || s.closed {
		s.mu.Unlock()
		go closeExtraWebSocket(conn)
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

	rd := wsconn.NewReader(conn, s.srv.cfg.MaxPayload, t, nil, deflate)
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
			var fw frameWriter
			fw.writeFrames(&pong, make([]byte, ws.MaxHeaderSize), s.protocol, 0, []outPacket{{Packet: eioparser.Packet{Type: eioparser.PacketPong, Data: p.Data}}})
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
			s.leavePollingLocked()
			s.poll.wakeLocked()
			if len(s.queue) > 0 {
				t.kickLocked()
			}
			h := s.handler
			s.mu.Unlock()
			if obs := s.srv.cfg.Observer; obs != nil {
				obs.SessionUpgraded(s.protocol)
			}
			if u, ok := h.(UpgradeHandler); ok {
				u.OnUpgrade()
			}
			s.serveWebSocket(t, conn, rd)
			return
		default:
			abort()
			return
		}
	}
}

// closeExtraWebSocket ends a WebSocket that a session does not take: a
// close frame without a status, as the reference sends, then a short wait
// for the client's close frame so that the client reads a clean close.
func closeExtraWebSocket(conn net.Conn) {
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(extraWebSocketLinger))
	if err := ws.WriteFrame(conn, ws.NewCloseFrame(nil)); err != nil {
		return
	}
	for {
		h, err := ws.ReadHeader(conn)
		if err != nil || h.OpCode == ws.OpClose {
			return
		}
		if _, err := io.CopyN(io.Discard, conn, h.Length); err != nil {
			return
		}
	}
}

// extraWebSocketLinger bounds the closing handshake of a WebSocket that a
// session does not take.
const extraWebSocketLinger = 2 * time.Second

// runWebSocket serves a session that was opened over WebSocket.
func (s *Session) runWebSocket(conn *wsconn.Conn, deflate bool) {
	t := s.newWSTransport(conn, deflate)
	s.mu.Lock()
	s.ws = t
	if len(s.queue) > 0 || s.closed {
		t.kickLocked()
	}
	s.mu.Unlock()
	s.serveWebSocket(t, conn, wsconn.NewReader(conn, s.srv.cfg.MaxPayload, t, nil, deflate))
}

// serveWebSocket reads packets until the connection fails or the session
// ends. Nothing waits on a silent connection: wsconn reads it when bytes
// arrive (see wsconn.Conn.Serve).
func (s *Session) serveWebSocket(t *wsTransport, conn *wsconn.Conn, rd *wsconn.Reader) {
	conn.Serve(rd, func(op ws.OpCode, data []byte) bool {
		return s.onWebSocketMessage(t, op, data)
	}, func(err error) {
		reason, code := wsconn.CloseFor(err)
		if code != 0 {
			t.WriteClose(code, reason)
		}
		s.closeWith(reason, closeDrop)
		t.Conn.Close()
	})
}

// onWebSocketMessage handles one message from the client, and reports
// whether the session goes on.
func (s *Session) onWebSocketMessage(t *wsTransport, op ws.OpCode, data []byte) bool {
	var p eioparser.Packet
	switch {
	case op == ws.OpBinary && s.protocol == 4:
		p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data, Binary: true}
	case op == ws.OpBinary:
		if len(data) == 0 || data[0] != byte(eioparser.PacketMessage) {
			s.closeWith("parse error", closeDrop)
			t.Conn.Close()
			return false
		}
		p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data[1:], Binary: true}
	default:
		var err error
		p, err = eioparser.DecodePacket(data)
		if err != nil {
			s.closeWith("parse error", closeDrop)
			t.Conn.Close()
			return false
		}
	}
	if p.Type == eioparser.PacketClose {
		// Over WebSocket the client's close packet is ignored, as in
		// the reference implementation; the socket closing ends it.
		return true
	}
	s.onPacket(p)
	return !s.Closed()
}

// writeFrames writes each packet as one WebSocket frame: text packets as
// "<type><data>", binary messages as raw bytes (EIO4) or with a leading
// type byte (EIO3). hdr is scratch space of ws.MaxHeaderSize bytes. With
// deflateFrom > 0, payloads of at least that many bytes are compressed
// (RSV1 set), unless that would not make them smaller: a broadcast's
// message through its shared frame, any other in fw's buffer.
func (fw *frameWriter) writeFrames(w io.Writer, hdr []byte, protocol int, deflateFrom int, pkts []outPacket) error {
	for i := range pkts {
		p := &pkts[i]
		h := ws.Header{Fin: true, OpCode: ws.OpText}
		typ := '0' + byte(p.Type)
		typed := true
		if p.Binary {
			h.OpCode = ws.OpBinary
			typ = byte(p.Type)
			typed = protocol == 3
		}
		h.Length = int64(len(p.Data))
		if typed {
			h.Length++
		}
		if deflateFrom > 0 && h.Length >= int64(deflateFrom) {
			if z := fw.deflated(p, typed, typ); z != nil {
				h.Rsv = ws.Rsv(true, false, false)
				h.Length = int64(len(z))
				if err := ws.WriteHeaderBuffer(w, h, hdr); err != nil {
					return err
				}
				if _, err := w.Write(z); err != nil {
					return err
				}
				continue
			}
		}
		if err := ws.WriteHeaderBuffer(w, h, hdr); err != nil {
			return err
		}
		if typed {
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

// deflated returns p's payload compressed, or nil when that does not make
// it smaller.
func (fw *frameWriter) deflated(p *outPacket, typed bool, typ byte) []byte {
	var prefix []byte
	variant := 0
	if typed {
		fw.typ[0] = typ
		prefix = fw.typ[:]
		if p.Binary {
			// Engine.IO 3's binary frame: the type byte, then the data.
			variant = 1
		}
	}
	if p.shared != nil {
		var z []byte
		z, fw.z = p.shared.get(variant, prefix, p.Data, fw.z)
		return z
	}
	fw.z = deflatePayload(fw.z[:0], prefix, p.Data)
	if len(fw.z) >= len(prefix)+len(p.Data) {
		return nil
	}
	return fw.z
}
