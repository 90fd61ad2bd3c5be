package eioclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
	"github.com/gobwas/ws/wsutil"
)

// WSConn is the client end of a WebSocket. Reads belong to one goroutine;
// writes may come from any.
type WSConn struct {
	net.Conn

	br  *bufio.Reader // reads Conn, starting with any bytes read behind the handshake
	hdr [ws.MaxHeaderSize - 2]byte
	ctl [125]byte // the payload of a control frame
	msg []byte    // the last message, reused by the next

	// deflate is set when the server agreed to permessage-deflate; zmsg
	// then holds a compressed message while its frames come in.
	deflate bool
	zmsg    []byte

	wmu          sync.Mutex
	wbuf         bytes.Buffer
	zbuf         []byte // the compressed payload of the message being written
	writeTimeout time.Duration
}

// maxMessage bounds one message from the server, far above what the chat
// or the tests send.
const maxMessage = 64 << 20

type wsOptions struct {
	netDial      func(ctx context.Context, network, addr string) (net.Conn, error)
	header       http.Header
	readBuffer   int
	timeout      time.Duration
	writeTimeout time.Duration
	deflate      bool // offer permessage-deflate
}

// DialWS opens a WebSocket. A refused upgrade returns a ws.StatusError.
func DialWS(ctx context.Context, u string) (*WSConn, error) {
	return dialWS(ctx, u, wsOptions{timeout: 10 * time.Second})
}

func dialWS(ctx context.Context, u string, o wsOptions) (*WSConn, error) {
	size := o.readBuffer
	if size <= 0 {
		size = 4096
	}
	d := ws.Dialer{NetDial: o.netDial, ReadBufferSize: size, Timeout: o.timeout}
	if len(o.header) > 0 {
		d.Header = ws.HandshakeHeaderHTTP(o.header)
	}
	if o.deflate {
		d.Extensions = append(d.Extensions, deflateOffer.Option())
	}
	conn, br, hs, err := d.Dial(ctx, u)
	if err != nil {
		return nil, err
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, size)
	}
	c := &WSConn{Conn: conn, br: br, writeTimeout: o.writeTimeout}
	for _, ext := range hs.Extensions {
		if string(ext.Name) != wsflate.ExtensionName {
			continue
		}
		var p wsflate.Parameters
		err := p.Parse(ext)
		if err == nil {
			err = checkDeflateAnswer(p)
		}
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("eioclient: permessage-deflate answer: %w", err)
		}
		c.deflate = true
	}
	return c, nil
}

// Deflate reports whether the server agreed to permessage-deflate.
func (c *WSConn) Deflate() bool { return c.deflate }

// Read implements io.Reader over the buffered connection, for tests that
// parse frames themselves.
func (c *WSConn) Read(p []byte) (int, error) { return c.br.Read(p) }

