package eioclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"siogo/internal/eioparser"
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
	Transport string // "websocket" (default) or "polling", which Upgrade can leave for WebSocket
	Path      string // the Socket.IO endpoint (default "/socket.io/")
	// Header is added to every request, e.g. an Origin.
	Header http.Header
	// LocalAddr, when set, is the source address of every connection.
	LocalAddr net.IP
	// Control, when set, runs on each socket before it connects, e.g. to
	// shrink its buffers.
	Control func(network, address string, c syscall.RawConn) error
	// NetDial, when set, opens every connection in place of LocalAddr and
	// Control.
	NetDial func(ctx context.Context, network, addr string) (net.Conn, error)
	// HTTP is the client for polling requests. When nil, clients share
	// one whose idle pool fits thousands of them, or, with LocalAddr,
	// Control or NetDial set, each gets its own.
	HTTP *http.Client
	// ReadBufferSize is the WebSocket read buffer in bytes (default 4096).
	// A larger one takes in a whole batch of frames per read.
	ReadBufferSize int
	// Deflate offers the server permessage-deflate over WebSocket, without
	// context takeover. When the server agrees (see ChatClient.Deflate),
	// compressed messages from it are inflated, and messages of 1 KiB or
	// more are sent compressed, as socket.io-client on Node.js does.
	Deflate bool
	// OnLine receives each chat line, in order, from the client's reader.
	OnLine func(ChatLine)
	// OnMessage, when set, receives instead every Socket.IO packet that
	// follows the connection, e.g. `2["clientReceiver",{...}]`, from the
	// client's reader; OnLine and acknowledgements are then left to it.
	// msg is only valid during the call. An error ends the session.
	OnMessage func(msg []byte) error
	// OnEnd, when set, is called once when the session ends, with the
	// reason Err then returns.
	OnEnd func(err error)
	// NoRead stops reading once connected: the client never consumes what
	// the server sends, like a stalled browser tab. It also sends no
	// heartbeat.
	NoRead bool
	// Auth is the CONNECT packet's auth payload (Engine.IO 4 only); nil
	// sends none.
	Auth map[string]any
}

// Reasons a chat client's session ended, from Err.
var (
	// ErrChatClosedByServer: a close packet (polling) or a close frame
	// (WebSocket) arrived.
	ErrChatClosedByServer = errors.New("eioclient: chat session closed by the server")
	// ErrChatClosedByClient: Close was called.
	ErrChatClosedByClient = errors.New("eioclient: chat session closed by the client")
)

// ChatClient is one connected chat client: it keeps the heartbeat going,
// emits serverReceiver (with an ack when asked) and hands every
// clientReceiver line to a callback. Its methods are safe for concurrent
// use.
type ChatClient struct {
	opts     ChatOptions
	endpoint string
	pollURL  string
	hc       *http.Client
	Open     Open

	ctx    context.Context // ends when the session ends
	cancel context.CancelFunc

	ws        *WSConn            // nil over polling
	connected bool               // the CONNECT reply arrived; the reader's own
	getBuf    []byte             // the last GET's body, reused by the reader
	got       []eioparser.Packet // the last GET's packets, reused by the reader
	postBuf   []byte             // the last POST's answer, reused by the poster
	posted    postBatch

	// Connection-state recovery, set while connecting.
	socketID  string       // from the CONNECT reply (Engine.IO 4)
	pid       string       // the reply's private session id, "" without recovery
	resume    *resumeState // the session Reconnect asks to recover
	recovered bool

	mu      sync.Mutex
	out     postBatch // polling: packets waiting for the next POST
	posting bool
	closing bool // Close sent a close packet
	nextAck int64
	acks    map[int64]func(clientID int64)
	err     error
	done    chan struct{}
	// readerDone is closed once the reader has handed over its last packet,
	// which may come after done when the session ended elsewhere (a failed
	// POST) while the reader was going through a poll's packets.
	readerDone chan struct{}

	offsetMu sync.Mutex
	offset   []byte // the last event's offset, when it had one

	// The move from polling to WebSocket (Upgrade).
	netDial func(ctx context.Context, network, addr string) (net.Conn, error)
	ownHTTP bool         // hc was made for this client alone
	upgrade upgradeState // under mu

	// CloseCode is the status of the server's WebSocket close frame, valid
	// once Done is closed with ErrChatClosedByServer over WebSocket.
	CloseCode ws.StatusCode
}

