package plainws

import (
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/gobwas/ws"

	"siogo/engineio"
	"siogo/internal/ratelimit"
	"siogo/internal/wsconn"
)

// Conn is one plain WebSocket connection. Its methods are safe for
// concurrent use; it is a socketio.RawConn.
type Conn struct {
	srv *Server
	id  string
	req engineio.RequestInfo
	w   connWriter

	rate ratelimit.Bucket // the reader's alone

	mu         sync.Mutex
	handler    engineio.Handler
	open       bool // the handshake is done: w.Conn is set and the writer may run
	reading    bool // the reader runs; it closes w.Conn when it stops
	queue      []engineio.Message
	overflowed bool // the queue overflowed: the connection is being dropped
	closed     bool
	reason     string
	closeCode  ws.StatusCode // the close frame the writer sends last, 0 for none
	closeText  string

	pingTimer *time.Timer // next ping
	pongTimer *time.Timer // deadline of the pong that answers it
}

func newConn(s *Server, r *http.Request) *Conn {
	c := &Conn{srv: s, id: s.cfg.NewID(), req: engineio.NewRequestInfo(r)}
	c.w.c = c
	c.w.Timeout = s.cfg.WriteTimeout
	return c
}

// ID returns the connection id, from the Engine.IO server's NewID.
func (c *Conn) ID() string { return c.id }

// Request describes the handshake request.
func (c *Conn) Request() engineio.RequestInfo { return c.req }

// Transport returns Transport.
func (c *Conn) Transport() string { return Transport }

// Send queues messages for the client, as one unit. The messages' Data must
// not be modified afterwards; the same bytes may be shared by many
// connections. A client that has fallen so far behind that its queue would
// overflow is disconnected, and Send returns engineio.ErrQueueFull.
func (c *Conn) Send(msgs ...engineio.Message) error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return engineio.ErrClosed
	}
	if c.overflowed {
		// Being dropped: the writer may have taken the queue meanwhile,
		// but nothing more goes in.
		c.mu.Unlock()
		return engineio.ErrQueueFull
	}
	if len(c.queue)+len(msgs) > c.srv.cfg.MaxQueuedPackets {
		c.overflowed = true
		c.mu.Unlock()
		if obs := c.srv.cfg.Observer; obs != nil {
			obs.QueueOverflow()
		}
		// Closed from another goroutine: the caller may be in the middle
		// of a broadcast, and the close runs the handler's OnClose.
		go c.closeWith("send queue full", closeDrop, 0, "")
		return engineio.ErrQueueFull
	}
	c.queue = append(c.queue, msgs...)
	if c.open {
		c.w.KickLocked(&c.w)
	}
	c.mu.Unlock()
	return nil
}

// Close ends the connection from the server side: what is queued is still
// written, then a close frame 1000 with reason.
func (c *Conn) Close(reason string) {
	c.closeWith(reason, closeFlush, ws.StatusNormalClosure, reason)
}

// Closed reports whether the connection has ended.
func (c *Conn) Closed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// closeMode says how a connection ends.
type closeMode int

const (
	// closeFlush writes what is queued, then the close frame.
	closeFlush closeMode = iota
	// closeNow drops what is queued and writes the close frame.
	closeNow
	// closeDrop drops what is queued and cuts the connection.
	closeDrop
)

// A connection ends with a close handshake where it can: the writer sends
// the close frame, then shuts down its side of the connection, and the
// connection is closed once the client has closed its side too (or a
// second has passed), by the reader when it runs, or by the writer (see
// connWriter.Done). Closing at once, with the client's input unread, would
// reset the connection, and the client could lose the close frame.

// closeWith ends the connection, with code and text for the close frame of
// closeFlush and closeNow.
func (c *Conn) closeWith(reason string, mode closeMode, code ws.StatusCode, text string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed, c.reason = true, reason
	c.closeCode, c.closeText = code, text
	if c.pingTimer != nil {
		c.pingTimer.Stop()
		c.pongTimer.Stop()
	}
	if mode != closeFlush {
		c.queue = nil
	}
	if mode == closeDrop {
		c.closeCode = 0
	}
	h, open := c.handler, c.open
	if open && mode != closeDrop {
		c.w.KickLocked(&c.w)
	}
	c.mu.Unlock()

	if open && mode == closeDrop {
		c.closeConn()
	}
	if obs := c.srv.cfg.Observer; obs != nil {
		obs.SessionClosed(Transport, 0, reason)
	}
	if h != nil {
		h.OnClose(reason)
	}
}

// closeConn closes the WebSocket, if it opened, and forgets the
// connection.
func (c *Conn) closeConn() {
	c.mu.Lock()
	conn := c.w.Conn
	c.mu.Unlock()
	if conn != nil {
		conn.Close()
	}
	c.srv.remove(c)
}

// setHandler records the handler of a connection that never opened.
func (c *Conn) setHandler(h engineio.Handler) {
	c.mu.Lock()
	c.handler = h
	c.mu.Unlock()
}

