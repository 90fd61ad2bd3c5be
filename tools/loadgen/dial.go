package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gobwas/ws"
)

// dialer opens client sessions with the configured transport.
type dialer struct {
	r    *run
	ws   ws.Dialer
	http *http.Client
}

func newDialer(r *run) *dialer {
	d := &dialer{r: r}
	d.ws = ws.Dialer{NetDial: r.netDial, ReadBufferSize: r.cfg.readBuf}
	tr := &http.Transport{
		DialContext:         r.netDial,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 2*r.cfg.clients + 16,
		IdleConnTimeout:     time.Minute,
		DisableCompression:  !r.cfg.gzip,
	}
	d.http = &http.Client{Transport: tr}
	return d
}

func (d *dialer) closeIdle() { d.http.CloseIdleConnections() }

func (d *dialer) connect(ctx context.Context, c *client) error {
	if d.r.cfg.transport == "polling" {
		return connectPolling(ctx, d, c)
	}
	return connectWS(ctx, d, c)
}

// netDial dials TCP, spreading connections over the -src addresses so 10k
// connections never exhaust one address's ephemeral ports.
func (r *run) netDial(ctx context.Context, network, addr string) (net.Conn, error) {
	nd := net.Dialer{Control: bindNoPort}
	if n := len(r.cfg.srcs); n > 0 {
		i := r.srcNext.Add(1)
		nd.LocalAddr = &net.TCPAddr{IP: r.cfg.srcs[int(i%uint64(n))]}
	}
	conn, err := nd.DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	// Closing with a reset leaves no TIME_WAIT entries behind, so back-to-back
	// runs of thousands of clients do not pile up unusable ports.
	_ = conn.(*net.TCPConn).SetLinger(0)
	return conn, nil
}

func (r *run) endpoint(scheme, transport, sid string) string {
	u := *r.cfg.base
	u.Scheme = scheme
	u.Path = r.cfg.path
	q := "EIO=" + strconv.Itoa(r.cfg.eio) + "&transport=" + transport
	if sid != "" {
		q += "&sid=" + sid
	}
	u.RawQuery = q
	return u.String()
}

// wsConn is a client's WebSocket. Reads happen on the client's own goroutine;
// writes come from that goroutine (pongs), a sender, or the EIO3 pinger, so
// they are serialised by mu.
type wsConn struct {
	c    *client
	conn net.Conn
	br   *bufio.Reader
	hdr  [ws.MaxHeaderSize - 2]byte
	buf  []byte // payload of the frame being read, reused
	frag []byte // a fragmented message being reassembled

	mu   sync.Mutex
	wbuf bytes.Buffer
}

func connectWS(ctx context.Context, d *dialer, c *client) error {
	conn, br, _, err := d.ws.Dial(ctx, d.r.endpoint("ws", "websocket", ""))
	if err != nil {
		return err
	}
	if br == nil {
		br = bufio.NewReaderSize(conn, d.r.cfg.readBuf)
	}
	w := &wsConn{c: c, conn: conn, br: br, buf: make([]byte, 0, 256)}
	c.t = w
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetReadDeadline(dl)
	}
	fail := func(err error) error {
		conn.Close()
		return err
	}
	pkt, err := w.readMessage()
	if err != nil {
		return fail(fmt.Errorf("reading open packet: %w", err))
	}
	if c.open, err = parseOpen(pkt); err != nil {
		return fail(err)
	}
	if c.r.cfg.eio == 4 {
		// Socket.IO 5 has no implicit connection to the main namespace.
		if err := w.send([]byte("40")); err != nil {
			return fail(err)
		}
	}
	for !c.connected.Load() {
		pkt, err := w.readMessage()
		if err != nil {
			return fail(fmt.Errorf("waiting for CONNECT: %w", err))
		}
		if err := c.handle(pkt); err != nil {
			return fail(err)
		}
	}
	_ = conn.SetReadDeadline(time.Time{})
	c.startPinger()
	go w.readLoop()
	return nil
}

func (w *wsConn) readLoop() {
	for {
		pkt, err := w.readMessage()
		if err == nil {
			err = w.c.handle(pkt)
		}
		if err != nil {
			w.c.lost(err)
			w.conn.Close()
			return
		}
	}
}

// readMessage returns the next data message. The slice is only valid until
// the next call. Control frames are handled here.
func (w *wsConn) readMessage() ([]byte, error) {
	for {
		h, err := ws.ReadHeaderBuffer(w.br, w.hdr[:])
		if err != nil {
			return nil, err
		}
		if h.Length > 1<<24 {
			return nil, fmt.Errorf("frame of %d bytes", h.Length)
		}
		n := int(h.Length)
		if cap(w.buf) < n {
			w.buf = make([]byte, n)
		}
		p := w.buf[:n]
		if _, err := io.ReadFull(w.br, p); err != nil {
			return nil, err
		}
		if h.Masked {
			ws.Cipher(p, h.Mask, 0)
		}
		switch h.OpCode {
		case ws.OpText, ws.OpBinary:
			if h.Fin {
				return p, nil
			}
			w.frag = append(w.frag[:0], p...)
		case ws.OpContinuation:
			w.frag = append(w.frag, p...)
			if h.Fin {
				return w.frag, nil
			}
		case ws.OpPing:
			if err := w.writeFrame(ws.OpPong, p); err != nil {
				return nil, err
			}
		case ws.OpClose:
			return nil, errors.New("websocket closed by server")
		}
	}
}

func (w *wsConn) send(pkt []byte) error { return w.writeFrame(ws.OpText, pkt) }

// writeFrame writes one masked client frame with a single Write call.
func (w *wsConn) writeFrame(op ws.OpCode, payload []byte) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	h := ws.Header{Fin: true, OpCode: op, Masked: true, Mask: ws.NewMask(), Length: int64(len(payload))}
	w.wbuf.Reset()
	if err := ws.WriteHeader(&w.wbuf, h); err != nil {
		return err
	}
	off := w.wbuf.Len()
	w.wbuf.Write(payload)
	frame := w.wbuf.Bytes()
	ws.Cipher(frame[off:], h.Mask, 0)
	_, err := w.conn.Write(frame)
	return err
}

func (w *wsConn) close() { w.conn.Close() }
