package engineio

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"

	"siogo/internal/eioparser"
)

// The WebSocket transport keeps an idle connection cheap: one goroutine
// blocked in a header read, no buffers. A writer goroutine exists only while
// there is something to write; it drains the whole queue into a pooled
// buffered writer and flushes once, so a burst of broadcasts costs one
// system call per connection instead of one per frame.

// wsTransport is the WebSocket transport of a session. writing and wake are
// guarded by the session's mu.
type wsTransport struct {
	conn    net.Conn
	deflate bool          // permessage-deflate was negotiated
	writing bool          // a writer goroutine is running
	wake    chan struct{} // wakes a lingering writer; capacity 1
	wmu     sync.Mutex    // held while writing to conn
}

// kickLocked wakes the writer, starting one if none runs.
func (t *wsTransport) kickLocked(s *Session) {
	if t.writing {
		select {
		case t.wake <- struct{}{}:
		default:
		}
		return
	}
	t.writing = true
	if t.wake == nil {
		t.wake = make(chan struct{}, 1)
	}
	go s.writeLoop(t)
}

// Write writes one whole frame, between the writer's batches: the replies
// to control frames go through it.
func (t *wsTransport) Write(p []byte) (int, error) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.conn.SetWriteDeadline(time.Now().Add(time.Second))
	return t.conn.Write(p)
}

func (t *wsTransport) writeClose(code ws.StatusCode, reason string) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	t.conn.SetWriteDeadline(time.Now().Add(time.Second))
	ws.WriteFrame(t.conn, ws.NewCloseFrame(ws.NewCloseFrameBody(code, reason)))
}

// frameWriter is a pooled buffered writer with room for a frame header and
// for a message compressed for one connection, so writing a batch allocates
// nothing.
type frameWriter struct {
	bw  *bufio.Writer
	hdr [ws.MaxHeaderSize]byte
	typ [1]byte
	z   []byte
}

var writerPool = sync.Pool{New: func() any { return &frameWriter{bw: bufio.NewWriterSize(nil, 16<<10)} }}

// upgradeWebSocket completes the WebSocket handshake, agreeing on
// permessage-deflate when offerDeflate is set and the client offers it.
func upgradeWebSocket(w http.ResponseWriter, r *http.Request, offerDeflate bool) (*wsTransport, error) {
	var u ws.HTTPUpgrader
	accepted := func() bool { return false }
	if offerDeflate {
		u.Negotiate, accepted = negotiateDeflate()
	}
	conn, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		return nil, err
	}
	// The HTTP server's request deadlines would otherwise cut the
	// long-lived connection; heartbeats bound it instead.
	conn.SetDeadline(time.Time{})
	if rw != nil && rw.Reader.Buffered() > 0 {
		// The client sent frames right behind its handshake; keep the
		// bytes already read.
		conn = &bufferedConn{Conn: conn, r: rw.Reader}
	}
	return &wsTransport{conn: conn, deflate: accepted()}, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// serveUpgrade handles a WebSocket request for an existing polling session:
