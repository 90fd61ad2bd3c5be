package testutil

// A concurrent Go client for the chat, used where hundreds or thousands of
// clients are needed at once (slow-consumer, limit and shutdown tests, and the
// soak driver): it connects over either transport and either protocol
// revision, keeps the heartbeat going, emits serverReceiver (with an ack when
// asked) and hands every clientReceiver line to a callback. It builds on the
// wire codec of eioclient.go.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// ChatLine is one clientReceiver event.
type ChatLine struct {
	ClientID int64  `json:"clientID"`
	Message  string `json:"message"`
}

// ChatOptions configures DialChat. The zero value is an Engine.IO 4 client
// over WebSocket.
type ChatOptions struct {
	Protocol  int    // Engine.IO revision, 3 or 4 (default 4)
	Transport string // "websocket" (default) or "polling"
	// Header is added to every request, e.g. an Origin.
	Header http.Header
	// LocalAddr, when set, is the source address of every connection.
	LocalAddr net.IP
	// Control, when set, runs on each socket before it connects, e.g. to
	// shrink its buffers.
	Control func(network, address string, c syscall.RawConn) error
	// HTTP is the client for polling requests. When nil, clients share
	// one whose idle pool fits thousands of them, or, with LocalAddr or
	// Control set, each gets its own.
	HTTP *http.Client
	// OnLine receives each chat line, in order, from the client's reader.
	OnLine func(ChatLine)
	// NoRead stops reading once connected: the client never consumes what
	// the server sends, like a stalled browser tab. It also sends no
	// heartbeat.
	NoRead bool
}

// Reasons a chat client's session ended, from Err.
var (
	// ErrChatClosedByServer: a close packet (polling) or a close frame
	// (WebSocket) arrived.
	ErrChatClosedByServer = errors.New("testutil: chat session closed by the server")
	// ErrChatClosedByClient: Close was called.
	ErrChatClosedByClient = errors.New("testutil: chat session closed by the client")
)

// ChatClient is one connected chat client. Its methods are safe for
// concurrent use.
type ChatClient struct {
	opts     ChatOptions
	endpoint string
	hc       *http.Client
	Open     EIOOpen

	ctx    context.Context // ends when the session ends
	cancel context.CancelFunc

	wmu  sync.Mutex    // serialises WebSocket writes
	conn net.Conn      // WebSocket; nil while polling
	br   *bufio.Reader // reads conn, starting with any bytes read behind the handshake
	buf  []byte        // the last frame's payload, reused by the reader

	mu      sync.Mutex
	out     [][]byte // polling: packets waiting for the next POST
	posting bool
	closing bool // Close sent a close packet
	nextAck int64
	acks    map[int64]func(clientID int64)
	err     error
	done    chan struct{}

	// CloseCode is the status of the server's WebSocket close frame, valid
	// once Done is closed with ErrChatClosedByServer over WebSocket.
	CloseCode ws.StatusCode
}

var sharedChatHTTP = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: 20000,
	IdleConnTimeout:     90 * time.Second,
}}