// postBatch holds the text packets of one POST. Once its buffers have
// grown it takes packets and encodes them without allocating.
type postBatch struct {
	data []byte // the packets, one after another
	ends []int  // where each packet ends in data
	pkts []eioparser.Packet
	body []byte
}

func (b *postBatch) add(pkt []byte) {
	b.data = append(b.data, pkt...)
	b.ends = append(b.ends, len(b.data))
}

func (b *postBatch) empty() bool { return len(b.ends) == 0 }

// encode returns the payload; it is valid until the next encode.
func (b *postBatch) encode(protocol int) []byte {
	b.pkts = b.pkts[:0]
	start := 0
	for _, end := range b.ends {
		b.pkts = append(b.pkts, toParser(Packet{Type: b.data[start], Data: b.data[start+1 : end]}))
		start = end
	}
	b.body = appendPayload(protocol, b.body[:0], b.pkts)
	b.data, b.ends = b.data[:0], b.ends[:0]
	return b.body
}

var sharedChatHTTP = &http.Client{Transport: &http.Transport{
	MaxIdleConnsPerHost: 20000,
	IdleConnTimeout:     90 * time.Second,
}}

// DialChat connects a chat client to the server at base (http://host:port)
// and returns once its socket is connected to the namespace "/".
func DialChat(ctx context.Context, base string, opts ChatOptions) (*ChatClient, error) {
	return dialChat(ctx, base, opts, nil)
}

