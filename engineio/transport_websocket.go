package engineio

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"siogo/internal/eioparser"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// The WebSocket transport keeps an idle connection cheap: one goroutine
// blocked in a header read, no buffers. A writer goroutine exists only while
// there is something to write; it drains the whole queue into a pooled
// buffered writer and flushes once, so a burst of broadcasts costs one
// system call per connection instead of one per frame.

// frameWriter is a pooled buffered writer with room for a frame header, so
// writing a batch allocates nothing.
type frameWriter struct {
	bw  *bufio.Writer
	hdr [ws.MaxHeaderSize]byte
}

var writerPool = sync.Pool{New: func() any { return &frameWriter{bw: bufio.NewWriterSize(nil, 16<<10)} }}

func upgradeWebSocket(w http.ResponseWriter, r *http.Request) (net.Conn, error) {
	conn, rw, _, err := ws.HTTPUpgrader{}.Upgrade(r, w)
	if err != nil {
		return nil, err
	}
	// The HTTP server's request deadlines would otherwise cut the
	// long-lived connection; heartbeats bound it instead.
	conn.SetDeadline(time.Time{})
	if rw != nil && rw.Reader.Buffered() > 0 {
		// The client sent frames right behind its handshake; keep the
		// bytes already read.
		return &bufferedConn{Conn: conn, r: rw.Reader}, nil
	}
	return conn, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveUpgrade handles a WebSocket request for an existing polling session:
// the probe exchange, then the switch of transports.
func (s *Session) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.transport != TransportPolling || s.upgrading || s.closed {
		s.mu.Unlock()
		writeError(w, codeBadRequest)
		return
	}
	s.mu.Unlock()
	conn, err := upgradeWebSocket(w, r)
	if err != nil {
		return
	}
	s.mu.Lock()
	if s.transport != TransportPolling || s.upgrading || s.closed {
		s.mu.Unlock()
		conn.Close()
		return
	}
	s.upgrading = true
	s.ws = conn
	s.mu.Unlock()

	abort := func() {
		conn.Close()
		s.mu.Lock()
		if s.ws == conn && s.upgrading {
			s.ws = nil
			s.upgrading = false
		}
		s.mu.Unlock()
	}
	timer := time.AfterFunc(s.srv.cfg.UpgradeTimeout, abort)
	defer timer.Stop()

	fr := frameReader{conn: conn, max: s.srv.cfg.MaxPayload, wmu: &s.wmu}
	for {
		op, data, err := fr.next()
		if err != nil {
			abort()
			return
		}
		if op != ws.OpText {
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
			// Answered directly: the writer is not on this connection yet.
			if err := writeFrames(conn, make([]byte, ws.MaxHeaderSize), s.protocol, []eioparser.Packet{{Type: eioparser.PacketPong, Data: p.Data}}); err != nil {
				abort()
				return
			}
			// Hand back the pending poll so the client can pause polling.
			s.mu.Lock()
			select {
			case s.pollWake <- struct{}{}:
			default:
			}
			s.mu.Unlock()
		case p.Type == eioparser.PacketUpgrade:
			timer.Stop()
			s.mu.Lock()
			if s.closed || s.ws != conn {
				s.mu.Unlock()
				conn.Close()
				return
			}
			s.upgrading = false
			s.upgraded = true
			s.transport = TransportWebSocket
			select {
			case s.pollWake <- struct{}{}:
			default:
			}
			if len(s.queue) > 0 {
				s.wakeLocked()
			}
			s.mu.Unlock()
			if obs := s.srv.cfg.Observer; obs != nil {
				obs.SessionUpgraded(s.protocol)
			}
			go s.readLoop(conn, &fr)
			return
		default:
			abort()
			return
		}
	}
}

// runWebSocket serves a session that was opened over WebSocket.
func (s *Session) runWebSocket(conn net.Conn) {
	s.mu.Lock()
	s.ws = conn
	if len(s.queue) > 0 || s.closed {
		s.kickWriterLocked()
	}
	s.mu.Unlock()
	fr := frameReader{conn: conn, max: s.srv.cfg.MaxPayload, wmu: &s.wmu}
	go s.readLoop(conn, &fr)
}

// readLoop reads packets until the connection fails or the session ends.
// It runs on a goroutine of its own rather than the HTTP handler's: the
// handler's stack has grown through request parsing and the upgrade, and an
// idle connection would keep it for its whole life.
func (s *Session) readLoop(conn net.Conn, fr *frameReader) {
	for {
		op, data, err := fr.next()
		if err != nil {
			reason := "transport error"
			switch {
			case errors.Is(err, errMessageTooBig):
				reason = "message too big"
				s.writeClose(conn, ws.StatusMessageTooBig, "message too big")
			case errors.Is(err, errInvalidUTF8):
				reason = "invalid UTF-8"
				s.writeClose(conn, ws.StatusInvalidFramePayloadData, "invalid UTF-8")
			case errors.Is(err, io.EOF), errors.Is(err, errClosedByPeer):
				reason = "transport close"
			}
			s.closeWith(reason, closeDrop)
			conn.Close()
			return
		}
		var p eioparser.Packet
		switch {
		case op == ws.OpBinary && s.protocol == 4:
			p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data, Binary: true}
		case op == ws.OpBinary:
			if len(data) == 0 || data[0] != byte(eioparser.PacketMessage) {
				s.closeWith("parse error", closeDrop)
				conn.Close()
				return
			}
			p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data[1:], Binary: true}
		default:
			p, err = eioparser.DecodePacket(data)
			if err != nil {
				s.closeWith("parse error", closeDrop)
				conn.Close()
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

func (s *Session) writeClose(conn net.Conn, code ws.StatusCode, reason string) {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	conn.SetWriteDeadline(time.Now().Add(time.Second))
	ws.WriteFrame(conn, ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason)))
}