// NextMessage returns the next data message, reassembling fragments,
// inflating it when it came compressed (permessage-deflate), answering
// pings and skipping pongs. The message is only valid until the
// next call: this is the read path of runs with thousands of clients. A
// close frame from the server is answered and returned as a
// wsutil.ClosedError carrying its code, even when the server has already
// gone and the reply cannot be written.
func (c *WSConn) NextMessage() (ws.OpCode, []byte, error) {
	var op ws.OpCode
	msg := c.msg[:0]
	compressed := false
	for {
		h, err := ws.ReadHeaderBuffer(c.br, c.hdr[:])
		if err != nil {
			return 0, nil, err
		}
		if h.Masked {
			return 0, nil, errors.New("eioclient: masked frame from the server")
		}
		if h.OpCode.IsControl() {
			if !h.Fin || h.Length > int64(len(c.ctl)) {
				return 0, nil, fmt.Errorf("eioclient: bad control frame (fin %v, %d bytes)", h.Fin, h.Length)
			}
			p := c.ctl[:h.Length]
			if _, err := io.ReadFull(c.br, p); err != nil {
				return 0, nil, err
			}
			switch h.OpCode {
			case ws.OpPing:
				c.write(ws.OpPong, p)
			case ws.OpClose:
				code, reason := ws.ParseCloseFrameData(p)
				c.write(ws.OpClose, ws.NewCloseFrameBody(code, ""))
				return 0, nil, wsutil.ClosedError{Code: code, Reason: reason}
			}
			continue
		}
		switch {
		case h.OpCode == ws.OpContinuation && op == 0:
			return 0, nil, errors.New("eioclient: continuation frame without a message")
		case h.OpCode != ws.OpContinuation && op != 0:
			return 0, nil, errors.New("eioclient: new message inside a fragmented one")
		case h.OpCode != ws.OpContinuation:
			op = h.OpCode
			// RSV1 on a message's first frame marks it compressed.
			compressed = c.deflate && h.Rsv == rsv1
			if compressed {
				msg = c.zmsg[:0]
				h.Rsv = 0
			}
		}
		if h.Rsv != 0 {
			return 0, nil, fmt.Errorf("eioclient: frame with reserved bits %03b", h.Rsv)
		}
		if int64(len(msg))+h.Length > maxMessage {
			return 0, nil, fmt.Errorf("eioclient: message of over %d bytes", maxMessage)
		}
		start := len(msg)
		msg = slices.Grow(msg, int(h.Length))[:start+int(h.Length)]
		if compressed {
			c.zmsg = msg
		} else {
			c.msg = msg
		}
		if _, err := io.ReadFull(c.br, msg[start:]); err != nil {
			return 0, nil, err
		}
		if !h.Fin {
			continue
		}
		if compressed {
			out, err := inflate(c.msg[:0], msg, maxMessage)
			c.msg = out
			if err != nil {
				return 0, nil, err
			}
			msg = out
		}
		return op, msg, nil
	}
}

// ReadMessage is NextMessage returning a copy of the message. The context's
// deadline, if any, bounds the read.
func (c *WSConn) ReadMessage(ctx context.Context) (ws.OpCode, []byte, error) {
	if d, ok := ctx.Deadline(); ok {
		c.Conn.SetReadDeadline(d)
		defer c.Conn.SetReadDeadline(time.Time{})
	}
	op, msg, err := c.NextMessage()
	return op, bytes.Clone(msg), err
}

// ReadFrame reads one whole frame, refusing one that announces more than max
// bytes, and unmasks its payload.
func ReadFrame(r io.Reader, max int64) (ws.Frame, error) {
	h, err := ws.ReadHeader(r)
	if err != nil {
		return ws.Frame{}, err
	}
	if h.Length > max {
		return ws.Frame{}, fmt.Errorf("frame of %d bytes, over the %d-byte limit", h.Length, max)
	}
	payload := make([]byte, h.Length)
	if _, err := io.ReadFull(r, payload); err != nil {
		return ws.Frame{}, err
	}
	if h.Masked {
		ws.Cipher(payload, h.Mask, 0)
	}
	return ws.Frame{Header: h, Payload: payload}, nil
}

// WriteText sends one text message.
func (c *WSConn) WriteText(p []byte) error { return c.write(ws.OpText, p) }

// WriteBinary sends one binary message.
func (c *WSConn) WriteBinary(p []byte) error { return c.write(ws.OpBinary, p) }

// WriteFrame sends one frame as it is; the caller chooses masking.
func (c *WSConn) WriteFrame(f ws.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return ws.WriteFrame(c.Conn, f)
}

// write sends one masked frame with a single Write call; a data message of
// deflateThreshold bytes or more goes compressed when permessage-deflate
// was agreed.
func (c *WSConn) write(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: ws.NewMask()}
	if c.deflate && op.IsData() && len(p) >= deflateThreshold {
		c.zbuf = appendDeflated(c.zbuf[:0], p)
		p = c.zbuf
		h.Rsv = rsv1
	}
	h.Length = int64(len(p))
	c.wbuf.Reset()
	if err := ws.WriteHeader(&c.wbuf, h); err != nil {
		return err
	}
	off := c.wbuf.Len()
	c.wbuf.Write(p)
	frame := c.wbuf.Bytes()
	ws.Cipher(frame[off:], h.Mask, 0)
	if c.writeTimeout > 0 {
		c.Conn.SetWriteDeadline(time.Now().Add(c.writeTimeout))
	}
	_, err := c.Conn.Write(frame)
	return err
}