// DialChat connects a chat client to the server at base (http://host:port)
// and returns once its socket is connected to the namespace "/".
func DialChat(ctx context.Context, base string, opts ChatOptions) (*ChatClient, error) {
	if opts.Protocol == 0 {
		opts.Protocol = 4
	}
	if opts.Transport == "" {
		opts.Transport = "websocket"
	}
	c := &ChatClient{
		opts:     opts,
		endpoint: strings.TrimSuffix(base, "/") + "/socket.io/",
		hc:       opts.HTTP,
		acks:     make(map[int64]func(int64)),
		done:     make(chan struct{}),
	}
	dialer := &net.Dialer{Control: opts.Control}
	if opts.LocalAddr != nil {
		dialer.LocalAddr = &net.TCPAddr{IP: opts.LocalAddr}
	}
	if c.hc == nil {
		c.hc = sharedChatHTTP
		if opts.LocalAddr != nil || opts.Control != nil {
			c.hc = &http.Client{Transport: &http.Transport{DialContext: dialer.DialContext}}
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var err error
	if opts.Transport == "websocket" {
		err = c.connectWS(ctx, dialer)
	} else {
		err = c.connectPolling(ctx)
	}
	if err != nil {
		c.cancel()
		if c.conn != nil {
			c.conn.Close()
		}
		return nil, err
	}
	if opts.NoRead {
		return c, nil
	}
	if opts.Transport == "websocket" {
		go c.readWS()
	} else {
		go c.pollLoop()
	}
	if opts.Protocol == 3 {
		go c.heartbeat()
	}
	return c, nil
}

func (c *ChatClient) connectWS(ctx context.Context, dialer *net.Dialer) error {
	d := ws.Dialer{NetDial: dialer.DialContext}
	if len(c.opts.Header) > 0 {
		d.Header = ws.HandshakeHeaderHTTP(c.opts.Header)
	}
	conn, br, _, err := d.Dial(ctx, WSURL(EIOURL(c.endpoint, c.opts.Protocol, "websocket", "")))
	if err != nil {
		return err
	}
	c.conn = conn
	if br != nil {
		c.br = bufio.NewReaderSize(io.MultiReader(br, conn), 4096)
	} else {
		c.br = bufio.NewReaderSize(conn, 4096)
	}
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
		defer conn.SetReadDeadline(time.Time{})
	}
	open, err := c.readWSPacket()
	if err != nil {
		return fmt.Errorf("chat handshake: %w", err)
	}
	if err := c.parseOpen(open); err != nil {
		return err
	}
	if c.opts.Protocol == 4 {
		if err := c.writeWS([]byte("40")); err != nil {
			return err
		}
	}
	p, err := c.readWSPacket()
	if err != nil {
		return fmt.Errorf("chat connect: %w", err)
	}
	return checkConnected(p)
}

func (c *ChatClient) connectPolling(ctx context.Context) error {
	pkts, err := c.poll(ctx)
	if err != nil {
		return fmt.Errorf("chat handshake: %w", err)
	}
	if len(pkts) == 0 {
		return errors.New("chat handshake: empty response")
	}
	if err := c.parseOpen(pkts[0]); err != nil {
		return err
	}
	if c.opts.Protocol == 4 {
		if err := c.post(ctx, [][]byte{[]byte("40")}); err != nil {
			return err
		}
	}
	// The connect reply may come with lines broadcast right after it;
	// those are delivered like any other.
	for {
		pkts, err := c.poll(ctx)
		if err != nil {
			return fmt.Errorf("chat connect: %w", err)
		}
		for i, p := range pkts {
			if p.Type == '6' {
				continue
			}
			if err := checkConnected(p); err != nil {
				return err
			}
			c.handle(pkts[i+1:])
			return nil
		}
	}
}

func (c *ChatClient) parseOpen(p EIOPacket) error {
	if p.Type != '0' {
		return fmt.Errorf("chat handshake: got %s, want an open packet", p)
	}
	if err := json.Unmarshal(p.Data, &c.Open); err != nil || c.Open.SID == "" {
		return fmt.Errorf("chat handshake: bad open packet %s", p)
	}
	return nil
}

func checkConnected(p EIOPacket) error {
	if p.Type != '4' || !bytes.HasPrefix(p.Data, []byte("0")) || bytes.HasPrefix(p.Data, []byte("0/")) {
		return fmt.Errorf("chat connect: got %s, want a CONNECT reply", p)
	}
	return nil
}

// Err returns why the session ended, or nil while it runs.
func (c *ChatClient) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Done is closed when the session has ended.
func (c *ChatClient) Done() <-chan struct{} { return c.done }

// SID returns the Engine.IO session id.
func (c *ChatClient) SID() string { return c.Open.SID }

// Conn returns the WebSocket connection, or nil over polling.
func (c *ChatClient) Conn() net.Conn { return c.conn }

func (c *ChatClient) end(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.acks = nil
	c.mu.Unlock()
	c.cancel()
	if c.conn != nil {
		c.conn.Close()
	}
	close(c.done)
}

// Close ends the session from the client side: a close frame over
// WebSocket, a close packet over polling (after the POSTs already waiting).
func (c *ChatClient) Close() error {
	if c.conn != nil {
		c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusNormalClosure, "")))
		c.end(ErrChatClosedByClient)
		return nil
	}
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	if c.sendPacket([]byte("1")) == nil {
		// The server answers the pending poll with its own close packet.
		select {
		case <-c.done:
		case <-time.After(5 * time.Second):
		}
	}
	c.end(ErrChatClosedByClient)
	return nil
}

// Send emits serverReceiver with msg.
func (c *ChatClient) Send(msg string) error { return c.emit(msg, nil) }

// SendAck emits serverReceiver with msg and an ack callback, which the
// server calls with the sender's clientID once it has broadcast the line.
func (c *ChatClient) SendAck(msg string, ack func(clientID int64)) error { return c.emit(msg, ack) }