// start runs a connection whose handshake is done: h receives its
// messages, unless onConnect refused it with refused. The reader runs
// whatever happened meanwhile, so that the close handshake of a connection
// that is already closing completes as soon as the client answers.
func (c *Conn) start(conn *wsconn.Conn, h engineio.Handler, refused error) {
	cfg := &c.srv.cfg
	c.mu.Lock()
	c.w.Conn = conn
	c.open = true
	c.reading = true
	c.handler = h
	closed, reason := c.closed, c.reason
	if closed || len(c.queue) > 0 {
		c.w.KickLocked(&c.w)
	}
	if !closed && refused == nil {
		c.pingTimer = time.AfterFunc(cfg.PingInterval, c.ping)
		c.pongTimer = time.AfterFunc(cfg.PingInterval+cfg.PingTimeout, func() {
			c.closeWith("ping timeout", closeDrop, 0, "")
		})
	}
	c.mu.Unlock()
	switch {
	case refused != nil:
		c.closeWith("connection refused", closeNow, ws.StatusPolicyViolation, refused.Error())
	case closed && h != nil:
		// Closed while connecting: the handler still needs to hear of it.
		h.OnClose(reason)
	}
	c.serve(conn, wsconn.NewReader(conn, cfg.MaxPayload, &c.w, c.onPong, false))
}

// ping sends a ping frame; the client's pong must come within the ping
// timeout (see onPong).
func (c *Conn) ping() {
	c.mu.Lock()
	c.w.ShrinkIdleLocked(&c.queue)
	c.mu.Unlock()
	if !c.Closed() {
		c.w.Write(ws.CompiledPing)
	}
}

// onPong takes the client's pong: the next ping is due a ping interval
// later, and the pong after it a ping timeout after that.
func (c *Conn) onPong() {
	cfg := &c.srv.cfg
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed || c.pingTimer == nil {
		return
	}
	c.pingTimer.Reset(cfg.PingInterval)
	c.pongTimer.Reset(cfg.PingInterval + cfg.PingTimeout)
}

// serve hands each text message to the handler until the connection fails
// or ends; a silent connection holds no goroutine (see wsconn.Conn.Serve).
// A client that breaks a rule gets a close frame that says which; what it
// sends after that is read and dropped until it closes its side.
func (c *Conn) serve(conn *wsconn.Conn, rd *wsconn.Reader) {
	cfg := &c.srv.cfg
	conn.Serve(rd, func(op ws.OpCode, data []byte) bool {
		if c.Closed() {
			return true
		}
		switch {
		case op != ws.OpText:
			c.closeWith("binary messages not accepted", closeNow, ws.StatusUnsupportedData, "binary messages not accepted")
		case !c.rate.Allow(cfg.MaxPacketsPerSecond):
			if obs := cfg.Observer; obs != nil {
				obs.PacketRateExceeded()
			}
			c.closeWith("packet rate limit exceeded", closeNow, ws.StatusPolicyViolation, "packet rate limit exceeded")
		default:
			c.handler.OnMessage(data, false)
		}
		return true
	}, func(err error) {
		reason, code := wsconn.CloseFor(err)
		if code != 0 {
			c.refuse(reason, code)
			return
		}
		c.closeWith(reason, closeDrop, 0, "")
		c.stopReading()
	})
}

// refuse ends the connection on a message the reader could not finish
// (too big, or not UTF-8): the close frame says why, and as the reader
// stops here, the writer closes the connection once the client has closed
// its side.
func (c *Conn) refuse(reason string, code ws.StatusCode) {
	c.mu.Lock()
	c.reading = false
	closed := c.closed
	c.mu.Unlock()
	if closed {
		// Closing already; whoever closes it expected the reader to end.
		c.closeConn()
		return
	}
	c.closeWith(reason, closeNow, code, reason)
}

// stopReading closes the connection as the reader stops.
func (c *Conn) stopReading() {
	c.mu.Lock()
	c.reading = false
	c.mu.Unlock()
	c.closeConn()
}

// connWriter writes a Conn's queue onto its WebSocket; its state is
// guarded by the Conn's mu.
type connWriter struct {
	wsconn.Writer[engineio.Message]
	c *Conn
}

// Lock and Unlock make the Conn's mu the writer's lock.
func (w *connWriter) Lock()   { w.c.mu.Lock() }
func (w *connWriter) Unlock() { w.c.mu.Unlock() }

// QueueLocked implements wsconn.Source.
func (w *connWriter) QueueLocked() (*[]engineio.Message, bool) { return &w.c.queue, w.c.closed }

// WriteBatch implements wsconn.Source: each message is one text or binary
// frame, as it is.
func (w *connWriter) WriteBatch(out io.Writer, hdr []byte, batch []engineio.Message) error {
	for _, m := range batch {
		h := ws.Header{Fin: true, OpCode: ws.OpText, Length: int64(len(m.Data))}
		if m.Binary {
			h.OpCode = ws.OpBinary
		}
		if err := ws.WriteHeaderBuffer(out, h, hdr); err != nil {
			return err
		}
		if _, err := out.Write(m.Data); err != nil {
			return err
		}
	}
	return nil
}

// Done implements wsconn.Source: after the close frame, the writer shuts
// down its side of the connection; the reader, when it runs, closes the
// connection once the client has closed its side, or else the writer waits
// for that itself.
func (w *connWriter) Done(err error) {
	c := w.c
	if err != nil {
		c.closeWith("transport error", closeDrop, 0, "")
		c.closeConn()
		return
	}
	c.mu.Lock()
	code, text, reading := c.closeCode, c.closeText, c.reading
	c.mu.Unlock()
	if code != 0 {
		w.WriteClose(code, text)
	}
	if reading {
		wsconn.CloseWrite(w.Conn)
		return
	}
	wsconn.Linger(w.Conn)
	c.srv.remove(c)
}
