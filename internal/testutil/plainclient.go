package testutil

// A plain WebSocket client, for the endpoint where clients speak neither
// Engine.IO nor Socket.IO (internal/plainws): it sends text or any frame it
// is told to, and reads the server's messages, its pings and its close
// frame.

import (
	"context"
	"io"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// PlainClient is the client end of a plain WebSocket. Next must be called
// from one goroutine at a time; the write methods from any.
type PlainClient struct {
	conn net.Conn
	rd   wsutil.Reader
	ctl  wsutil.ControlHandler
	wmu  sync.Mutex

	// IgnorePings, set before reading, leaves the server's pings
	// unanswered, like a client that has gone silent.
	IgnorePings bool
	// Pings counts the server's pings read so far.
	Pings atomic.Int64
}

// DialPlain opens a plain WebSocket to u (ws://host/path) with the extra
// request headers in header. A refused handshake returns a ws.StatusError.
func DialPlain(ctx context.Context, u string, header http.Header) (*PlainClient, error) {
	d := ws.Dialer{Timeout: 10 * time.Second}
	if header != nil {
		d.Header = ws.HandshakeHeaderHTTP(header)
	}
	conn, br, _, err := d.Dial(ctx, u)
	if err != nil {
		return nil, err
	}
	var src io.Reader = conn
	if br != nil {
		// Frames the server sent right behind its handshake response.
		src = io.MultiReader(br, conn)
	}
	c := &PlainClient{conn: conn}
	c.rd = wsutil.Reader{Source: src, State: ws.StateClientSide}
	c.ctl = wsutil.ControlHandler{Src: &c.rd, Dst: plainConnWriter{&c.wmu, conn}, State: ws.StateClientSide}
	return c, nil
}

type plainConnWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l plainConnWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// Conn is the underlying connection.
func (c *PlainClient) Conn() net.Conn { return c.conn }

// Send sends one text message.
func (c *PlainClient) Send(text string) error {
	return c.WriteMessage(ws.OpText, []byte(text))
}

// WriteMessage sends one message with the given opcode, masked as a client
// must, whatever its payload.
func (c *PlainClient) WriteMessage(op ws.OpCode, payload []byte) error {
	return c.WriteFrame(ws.NewFrame(op, true, payload))
}

// WriteFrame masks f and sends it as it is otherwise.
func (c *PlainClient) WriteFrame(f ws.Frame) error {
	f.Payload = append([]byte(nil), f.Payload...)
	f = ws.MaskFrameInPlace(f)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return ws.WriteFrame(c.conn, f)
}

// Next returns the next text or binary message from the server. Pings are
// counted and answered (unless IgnorePings); a close frame is answered and
// returned as a wsutil.ClosedError with its code and reason. ctx's
// deadline, if any, bounds the wait.
func (c *PlainClient) Next(ctx context.Context) (ws.OpCode, []byte, error) {
	if d, ok := ctx.Deadline(); ok {
		c.conn.SetReadDeadline(d)
		defer c.conn.SetReadDeadline(time.Time{})
	}
	for {
		h, err := c.rd.NextFrame()
		if err != nil {
			return 0, nil, err
		}
		if h.OpCode == ws.OpPing {
			c.Pings.Add(1)
			if c.IgnorePings {
				if err := c.rd.Discard(); err != nil {
					return 0, nil, err
				}
				continue
			}
		}
		if h.OpCode.IsControl() {
			if err := c.ctl.Handle(h); err != nil {
				return 0, nil, err
			}
			continue
		}
		data, err := io.ReadAll(&c.rd)
		if err != nil {
			return 0, nil, err
		}
		return h.OpCode, data, nil
	}
}

// Close closes the connection without a close handshake.
func (c *PlainClient) Close() error { return c.conn.Close() }