func (c *ChatClient) emit(msg string, ack func(int64)) error {
	arg, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	pkt := make([]byte, 0, len(arg)+40)
	pkt = append(pkt, "42"...)
	if ack != nil {
		c.mu.Lock()
		if c.acks == nil {
			c.mu.Unlock()
			return c.Err()
		}
		id := c.nextAck
		c.nextAck++
		c.acks[id] = ack
		c.mu.Unlock()
		pkt = strconv.AppendInt(pkt, id, 10)
	}
	pkt = append(pkt, `["serverReceiver",`...)
	pkt = append(pkt, arg...)
	pkt = append(pkt, ']')
	return c.sendPacket(pkt)
}

// sendPacket sends one Engine.IO packet in text form.
func (c *ChatClient) sendPacket(pkt []byte) error {
	if err := c.Err(); err != nil {
		return err
	}
	if c.conn != nil {
		return c.writeWS(pkt)
	}
	c.mu.Lock()
	c.out = append(c.out, pkt)
	start := !c.posting
	c.posting = true
	c.mu.Unlock()
	if start {
		go c.flushPosts()
	}
	return nil
}

// flushPosts sends the waiting packets, one POST at a time as the protocol
// requires, batching whatever queued up during the previous POST.
func (c *ChatClient) flushPosts() {
	for {
		c.mu.Lock()
		batch := c.out
		c.out = nil
		if len(batch) == 0 {
			c.posting = false
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()
		if err := c.post(c.ctx, batch); err != nil {
			c.end(err)
			return
		}
	}
}

func (c *ChatClient) writeWS(pkt []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return wsutil.WriteClientText(c.conn, pkt)
}

// readWSPacket reads the next text message. Its Data is valid until the
// next call. Pings are answered; a close frame is answered and reported as
// ErrChatClosedByServer.
func (c *ChatClient) readWSPacket() (EIOPacket, error) {
	msg := c.buf[:0]
	var op ws.OpCode
	for {
		h, err := ws.ReadHeader(c.br)
		if err != nil {
			return EIOPacket{}, err
		}
		if h.Length > maxChatFrame {
			return EIOPacket{}, fmt.Errorf("testutil: %d-byte WebSocket frame", h.Length)
		}
		if h.OpCode.IsControl() {
			payload := make([]byte, h.Length)
			if _, err := io.ReadFull(c.br, payload); err != nil {
				return EIOPacket{}, err
			}
			if h.Masked {
				ws.Cipher(payload, h.Mask, 0)
			}
			switch h.OpCode {
			case ws.OpPing:
				c.writeFrame(ws.NewPongFrame(payload))
			case ws.OpClose:
				code, _ := ws.ParseCloseFrameData(payload)
				c.CloseCode = code
				c.writeFrame(ws.NewCloseFrame(ws.NewCloseFrameBody(code, "")))
				return EIOPacket{}, ErrChatClosedByServer
			}
			continue
		}
		if h.OpCode != ws.OpContinuation {
			op = h.OpCode
		}
		start := len(msg)
		msg = slices.Grow(msg, int(h.Length))[:start+int(h.Length)]
		if _, err := io.ReadFull(c.br, msg[start:]); err != nil {
			return EIOPacket{}, err
		}
		if h.Masked {
			ws.Cipher(msg[start:], h.Mask, 0)
		}
		if !h.Fin {
			continue
		}
		c.buf = msg
		if op != ws.OpText || len(msg) == 0 {
			// The chat sends no binary; skip it.
			msg = msg[:0]
			continue
		}
		return EIOPacket{Type: msg[0], Data: msg[1:]}, nil
	}
}

// maxChatFrame bounds a frame from the server, well above what the chat
// sends.
const maxChatFrame = 16 << 20

func (c *ChatClient) writeFrame(f ws.Frame) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.conn.SetWriteDeadline(time.Now().Add(10 * time.Second))
	return ws.WriteFrame(c.conn, ws.MaskFrame(f))
}

func (c *ChatClient) readWS() {
	for {
		p, err := c.readWSPacket()
		if err != nil {
			c.end(err)
			return
		}
		c.handle([]EIOPacket{p})
	}
}

