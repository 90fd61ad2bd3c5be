package wsconn

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"

	"siogo/internal/netpoll"
)

// Conn is the server side of an upgraded WebSocket connection: the hijacked
// connection, with the bytes that came right behind the handshake, and,
// while Serve reads it through the poller, its registration there.
type Conn struct {
	net.Conn
	pre []byte // read with the handshake, not yet consumed

	mu       sync.Mutex
	desc     *netpoll.Desc // while the poller watches the connection
	closed   bool          // Close was called
	deadline *time.Timer   // a read deadline, while polled

	// The polled reader's state; rmu is held while it runs, so that the
	// handler and an expiring deadline never overlap.
	rmu       sync.Mutex
	rd        *Reader
	in        []byte // the start of an unfinished message
	ended     bool
	onMessage func(op ws.OpCode, data []byte) bool
	onEnd     func(error)
}

// Read reads the bytes that came with the handshake first, then the
// connection. Serve reads on its own; Read is for a caller that reads
// without it.
func (c *Conn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		if len(c.pre) == 0 {
			c.pre = nil
		}
		return n, nil
	}
	return c.Conn.Read(p)
}

// Close ends the poller's watch, if any, and closes the connection.
func (c *Conn) Close() error {
	c.mu.Lock()
	c.closed = true
	d := c.desc
	c.desc = nil
	if c.deadline != nil {
		c.deadline.Stop()
	}
	c.mu.Unlock()
	if d != nil {
		d.Remove()
	}
	return c.Conn.Close()
}

// SetDeadline sets the read and write deadlines (see SetReadDeadline).
func (c *Conn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.SetReadDeadline(t)
}

// SetReadDeadline sets the read deadline. While Serve reads through the
// poller, passing it ends the reading with os.ErrDeadlineExceeded, as it
// would end a blocked Read.
func (c *Conn) SetReadDeadline(t time.Time) error {
	if err := c.Conn.SetReadDeadline(t); err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
	if c.desc != nil && !t.IsZero() {
		c.deadline = time.AfterFunc(time.Until(t), c.expire)
	}
	return nil
}

// usePoller turns the poller off for tests of the goroutine path.
var usePoller = true

// poller is the process's poller, or nil where there is none.
var poller = sync.OnceValue(func() *netpoll.Poller {
	p, err := netpoll.New(netpoll.Options{})
	if err != nil {
		return nil
	}
	return p
})

// Serve reads messages from c with rd until the connection ends, calling
// onMessage for each, in order; onMessage returns false to stop reading
// (its caller has ended the connection). When reading fails, or the client
// closes, onEnd is called once with the error (see CloseFor). Serve returns
// at once.
//
// Where the system has a poller and c is a plain TCP connection, no
// goroutine waits while the client is silent: the poller runs the reading
// on a worker when bytes arrive, and only the start of an unfinished
// message is kept between them. Otherwise a goroutine reads.
func (c *Conn) Serve(rd *Reader, onMessage func(op ws.OpCode, data []byte) bool, onEnd func(error)) {
	p := poller()
	sc, ok := c.Conn.(syscall.Conn)
	if !usePoller || p == nil || !ok {
		go c.readLoop(rd, onMessage, onEnd)
		return
	}
	c.rd, c.onMessage, c.onEnd = rd, onMessage, onEnd
	rd.polled()
	c.rmu.Lock()
	if pre := c.pre; len(pre) > 0 {
		c.pre = nil
		if !c.consume(pre) {
			c.rmu.Unlock()
			return
		}
	}
	c.rmu.Unlock()
	d, err := p.Add(sc, c.readable)
	if err != nil {
		c.rmu.Lock()
		c.finish(err)
		c.rmu.Unlock()
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		d.Remove()
		return
	}
	c.desc = d
	c.mu.Unlock()
}

// readLoop is Serve's goroutine, where there is no poller.
func (c *Conn) readLoop(rd *Reader, onMessage func(op ws.OpCode, data []byte) bool, onEnd func(error)) {
	for {
		op, data, err := rd.Next()
		if err != nil {
			onEnd(err)
			return
		}
		if !onMessage(op, data) {
			return
		}
	}
}

// readBufs holds the buffers a readable connection is read into.
var readBufs = sync.Pool{New: func() any { b := make([]byte, 16<<10); return &b }}

// maxReadsPerWake bounds the reads of one readable event, so that a
// connection that keeps sending cannot keep its worker: the poller calls
// again for what is left.
const maxReadsPerWake = 8

// readable reads what the connection has, hands over its whole messages,
// and asks the poller for the next bytes.
func (c *Conn) readable(d *netpoll.Desc) {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	if c.ended {
		return
	}
	bp := readBufs.Get().(*[]byte)
	defer readBufs.Put(bp)
	buf := *bp
	for range maxReadsPerWake {
		n, err := d.TryRead(buf)
		if n > 0 && !c.consume(buf[:n]) {
			return
		}
		if err != nil {
			c.finish(err)
			return
		}
		if n < len(buf) {
			break
		}
	}
	if err := d.Resume(); err != nil && !errors.Is(err, netpoll.ErrClosed) {
		c.finish(err)
	}
}

// consume hands over the whole messages in data, after what was kept of
// an unfinished one, and keeps the start of the next. It reports whether
// reading goes on.
func (c *Conn) consume(data []byte) bool {
	if len(c.in) > 0 {
		c.in = append(c.in, data...)
		data = c.in
	}
	rest, more, err := c.rd.feed(data, c.onMessage)
	switch {
	case err != nil:
		c.finish(err)
		return false
	case !more:
		c.ended = true
		c.stopPolling()
		return false
	case len(rest) == 0:
		c.in = nil // an idle connection keeps no buffer
	case len(c.in) > 0:
		// rest is the tail of c.in.
		c.in = c.in[:copy(c.in, rest)]
	default:
		c.in = append(make([]byte, 0, len(rest)), rest...)
	}
	return true
}

// finish ends the reading with err, once. The caller holds rmu.
func (c *Conn) finish(err error) {
	if c.ended {
		return
	}
	c.ended = true
	c.in = nil
	c.stopPolling()
	if errors.Is(err, netpoll.ErrClosed) {
		err = net.ErrClosed
	}
	c.onEnd(err)
}

// expire ends the reading when the read deadline passes.
func (c *Conn) expire() {
	c.rmu.Lock()
	defer c.rmu.Unlock()
	c.finish(os.ErrDeadlineExceeded)
}

// stopPolling takes the connection off the poller.
func (c *Conn) stopPolling() {
	c.mu.Lock()
	d := c.desc
	c.desc = nil
	if c.deadline != nil {
		c.deadline.Stop()
		c.deadline = nil
	}
	c.mu.Unlock()
	if d != nil {
		d.Remove()
	}
}

var _ io.Reader = (*Conn)(nil)