// the probe exchange, then the switch of transports. A session that already
// has a WebSocket, probing or upgraded, or that has ended, answers a second
// one as the reference does: the handshake succeeds, then that WebSocket is
// closed at once, and the session carries on untouched.
func (s *Session) serveUpgrade(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	busy := s.ws != nil || s.closed
	s.mu.Unlock()
	t, err := upgradeWebSocket(w, r, s.srv.cfg.PerMessageDeflate && !busy)
	if err != nil {
		return
	}
	conn := t.conn
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

	rd := newMessageReader(conn, s.srv.cfg.MaxPayload, t, t.deflate)
	for {
		op, data, err := rd.next()
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
			fw.writeFrames(&pong, s.protocol, 0, []outPacket{{Packet: eioparser.Packet{Type: eioparser.PacketPong, Data: p.Data}}})
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
			s.leavePollingLocked()
			s.poll.wakeLocked()
			if len(s.queue) > 0 {
				t.kickLocked(s)
			}
			h := s.handler
			s.mu.Unlock()
			if obs := s.srv.cfg.Observer; obs != nil {
				obs.SessionUpgraded(s.protocol)
			}
			if u, ok := h.(UpgradeHandler); ok {
				u.OnUpgrade()
			}
			go s.readLoop(t, rd)
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
func (s *Session) runWebSocket(t *wsTransport) {
	s.mu.Lock()
	s.ws = t
	if len(s.queue) > 0 || s.closed {
		t.kickLocked(s)
	}
	s.mu.Unlock()
	go s.readLoop(t, newMessageReader(t.conn, s.srv.cfg.MaxPayload, t, t.deflate))
}

// readLoop reads packets until the connection fails or the session ends.
// It runs on a goroutine of its own rather than the HTTP handler's: the
// handler's stack has grown through request parsing and the upgrade, and an
// idle connection would keep it for its whole life.
func (s *Session) readLoop(t *wsTransport, rd *messageReader) {
	for {
		op, data, err := rd.next()
		if err != nil {
			reason := "transport error"
			var closed wsutil.ClosedError
			switch {
			case errors.Is(err, wsutil.ErrMessageTooLarge):
				reason = "message too big"
				t.writeClose(ws.StatusMessageTooBig, "message too big")
			case errors.Is(err, wsutil.ErrInvalidUTF8):
				reason = "invalid UTF-8"
				t.writeClose(ws.StatusInvalidFramePayloadData, "invalid UTF-8")
			case errors.Is(err, io.EOF), errors.As(err, &closed):
				reason = "transport close"
			}
			s.closeWith(reason, closeDrop)
			t.conn.Close()
			return
		}
		var p eioparser.Packet
		switch {
		case op == ws.OpBinary && s.protocol == 4:
			p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data, Binary: true}
		case op == ws.OpBinary:
			if len(data) == 0 || data[0] != byte(eioparser.PacketMessage) {
				s.closeWith("parse error", closeDrop)
				t.conn.Close()
				return
			}
			p = eioparser.Packet{Type: eioparser.PacketMessage, Data: data[1:], Binary: true}
		default:
			p, err = eioparser.DecodePacket(data)
			if err != nil {
				s.closeWith("parse error", closeDrop)
				t.conn.Close()
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

// writerLinger is how long an idle writer waits for more before exiting:
// under steady traffic one goroutine serves many broadcasts, while an idle
// connection keeps none.
const writerLinger = time.Second

// idleQueueCap is the largest queue array an idle connection keeps.
const idleQueueCap = 32

// writeLoop drains the queue onto the connection, each batch through a
// pooled buffered writer and one flush.
func (s *Session) writeLoop(t *wsTransport) {
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
				t.writing = false
				s.mu.Unlock()
				t.writeClose(ws.StatusNormalClosure, "")
				t.conn.Close()
				return
			}
			s.mu.Unlock()
			if linger == nil {
				linger = time.NewTimer(writerLinger)
			} else {
				linger.Reset(writerLinger)
			}
			select {
			case <-t.wake:
				continue
			case <-linger.C:
			}
			s.mu.Lock()
			if len(s.queue) == 0 && !s.closed {
				// Idle: give back queue arrays that a burst grew; small
				// ones stay, so the next message costs no allocation.
				t.writing = false
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

		deflateFrom := 0
		if t.deflate {
			deflateFrom = s.srv.cfg.PerMessageDeflateThreshold
		}
		fw := writerPool.Get().(*frameWriter)
		fw.bw.Reset(t.conn)
		t.wmu.Lock()
		t.conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
		err := fw.writeFrames(fw.bw, s.protocol, deflateFrom, batch)
		if err == nil {
			err = fw.bw.Flush()
		}
		t.wmu.Unlock()
		fw.bw.Reset(nil)
		if cap(fw.z) > 64<<10 {
			fw.z = nil // one large message's buffer is not worth keeping
		}
		writerPool.Put(fw)
		s.releaseBatch(batch)
		if err != nil {
			s.mu.Lock()
			t.writing = false
			s.queue = nil
			s.mu.Unlock()
			s.closeWith("transport error", closeDrop)
			t.conn.Close()
			return
		}
	}
}

// writeFrames writes each packet as one WebSocket frame: text packets as
// "<type><data>", binary messages as raw bytes (EIO4) or with a leading
// type byte (EIO3). With deflateFrom > 0, payloads of at least that many
// bytes are compressed (RSV1 set), unless that would not make them smaller:
// a broadcast's message through its shared frame, any other in fw's buffer.
func (fw *frameWriter) writeFrames(w io.Writer, protocol int, deflateFrom int, pkts []outPacket) error {
	hdr := fw.hdr[:]
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

// messageReader reads whole messages from a client's connection with
// gobwas/ws's wsutil.Reader, which reassembles fragments, checks frame
// headers, the message size and UTF-8, and hands control frames to a
// wsutil.ControlHandler that answers them through the transport. It keeps no
// buffer between messages. With permessage-deflate, a compressed message is
// inflated through a pooled decompressor, and text is checked for UTF-8
// once whole, since the frames carry compressed bytes.
type messageReader struct {
	rd      wsutil.Reader
	ctl     wsutil.ControlHandler
	max     int64
	deflate *wsflate.MessageState // nil without permessage-deflate
}

func newMessageReader(conn net.Conn, max int64, reply io.Writer, deflate bool) *messageReader {
	m := &messageReader{max: max}
	m.rd = wsutil.Reader{Source: conn, State: ws.StateServerSide, CheckUTF8: !deflate, MaxMessageSize: max}
	if deflate {
		m.deflate = new(wsflate.MessageState)
		m.rd.State |= ws.StateExtended
		// RSV1 is the extension's; the other two must stay clear.
		m.rd.Extensions = []wsutil.RecvExtension{m.deflate, wsutil.RecvExtensionFunc(noOtherRsv)}
	}
	m.ctl = wsutil.ControlHandler{Src: &m.rd, Dst: reply, State: ws.StateServerSide, DisableSrcCiphering: true}
	m.rd.OnIntermediate = func(h ws.Header, body io.Reader) error {
		return wsutil.ControlHandler{Src: body, Dst: reply, State: ws.StateServerSide, DisableSrcCiphering: true}.Handle(h)
	}
	return m
}

// noOtherRsv refuses a frame with a reserved bit no extension claimed.
func noOtherRsv(h ws.Header) (ws.Header, error) {
	if h.Rsv != 0 {
		return h, ws.ErrProtocolNonZeroRsv
	}
	return h, nil
}

// next returns the next text or binary message.
func (m *messageReader) next() (ws.OpCode, []byte, error) {
	for {
		h, err := m.rd.NextFrame()
		if err != nil {
			return 0, nil, err
		}
		if h.OpCode.IsControl() {
			if err := m.ctl.Handle(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		var buf []byte
		if m.deflate != nil && m.deflate.IsCompressed() {
			buf, err = inflateMessage(nil, &m.rd, m.max)
		} else {
			// The first frame's length is the whole message unless it
			// is fragmented; Read goes on through continuation frames.
			buf, err = appendAll(make([]byte, 0, h.Length), &m.rd, m.max)
		}
		if err != nil {
			return 0, nil, err
		}
		if m.deflate != nil && h.OpCode == ws.OpText && !utf8.Valid(buf) {
			return 0, nil, wsutil.ErrInvalidUTF8
		}
		return h.OpCode, buf, nil
	}
}