// Drain reads, for a client dialled with NoRead, everything the server sent
// until the session ends or ctx is done, and returns the number of chat
// lines read and why the session ended.
func (c *ChatClient) Drain(ctx context.Context) (lines int, err error) {
	if c.conn == nil {
		return 0, errors.New("testutil: Drain needs a WebSocket client")
	}
	stop := context.AfterFunc(ctx, func() { c.conn.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		p, err := c.readWSPacket()
		if err != nil {
			c.end(err)
			return lines, err
		}
		if p.Type == '4' && bytes.HasPrefix(p.Data, []byte(`2["clientReceiver",`)) {
			lines++
		}
	}
}

func (c *ChatClient) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

func (c *ChatClient) pollLoop() {
	for {
		pkts, err := c.poll(c.ctx)
		if err != nil {
			if c.isClosing() {
				err = ErrChatClosedByClient
			}
			c.end(err)
			return
		}
		if c.handle(pkts) {
			return
		}
	}
}

// handle processes received packets; it reports whether the session ended.
func (c *ChatClient) handle(pkts []EIOPacket) bool {
	for _, p := range pkts {
		switch p.Type {
		case '1':
			if c.isClosing() {
				c.end(ErrChatClosedByClient)
			} else {
				c.end(ErrChatClosedByServer)
			}
			return true
		case '6':
			// The server answers the poll waiting when the client's own
			// close packet arrives with a noop.
			if c.isClosing() {
				c.end(ErrChatClosedByClient)
				return true
			}
		case '2':
			if c.opts.Protocol == 4 {
				c.sendPacket(append([]byte("3"), p.Data...))
			}
		case '4':
			c.onMessage(p.Data)
		}
	}
	return false
}

var (
	lineEvent = []byte(`2["clientReceiver",`)
	ackPrefix = []byte(`3`)
)

func (c *ChatClient) onMessage(data []byte) {
	switch {
	case bytes.HasPrefix(data, lineEvent):
		line, ok := parsePlainLine(data[len(lineEvent):])
		if !ok {
			body := bytes.TrimSuffix(data[len(lineEvent):], []byte("]"))
			if err := json.Unmarshal(body, &line); err != nil {
				c.end(fmt.Errorf("testutil: bad chat line %q: %w", data, err))
				return
			}
		}
		if c.opts.OnLine != nil {
			c.opts.OnLine(line)
		}
	case bytes.HasPrefix(data, ackPrefix):
		digits := data[1:]
		n := 0
		for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
			n++
		}
		id, err := strconv.ParseInt(string(digits[:n]), 10, 64)
		if err != nil {
			return
		}
		var args []struct {
			ClientID int64 `json:"clientID"`
		}
		if err := json.Unmarshal(digits[n:], &args); err != nil || len(args) != 1 {
			c.end(fmt.Errorf("testutil: bad ack %q", data))
			return
		}
		c.mu.Lock()
		fn := c.acks[id]
		delete(c.acks, id)
		c.mu.Unlock()
		if fn != nil {
			fn(args[0].ClientID)
		}
	}
}

// parsePlainLine reads `{"clientID":N,"message":"..."}]` as the server
// writes it, when the message needs no unescaping: thousands of clients each
// receiving every line make this the client's hot path.
func parsePlainLine(b []byte) (ChatLine, bool) {
	b, ok := bytes.CutPrefix(b, []byte(`{"clientID":`))
	if !ok {
		return ChatLine{}, false
	}
	comma := bytes.IndexByte(b, ',')
	if comma < 1 {
		return ChatLine{}, false
	}
	var id int64
	for _, d := range b[:comma] {
		if d < '0' || d > '9' {
			return ChatLine{}, false
		}
		id = id*10 + int64(d-'0')
	}
	msg, ok := bytes.CutPrefix(b[comma:], []byte(`,"message":"`))
	if !ok {
		return ChatLine{}, false
	}
	msg, ok = bytes.CutSuffix(msg, []byte(`"}]`))
	if !ok || bytes.IndexByte(msg, '\\') >= 0 || bytes.IndexByte(msg, '"') >= 0 {
		return ChatLine{}, false
	}
	return ChatLine{ClientID: id, Message: string(msg)}, true
}

// heartbeat sends the client's pings of revision 3.
func (c *ChatClient) heartbeat() {
	t := time.NewTicker(time.Duration(c.Open.PingInterval) * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-t.C:
			c.sendPacket([]byte("2"))
		}
	}
}

func (c *ChatClient) request(ctx context.Context, method string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, EIOURL(c.endpoint, c.opts.Protocol, "polling", c.Open.SID), bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return resp, b, fmt.Errorf("testutil: %s %s: %s", method, resp.Status, bytes.TrimSpace(b))
	}
	return resp, b, nil
}

func (c *ChatClient) poll(ctx context.Context) ([]EIOPacket, error) {
	resp, body, err := c.request(ctx, http.MethodGet, nil)
	if err != nil {
		return nil, err
	}
	return DecodeEIOPayload(c.opts.Protocol, resp.Header.Get("Content-Type"), body)
}

func (c *ChatClient) post(ctx context.Context, pkts [][]byte) error {
	eio := make([]EIOPacket, len(pkts))
	for i, p := range pkts {
		eio[i] = EIOPacket{Type: p[0], Data: p[1:]}
	}
	_, _, err := c.request(ctx, http.MethodPost, EncodeEIOPayload(c.opts.Protocol, eio))
	return err
}