// writerLinger is how long an idle writer waits for more before exiting:
// under steady traffic one goroutine serves many broadcasts, while an idle
// connection keeps none.
const writerLinger = time.Second

// idleQueueCap is the largest queue array an idle connection keeps.
const idleQueueCap = 32

// writeLoop drains the queue onto the connection, each batch through a
// pooled buffered writer and one flush.
func (s *Session) writeLoop(conn net.Conn) {
	var linger *time.Timer
	defer func() {
		if linger != nil {
			linger.Stop()
		}
	}()
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			if s.closed {
				s.writing = false
				s.mu.Unlock()
				s.writeClose(conn, ws.StatusNormalClosure, "")
				conn.Close()
				return
			}
			s.mu.Unlock()
			if linger == nil {
				linger = time.NewTimer(writerLinger)
			} else {
				linger.Reset(writerLinger)
			}
			select {
			case <-s.writeWake:
				continue
			case <-linger.C:
			}
			s.mu.Lock()
			if len(s.queue) == 0 && !s.closed {
				// Idle: give back queue arrays that a burst grew; small
				// ones stay, so the next message costs no allocation.
				s.writing = false
				if cap(s.queue) > idleQueueCap {
					s.queue = nil
				}
				if cap(s.spare) > idleQueueCap {
					s.spare = nil
				}
				s.mu.Unlock()
				return
			}
			s.mu.Unlock()
			continue
		}
		batch := s.takeQueueLocked()
		s.mu.Unlock()

		fw := writerPool.Get().(*frameWriter)
		fw.bw.Reset(conn)
		s.wmu.Lock()
		conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
		err := writeFrames(fw.bw, fw.hdr[:], s.protocol, batch)
		if err == nil {
			err = fw.bw.Flush()
		}
		s.wmu.Unlock()
		fw.bw.Reset(nil)
		writerPool.Put(fw)
		s.releaseBatch(batch)
		if err != nil {
			s.mu.Lock()
			s.writing = false
			s.queue = nil
			s.mu.Unlock()
			s.closeWith("transport error", closeDrop)
			conn.Close()
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

var (
	errMessageTooBig = errors.New("engineio: websocket message too big")
	errInvalidUTF8   = errors.New("engineio: websocket text is not valid UTF-8")
	errClosedByPeer  = errors.New("engineio: websocket closed by peer")
	errProtocol      = errors.New("engineio: websocket protocol error")
)

// frameReader reads whole WebSocket messages straight from the connection,
// reassembling fragments and answering control frames, with no buffer kept
// between messages.
type frameReader struct {
	conn net.Conn
	max  int64
	hdr  [ws.MaxHeaderSize - 2]byte
	wmu  *sync.Mutex // serialises pongs with the session's writer
}

// knownOpCode reports whether op is defined by RFC 6455; the reserved ones
// must fail the connection rather than pass as text without its checks.
func knownOpCode(op ws.OpCode) bool {
	switch op {
	case ws.OpContinuation, ws.OpText, ws.OpBinary, ws.OpClose, ws.OpPing, ws.OpPong:
		return true
	}
	return false
}

func (fr *frameReader) next() (ws.OpCode, []byte, error) {
	var msg []byte
	var op ws.OpCode
	for {
		h, err := ws.ReadHeaderBuffer(fr.conn, fr.hdr[:])
		if err != nil {
			return 0, nil, err
		}
		if !h.Masked || h.Rsv != 0 || !knownOpCode(h.OpCode) {
			return 0, nil, errProtocol
		}
		if h.OpCode.IsControl() {
			if h.Length > 125 || !h.Fin {
				return 0, nil, errProtocol
			}
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(fr.conn, payload); err != nil {
				return 0, nil, err
			}
			ws.Cipher(payload, h.Mask, 0)
			switch h.OpCode {
			case ws.OpClose:
				return 0, nil, errClosedByPeer
			case ws.OpPing:
				// Control frames may be sent in the middle of a batch;
				// a pong is rare enough to take its own write.
				fr.wmu.Lock()
				fr.conn.SetWriteDeadline(time.Now().Add(time.Second))
				err := ws.WriteFrame(fr.conn, ws.NewPongFrame(payload))
				fr.wmu.Unlock()
				if err != nil {
					return 0, nil, err
				}
			}
			continue
		}
		if h.OpCode == ws.OpContinuation {
			if msg == nil && op == 0 {
				return 0, nil, errProtocol
			}
		} else {
			if op != 0 {
				return 0, nil, errProtocol
			}
			op = h.OpCode
		}
		if int64(len(msg))+h.Length > fr.max {
			return 0, nil, errMessageTooBig
		}
		start := len(msg)
		msg = append(msg, make([]byte, h.Length)...)
		if _, err := io.ReadFull(fr.conn, msg[start:]); err != nil {
			return 0, nil, err
		}
		ws.Cipher(msg[start:], h.Mask, 0)
		if h.Fin {
			if op == ws.OpText && !utf8.Valid(msg) {
				return 0, nil, errInvalidUTF8
			}
			return op, msg, nil
		}
	}
}