// Reconnect connects a new chat client with c's options to base, the same
// server or another node of its cluster, as socket.io-client 4.6+ does after
// losing its connection: when the server gave c a private session id (the
// server has connection-state recovery on), the CONNECT packet carries it
// with the offset of the last event c received, and Recovered tells whether
// the server restored c's socket, id and rooms, with the events c missed
// delivered first, in order. Engine.IO 3 clients cannot recover; they
// connect afresh. c must have ended (Done is closed); Reconnect waits for
// its reader to hand over what it was still holding, so the offset it
// presents is that of the last event c delivered. c's pending
// acknowledgements are not carried over.
func (c *ChatClient) Reconnect(ctx context.Context, base string) (*ChatClient, error) {
	if c.Err() == nil {
		return nil, errors.New("eioclient: Reconnect of a session that has not ended")
	}
	select {
	case <-c.readerDone:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return dialChat(ctx, base, c.opts, &resumeState{socketID: c.socketID, pid: c.pid, offset: c.Offset()})
}

// resumeState is what a reconnecting client presents of its last session.
type resumeState struct {
	socketID, pid, offset string
}

func dialChat(ctx context.Context, base string, opts ChatOptions, resume *resumeState) (*ChatClient, error) {
	if opts.Protocol == 0 {
		opts.Protocol = 4
	}
	if opts.Transport == "" {
		opts.Transport = "websocket"
	}
	if opts.Path == "" {
		opts.Path = "/socket.io/"
	}
	c := &ChatClient{
		opts:       opts,
		endpoint:   strings.TrimSuffix(base, "/") + opts.Path,
		hc:         opts.HTTP,
		acks:       make(map[int64]func(int64)),
		done:       make(chan struct{}),
		readerDone: make(chan struct{}),
		resume:     resume,
	}
	netDial := opts.NetDial
	if netDial == nil {
		d := &net.Dialer{Control: opts.Control}
		if opts.LocalAddr != nil {
			d.LocalAddr = &net.TCPAddr{IP: opts.LocalAddr}
		}
		netDial = d.DialContext
	}
	c.netDial = netDial
	if c.hc == nil {
		c.hc = sharedChatHTTP
		if opts.LocalAddr != nil || opts.Control != nil || opts.NetDial != nil {
			c.hc = &http.Client{Transport: &http.Transport{DialContext: netDial}}
			c.ownHTTP = true
		}
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	var err error
	if opts.Transport == "websocket" {
		err = c.connectWS(ctx, netDial)
	} else {
		err = c.connectPolling(ctx)
	}
	if err != nil {
		c.cancel()
		if c.ws != nil {
			c.ws.Close()
		}
		return nil, err
	}
	if opts.NoRead {
		close(c.readerDone)
		return c, nil
	}
	if opts.Transport == "websocket" {
		go c.readWS(c.ws)
	} else {
		go c.pollLoop()
	}
	if opts.Protocol == 3 && c.Open.PingInterval > 0 {
		go c.heartbeat()
	}
	return c, nil
}

func (c *ChatClient) connectWS(ctx context.Context, netDial func(context.Context, string, string) (net.Conn, error)) error {
	conn, err := dialWS(ctx, WSURL(URL(c.endpoint, c.opts.Protocol, "websocket", "")), wsOptions{
		netDial: netDial, header: c.opts.Header, readBuffer: c.opts.ReadBufferSize, writeTimeout: 10 * time.Second,
		deflate: c.opts.Deflate,
	})
	if err != nil {
		return err
	}
	c.ws = conn
	if d, ok := ctx.Deadline(); ok {
		conn.SetReadDeadline(d)
		defer conn.SetReadDeadline(time.Time{})
	}
	p, err := c.readWSPacket()
	if err != nil {
		return fmt.Errorf("chat handshake: %w", err)
	}
	if c.Open, err = ParseOpen(p); err != nil {
		return fmt.Errorf("chat handshake: %w", err)
	}
	if c.opts.Protocol == 4 {
		if err := conn.WriteText(append([]byte("4"), c.connectPacket()...)); err != nil {
			return err
		}
	}
	for !c.connected {
		p, err := c.readWSPacket()
		if err == nil {
			err = c.handle(p)
		}
		if err != nil {
			return fmt.Errorf("chat connect: %w", err)
		}
	}
	return nil
}

func (c *ChatClient) connectPolling(ctx context.Context) error {
	ct, body, err := c.request(ctx, http.MethodGet, URL(c.endpoint, c.opts.Protocol, "polling", ""), nil, &c.getBuf)
	if err != nil {
		return fmt.Errorf("chat handshake: %w", err)
	}
	pkts, err := appendDecodePayload(nil, c.opts.Protocol, ct, body)
	if err != nil {
		return fmt.Errorf("chat handshake: %w", err)
	}
	if c.Open, err = ParseOpen(fromParser(pkts[0])); err != nil {
		return fmt.Errorf("chat handshake: %w", err)
	}
	c.pollURL = URL(c.endpoint, c.opts.Protocol, "polling", c.Open.SID)
	// The server may join revision 3 to "/" in the handshake response.
	for _, p := range pkts[1:] {
		if err := c.handle(fromParser(p)); err != nil {
			return fmt.Errorf("chat connect: %w", err)
		}
	}
	if c.opts.Protocol == 4 {
		var answer []byte
		connect := []eioparser.Packet{{Type: eioparser.PacketMessage, Data: c.connectPacket()}}
		if _, _, err := c.request(ctx, http.MethodPost, c.pollURL, appendPayload(4, nil, connect), &answer); err != nil {
			return fmt.Errorf("chat connect: %w", err)
		}
	}
	for !c.connected {
		if err := c.poll(ctx); err != nil {
			return fmt.Errorf("chat connect: %w", err)
		}
	}
	return nil
}

// connectPacket is the Socket.IO CONNECT packet to "/": "0", followed by
// the auth payload when there is one. A client reconnecting after a session
// with a pid adds the pid and its last offset, as socket.io-client does.
func (c *ChatClient) connectPacket() []byte {
	auth := c.opts.Auth
	if r := c.resume; r != nil && r.pid != "" {
		auth = make(map[string]any, len(c.opts.Auth)+2)
		for k, v := range c.opts.Auth {
			auth[k] = v
		}
		auth["pid"] = r.pid
		if r.offset != "" {
			auth["offset"] = r.offset
		}
	}
	if len(auth) == 0 {
		return []byte("0")
	}
	b, err := json.Marshal(auth)
	if err != nil {
		// Auth holds something JSON cannot encode: send none rather than
		// a malformed packet.
		return []byte("0")
	}
	return append([]byte("0"), b...)
}

// SocketID returns the Socket.IO socket id from the CONNECT reply, or ""
// for Engine.IO 3, whose reply carries none.
func (c *ChatClient) SocketID() string { return c.socketID }

// PID returns the private session id from the CONNECT reply, "" when the
// server does not offer connection-state recovery.
func (c *ChatClient) PID() string { return c.pid }

// Offset returns the offset of the last event received that carried one
// (its last argument, when a string), "" before any.
func (c *ChatClient) Offset() string {
	c.offsetMu.Lock()
	defer c.offsetMu.Unlock()
	return string(c.offset)
}

// Recovered reports whether the server restored the session of the client
// Reconnect was called on: the CONNECT reply carried its socket id and pid.
func (c *ChatClient) Recovered() bool { return c.recovered }

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

// Deflate reports whether the server agreed to permessage-deflate; it is
// false over polling.
func (c *ChatClient) Deflate() bool { return c.ws != nil && c.ws.Deflate() }

// Conn returns the WebSocket connection, or nil over polling.
func (c *ChatClient) Conn() net.Conn {
	if ws := c.webSocket(); ws != nil {
		return ws.Conn
	}
	return nil
}

// webSocket returns the session's WebSocket: the one it was dialled with,
// or the one it upgraded to; nil over polling.
func (c *ChatClient) webSocket() *WSConn {
	if c.ws != nil {
		return c.ws
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.upgrade.done
}

func (c *ChatClient) end(err error) {
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return
	}
	c.err = err
	c.acks = nil
	upgraded := c.upgrade.done
	c.mu.Unlock()
	c.cancel()
	if c.ws != nil {
		c.ws.Close()
	}
	if upgraded != nil {
		upgraded.Close()
	}
	close(c.done)
	if c.opts.OnEnd != nil {
		c.opts.OnEnd(err)
	}
}

// Close ends the session from the client side: a close frame over
// WebSocket, a close packet over polling (after the POSTs already waiting).
func (c *ChatClient) Close() error {
	if conn := c.webSocket(); conn != nil {
		conn.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
		c.end(ErrChatClosedByClient)
		return nil
	}
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	if c.SendPacket([]byte("1")) == nil {
		// The server answers the pending poll with its own close packet.
		t := time.NewTimer(5 * time.Second)
		select {
		case <-c.done:
		case <-t.C:
		}
		t.Stop()
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
	return c.SendPacket(pkt)
}

// SendPacket sends one Engine.IO packet in its text form, e.g.
// `42["serverReceiver","hi"]`: a frame over WebSocket, or the next POST
// over polling, which carries every packet queued while the previous one
// was under way. pkt may be reused once SendPacket returns.
func (c *ChatClient) SendPacket(pkt []byte) error {
	if err := c.Err(); err != nil {
		return err
	}
	if c.ws != nil {
		return c.ws.WriteText(pkt)
	}
	c.mu.Lock()
	if conn := c.upgrade.done; conn != nil {
		c.mu.Unlock()
		return conn.WriteText(pkt)
	}
	c.out.add(pkt)
	// While upgrading, packets wait for the WebSocket.
	start := !c.posting && !c.upgrade.holding
	c.posting = c.posting || start
	c.mu.Unlock()
	if start {
		go c.flushPosts()
	}
	return nil
}

// flushPosts sends the waiting packets, one POST at a time as the protocol
// requires. Packets sent meanwhile go into the other batch, so the body
// being posted is never written to.
func (c *ChatClient) flushPosts() {
	for {
		c.mu.Lock()
		if c.out.empty() || c.upgrade.holding {
			c.posting = false
			c.upgrade.postsIdleLocked()
			c.mu.Unlock()
			return
		}
		c.out, c.posted = c.posted, c.out
		c.mu.Unlock()
		body := c.posted.encode(c.opts.Protocol)
		if _, _, err := c.request(c.ctx, http.MethodPost, c.pollURL, body, &c.postBuf); err != nil {
			c.end(err)
			return
		}
	}
}

// readWSPacket reads the next text message. Its Data is valid until the
// next call. A close frame is reported as ErrChatClosedByServer.
func (c *ChatClient) readWSPacket() (Packet, error) { return c.readPacketFrom(c.ws) }

// readPacketFrom is readWSPacket on conn.
func (c *ChatClient) readPacketFrom(conn *WSConn) (Packet, error) {
	for {
		op, msg, err := conn.NextMessage()
		if err != nil {
			var closed wsutil.ClosedError
			if errors.As(err, &closed) {
				c.CloseCode = closed.Code
				return Packet{}, ErrChatClosedByServer
			}
			return Packet{}, err
		}
		if op == ws.OpText && len(msg) > 0 {
			return Packet{Type: msg[0], Data: msg[1:]}, nil
		}
		// The chat sends no binary; skip it.
	}
}

func (c *ChatClient) readWS(conn *WSConn) {
	defer close(c.readerDone)
	for {
		p, err := c.readPacketFrom(conn)
		if err == nil {
			err = c.handle(p)
		}
		if err != nil {
			c.end(err)
			return
		}
	}
}

// Drain reads, for a client dialled with NoRead, everything the server sent
// until the session ends or ctx is done, and returns the number of chat
// lines read and why the session ended.
func (c *ChatClient) Drain(ctx context.Context) (lines int, err error) {
	if c.ws == nil {
		return 0, errors.New("eioclient: Drain needs a WebSocket client")
	}
	stop := context.AfterFunc(ctx, func() { c.ws.SetReadDeadline(time.Now()) })
	defer stop()
	for {
		p, err := c.readWSPacket()
		if err != nil {
			c.end(err)
			return lines, err
		}
		if p.Type == '4' && bytes.HasPrefix(p.Data, lineEvent) {
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
		if err := c.poll(c.ctx); err != nil {
			c.end(err)
			close(c.readerDone)
			return
		}
		// An upgrade takes over the reading; readerDone is then the
		// WebSocket reader's to close.
		c.mu.Lock()
		paused := c.upgrade.pausePolling
		c.mu.Unlock()
		if paused != nil {
			close(paused)
			return
		}
	}
}

// poll performs one GET and handles what it brings.
func (c *ChatClient) poll(ctx context.Context) error {
	ct, body, err := c.request(ctx, http.MethodGet, c.pollURL, nil, &c.getBuf)
	if err != nil {
		if c.isClosing() {
			return ErrChatClosedByClient
		}
		return err
	}
	c.got, err = appendDecodePayload(c.got[:0], c.opts.Protocol, ct, body)
	if err != nil {
		return err
	}
	for _, p := range c.got {
		if err := c.handle(fromParser(p)); err != nil {
			return err
		}
	}
	return nil
}

// handle processes one received packet; an error ends the session.
func (c *ChatClient) handle(p Packet) error {
	switch p.Type {
	case '1':
		if c.isClosing() {
			return ErrChatClosedByClient
		}
		return ErrChatClosedByServer
	case '6':
		// The server answers the poll waiting when the client's own
		// close packet arrives with a noop.
		if c.isClosing() {
			return ErrChatClosedByClient
		}
	case '2':
		if c.opts.Protocol == 4 {
			return c.SendPacket(append([]byte("3"), p.Data...))
		}
	case '4':
		if !c.connected {
			if p.Binary || !bytes.HasPrefix(p.Data, []byte("0")) || bytes.HasPrefix(p.Data, []byte("0/")) {
				return fmt.Errorf("got %s, want a CONNECT reply", p)
			}
			if len(p.Data) > 1 {
				var reply struct {
					SID string `json:"sid"`
					PID string `json:"pid"`
				}
				if err := json.Unmarshal(p.Data[1:], &reply); err != nil {
					return fmt.Errorf("bad CONNECT reply %s: %w", p, err)
				}
				c.socketID, c.pid = reply.SID, reply.PID
				if r := c.resume; r != nil {
					c.recovered = r.pid != "" && c.pid == r.pid && c.socketID == r.socketID
				}
			}
			c.connected = true
			return nil
		}
		if p.Binary {
			return nil
		}
		if c.opts.OnMessage != nil {
			return c.opts.OnMessage(p.Data)
		}
		return c.onMessage(p.Data)
	}
	return nil
}

var (
	lineEvent = []byte(`2["clientReceiver",`)
	ackPrefix = []byte(`3`)
)

func (c *ChatClient) onMessage(data []byte) error {
	switch {
	case bytes.HasPrefix(data, lineEvent):
		line, err := c.parseLine(data)
		if err != nil {
			return err
		}
		if c.opts.OnLine != nil {
			c.opts.OnLine(line)
		}
	case len(data) > 0 && data[0] == '2':
		// Another event: only its offset matters.
		if head, off, found, escaped := lastStringArg(data); found && len(head) > 2 {
			if escaped {
				var s string
				if json.Unmarshal(off, &s) != nil {
					return fmt.Errorf("eioclient: bad event %q", data)
				}
				off = []byte(s)
			}
			c.setOffset(off)
		}
	case bytes.HasPrefix(data, ackPrefix):
		digits := data[1:]
		n := 0
		for n < len(digits) && digits[n] >= '0' && digits[n] <= '9' {
			n++
		}
		id, err := strconv.ParseInt(string(digits[:n]), 10, 64)
		if err != nil {
			return nil
		}
		var args []struct {
			ClientID int64 `json:"clientID"`
		}
		if err := json.Unmarshal(digits[n:], &args); err != nil || len(args) != 1 {
			return fmt.Errorf("eioclient: bad ack %q", data)
		}
		c.mu.Lock()
		fn := c.acks[id]
		delete(c.acks, id)
		c.mu.Unlock()
		if fn != nil {
			fn(args[0].ClientID)
		}
	}
	return nil
}

// parseLine reads a clientReceiver event, `2["clientReceiver",{...}]`, or
// `2["clientReceiver",{...},"offset"]` from a server with connection-state
// recovery, and keeps the offset.
func (c *ChatClient) parseLine(data []byte) (ChatLine, error) {
	var line ChatLine
	head, off, found, escaped := lastStringArg(data)
	if escaped {
		// Escapes in the last argument: let encoding/json read it all.
		var args []json.RawMessage
		var s string
		if json.Unmarshal(data[1:], &args) != nil || len(args) != 3 ||
			json.Unmarshal(args[1], &line) != nil || json.Unmarshal(args[2], &s) != nil {
			return line, fmt.Errorf("eioclient: bad chat line %q", data)
		}
		c.setOffset([]byte(s))
		return line, nil
	}
	body := bytes.TrimSuffix(data, []byte("]"))
	if found {
		body = head
		c.setOffset(off)
	}
	if len(body) < len(lineEvent) {
		return line, fmt.Errorf("eioclient: bad chat line %q", data)
	}
	body = body[len(lineEvent):]
	line, ok := parsePlainLine(body)
	if !ok {
		if err := json.Unmarshal(body, &line); err != nil {
			return line, fmt.Errorf("eioclient: bad chat line %q: %w", data, err)
		}
	}
	return line, nil
}

// setOffset keeps off as the client's offset, when the server gave it a
// pid: only then does the last string argument of an event mean an offset.
func (c *ChatClient) setOffset(off []byte) {
	if c.pid == "" {
		return
	}
	c.offsetMu.Lock()
	c.offset = append(c.offset[:0], off...)
	c.offsetMu.Unlock()
}

// lastStringArg finds the last argument of an event packet's array when it
// is a string and not the only element: head is the packet up to the comma
// before it, s the string's JSON body without its quotes. When the string
// holds a backslash, escaped is true and s is the quoted JSON string, for
// the caller to decode. Offsets hold no escapes, so the common case is a
// short scan back from the end.
func lastStringArg(data []byte) (head, s []byte, found, escaped bool) {
	n := len(data)
	if n < 4 || data[n-1] != ']' || data[n-2] != '"' {
		return nil, nil, false, false
	}
	i := n - 3
	for i >= 0 && data[i] != '"' {
		if data[i] == '\\' {
			escaped = true
		}
		i--
	}
	switch {
	case i < 1:
		return nil, nil, false, false
	case data[i-1] == '\\':
		// An escaped quote inside the string: find its real start.
		escaped = true
		i = openingQuote(data[:n-2])
		if i < 1 {
			return nil, nil, false, false
		}
	}
	if data[i-1] != ',' {
		return nil, nil, false, false
	}
	if escaped {
		return data[:i-1], data[i : n-1], true, true
	}
	return data[:i-1], data[i+1 : n-2], true, false
}

// openingQuote returns the index of the quote that opens the JSON string
// ending at the end of b (after its closing quote was cut), or -1.
func openingQuote(b []byte) int {
	for i := len(b) - 1; i >= 0; i-- {
		if b[i] != '"' {
			continue
		}
		// A quote preceded by an odd number of backslashes is escaped.
		bs := 0
		for j := i - 1; j >= 0 && b[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return i
		}
	}
	return -1
}

// parsePlainLine reads `{"clientID":N,"message":"..."}` as the server
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
	msg, ok = bytes.CutSuffix(msg, []byte(`"}`))
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
			c.SendPacket([]byte("2"))
		}
	}
}

// request performs one polling request and reads the answer into *buf,
// reusing its storage. It returns the answer's content type and body.
func (c *ChatClient) request(ctx context.Context, method, u string, body []byte, buf *[]byte) (string, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return "", nil, err
	}
	for k, v := range c.opts.Header {
		req.Header[k] = v
	}
	if method == http.MethodPost {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", nil, err
	}
	defer resp.Body.Close()
	b := bytes.NewBuffer((*buf)[:0])
	_, err = b.ReadFrom(resp.Body)
	*buf = b.Bytes()
	if err != nil {
		return "", nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return "", nil, fmt.Errorf("eioclient: %s %s: %s", method, resp.Status, bytes.TrimSpace(*buf))
	}
	return resp.Header.Get("Content-Type"), *buf, nil
}
