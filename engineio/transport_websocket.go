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

	"github.com/gobwas/ws"
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
	busy := s.ws != nil || s.closed
	s.mu.Unlock()
	if busy {
		writeError(w, codeBadRequest)
		return
	}
	conn, err := upgradeWebSocket(w, r)
	if err != nil {
		return
	}
	t := &wsTransport{conn: conn}
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

	rd := newMessageReader(conn, s.srv.cfg.MaxPayload, t)
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
			s.poll.wakeLocked()
			if len(s.queue) > 0 {
				t.kickLocked(s)
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
	t := &wsTransport{conn: conn}
	s.mu.Lock()
	s.ws = t
	if len(s.queue) > 0 || s.closed {
		t.kickLocked(s)
	}
	s.mu.Unlock()
	go s.readLoop(t, newMessageReader(conn, s.srv.cfg.MaxPayload, t))
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

		fw := writerPool.Get().(*frameWriter)
		fw.bw.Reset(t.conn)
		t.wmu.Lock()
		t.conn.SetWriteDeadline(time.Now().Add(s.srv.cfg.WriteTimeout))
		err := writeFrames(fw.bw, fw.hdr[:], s.protocol, batch)
		if err == nil {
			err = fw.bw.Flush()
		}
		t.wmu.Unlock()
		fw.bw.Reset(nil)
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

// messageReader reads whole messages from a client's connection with
// gobwas/ws's wsutil.Reader, which reassembles fragments, checks frame
// headers, the message size and UTF-8, and hands control frames to a
// wsutil.ControlHandler that answers them through the transport. It keeps no
// buffer between messages.
type messageReader struct {
	rd  wsutil.Reader
	ctl wsutil.ControlHandler
}

func newMessageReader(conn net.Conn, max int64, reply io.Writer) *messageReader {
	m := &messageReader{}
	m.rd = wsutil.Reader{Source: conn, State: ws.StateServerSide, CheckUTF8: true, MaxMessageSize: max}
	m.ctl = wsutil.ControlHandler{Src: &m.rd, Dst: reply, State: ws.StateServerSide, DisableSrcCiphering: true}
	m.rd.OnIntermediate = func(h ws.Header, body io.Reader) error {
		return wsutil.ControlHandler{Src: body, Dst: reply, State: ws.StateServerSide, DisableSrcCiphering: true}.Handle(h)
	}
	return m
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
		// The first frame's length is the whole message unless it is
		// fragmented; Read goes on through continuation frames.
		buf := make([]byte, 0, h.Length)
		for {
			if len(buf) == cap(buf) {
				buf = append(buf, 0)[:len(buf)]
			}
			n, err := m.rd.Read(buf[len(buf):cap(buf)])
			buf = buf[:len(buf)+n]
			if err == io.EOF {
				return h.OpCode, buf, nil
			}
			if err != nil {
				return 0, nil, err
			}
		}
	}
}
