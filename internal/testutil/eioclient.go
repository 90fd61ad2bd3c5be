package testutil

// A hand-written Engine.IO client for wire-level tests. It speaks revisions 3
// and 4 over long-polling and WebSocket, shows every packet as it travels,
// and lets a test send exactly the bytes it wants, malformed ones included.
// Its payload codec is written independently of the server's, so the two
// check each other.

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// EIOPacket is one Engine.IO packet as the client sees it. Type is the
// packet type as a digit ('0' open … '6' noop); binary packets are always
// messages.
type EIOPacket struct {
	Type   byte
	Data   []byte
	Binary bool
}

func (p EIOPacket) String() string {
	if p.Binary {
		return fmt.Sprintf("binary(% x)", p.Data)
	}
	return strconv.Quote(string(p.Type) + string(p.Data))
}

// Text returns the text form "<type><data>".
func (p EIOPacket) Text() string { return string(p.Type) + string(p.Data) }

// EIOOpen is the handshake (open packet) data.
type EIOOpen struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// ErrEIOClosed is returned once the server has sent a close packet or closed
// the WebSocket.
var ErrEIOClosed = errors.New("testutil: engine.io session closed by the server")

// EIOClient is one Engine.IO session.
type EIOClient struct {
	Endpoint  string // e.g. http://127.0.0.1:1234/socket.io/
	Protocol  int    // 3 or 4
	Transport string // "polling" or "websocket", the transport in use
	Open      EIOOpen
	HTTP      *http.Client

	ws      *WSConn
	pending []EIOPacket
}

// SID returns the session id.
func (c *EIOClient) SID() string { return c.Open.SID }

// EIOURL returns endpoint with the Engine.IO query: EIO, transport, and sid
// when non-empty.
func EIOURL(endpoint string, protocol int, transport, sid string) string {
	q := url.Values{"EIO": {strconv.Itoa(protocol)}, "transport": {transport}}
	if sid != "" {
		q.Set("sid", sid)
	}
	return endpoint + "?" + q.Encode()
}

// WSURL turns an http:// URL into its ws:// form.
func WSURL(u string) string {
	if rest, ok := strings.CutPrefix(u, "http"); ok {
		return "ws" + rest
	}
	return u
}

// DialEIO performs the handshake over the given transport. hc may be nil for
// http.DefaultClient.
func DialEIO(ctx context.Context, endpoint string, protocol int, transport string, hc *http.Client) (*EIOClient, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &EIOClient{Endpoint: endpoint, Protocol: protocol, Transport: transport, HTTP: hc}
	var first []EIOPacket
	switch transport {
	case "polling":
		resp, body, err := c.do(ctx, http.MethodGet, EIOURL(endpoint, protocol, transport, ""), "", nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("handshake: %s: %s", resp.Status, body)
		}
		first, err = DecodeEIOPayload(protocol, resp.Header.Get("Content-Type"), body)
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
	case "websocket":
		conn, err := DialWS(ctx, WSURL(EIOURL(endpoint, protocol, transport, "")))
		if err != nil {
			return nil, err
		}
		c.ws = conn
		p, err := c.readWS(ctx)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		first = []EIOPacket{p}
	default:
		return nil, fmt.Errorf("unknown transport %q", transport)
	}
	if len(first) == 0 || first[0].Type != '0' {
		return nil, fmt.Errorf("handshake: first packets %v, want an open packet", first)
	}
	if err := json.Unmarshal(first[0].Data, &c.Open); err != nil || c.Open.SID == "" {
		return nil, fmt.Errorf("handshake: bad open packet %s", first[0])
	}
	c.pending = first[1:]
	return c, nil
}

// do sends one HTTP request and reads the whole response.
func (c *EIOClient) do(ctx context.Context, method, u, contentType string, body []byte) (*http.Response, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp, b, err
}

// PollURL is the session's polling URL.
func (c *EIOClient) PollURL() string { return EIOURL(c.Endpoint, c.Protocol, "polling", c.Open.SID) }

// Get performs one raw polling GET for the session.
func (c *EIOClient) Get(ctx context.Context) (*http.Response, []byte, error) {
	return c.do(ctx, http.MethodGet, c.PollURL(), "", nil)
}

// Post performs one raw polling POST for the session.
func (c *EIOClient) Post(ctx context.Context, contentType string, body []byte) (*http.Response, []byte, error) {
	if contentType == "" {
		contentType = "text/plain;charset=UTF-8"
	}
	return c.do(ctx, http.MethodPost, c.PollURL(), contentType, body)
}

// Send sends text packets ("<type><data>" each): one POST holding all of
// them over polling, one frame per packet over WebSocket.
func (c *EIOClient) Send(ctx context.Context, packets ...string) error {
	pkts := make([]EIOPacket, len(packets))
	for i, s := range packets {
		if s == "" {
			return errors.New("empty packet")
		}
		pkts[i] = EIOPacket{Type: s[0], Data: []byte(s[1:])}
	}
	return c.SendPackets(ctx, pkts...)
}

// SendPackets sends packets, text or binary, in one POST or as one frame
// each.
func (c *EIOClient) SendPackets(ctx context.Context, pkts ...EIOPacket) error {
	if c.Transport == "websocket" {
		for _, p := range pkts {
			var err error
			switch {
			case p.Binary && c.Protocol == 3:
				err = c.ws.WriteBinary(append([]byte{4}, p.Data...))
			case p.Binary:
				err = c.ws.WriteBinary(p.Data)
			default:
				err = c.ws.WriteText([]byte(p.Text()))
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	resp, body, err := c.Post(ctx, "", EncodeEIOPayload(c.Protocol, pkts))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return fmt.Errorf("POST: %s: %s", resp.Status, body)
	}
	return nil
}

// Recv returns the next batch of packets: one polling GET, or one frame.
// It returns ErrEIOClosed after a close packet or a WebSocket close.
func (c *EIOClient) Recv(ctx context.Context) ([]EIOPacket, error) {
	if len(c.pending) > 0 {
		p := c.pending
		c.pending = nil
		return p, nil
	}
	if c.Transport == "websocket" {
		p, err := c.readWS(ctx)
		if err != nil {
			return nil, err
		}
		return []EIOPacket{p}, nil
	}
	resp, body, err := c.Get(ctx)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET: %s: %s", resp.Status, body)
	}
	return DecodeEIOPayload(c.Protocol, resp.Header.Get("Content-Type"), body)
}

// Next returns the next message packet, answering the server's pings
// (revision 4) and skipping noops and pongs on the way. A close packet ends
// the session with ErrEIOClosed.
func (c *EIOClient) Next(ctx context.Context) (EIOPacket, error) {
	for {
		for len(c.pending) > 0 {
			p := c.pending[0]
			c.pending = c.pending[1:]
			switch p.Type {
			case '4':
				return p, nil
			case '1':
				return EIOPacket{}, ErrEIOClosed
			case '2':
				if c.Protocol == 4 {
					if err := c.Send(ctx, "3"+string(p.Data)); err != nil {
						return EIOPacket{}, err
					}
				}
			}
		}
		batch, err := c.Recv(ctx)
		if err != nil {
			return EIOPacket{}, err
		}
		c.pending = batch
	}
}

// Upgrade moves a polling session to WebSocket: probe, then upgrade. No GET
// may be pending.
func (c *EIOClient) Upgrade(ctx context.Context) error {
	conn, err := DialWS(ctx, WSURL(EIOURL(c.Endpoint, c.Protocol, "websocket", c.Open.SID)))
	if err != nil {
		return err
	}
	if err := conn.WriteText([]byte("2probe")); err != nil {
		conn.Close()
		return err
	}
	c.ws = conn
	p, err := c.readWS(ctx)
	if err != nil || p.Text() != "3probe" {
		conn.Close()
		c.ws = nil
		return fmt.Errorf("upgrade: got %v (%v), want 3probe", p, err)
	}
	if err := conn.WriteText([]byte("5")); err != nil {
		return err
	}
	c.Transport = "websocket"
	return nil
}

// WS returns the WebSocket of the session, or nil while it polls.
func (c *EIOClient) WS() *WSConn { return c.ws }

func (c *EIOClient) readWS(ctx context.Context) (EIOPacket, error) {
	op, data, err := c.ws.ReadMessage(ctx)
	if err != nil {
		var closed wsutil.ClosedError
		if errors.As(err, &closed) || errors.Is(err, io.EOF) {
			return EIOPacket{}, fmt.Errorf("%w (%v)", ErrEIOClosed, err)
		}
		return EIOPacket{}, err
	}
	if op == ws.OpBinary {
		if c.Protocol == 3 {
			if len(data) == 0 || data[0] != 4 {
				return EIOPacket{}, fmt.Errorf("binary frame % x is not a message", data)
			}
			data = data[1:]
		}
		return EIOPacket{Type: '4', Data: data, Binary: true}, nil
	}
	if len(data) == 0 {
		return EIOPacket{}, errors.New("empty text frame")
	}
	return EIOPacket{Type: data[0], Data: data[1:]}, nil
}

// Close ends the session: a close packet over polling, closing the
// connection over WebSocket.
func (c *EIOClient) Close(ctx context.Context) error {
	if c.ws != nil {
		return c.ws.Close()
	}
	return c.Send(ctx, "1")
}

// EncodeEIOPayload encodes a polling POST body in the text form of the
// revision: packets joined by 0x1e with binary as "b<base64>" (4), or
// "<UTF-16 length>:<packet>" with binary as "b4<base64>" (3).
func EncodeEIOPayload(protocol int, pkts []EIOPacket) []byte {
	var b []byte
	for i, p := range pkts {
		if protocol == 4 {
			if i > 0 {
				b = append(b, 0x1e)
			}
			if p.Binary {
				b = append(b, 'b')
				b = append(b, base64.StdEncoding.EncodeToString(p.Data)...)
			} else {
				b = append(b, p.Type)
				b = append(b, p.Data...)
			}
			continue
		}
		s := p.Text()
		if p.Binary {
			s = "b4" + base64.StdEncoding.EncodeToString(p.Data)
		}
		b = strconv.AppendInt(b, int64(len(utf16.Encode([]rune(s)))), 10)
		b = append(b, ':')
		b = append(b, s...)
	}
	return b
}

// DecodeEIOPayload decodes a polling response body.
func DecodeEIOPayload(protocol int, contentType string, body []byte) ([]EIOPacket, error) {
	var out []EIOPacket
	if protocol == 4 {
		for part := range bytes.SplitSeq(body, []byte{0x1e}) {
			p, err := decodeEIOText(part, false)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	if contentType == "application/octet-stream" {
		for len(body) > 0 {
			kind := body[0]
			end := bytes.IndexByte(body, 0xff)
			if kind > 1 || end < 2 {
				return nil, fmt.Errorf("bad binary payload % x", body)
			}
			n := 0
			for _, d := range body[1:end] {
				n = n*10 + int(d)
			}
			body = body[end+1:]
			if n == 0 || n > len(body) {
				return nil, fmt.Errorf("bad binary payload length %d", n)
			}
			pkt := body[:n]
			body = body[n:]
			if kind == 1 {
				if pkt[0] != 4 {
					return nil, fmt.Errorf("binary packet of type %d", pkt[0])
				}
				out = append(out, EIOPacket{Type: '4', Data: pkt[1:], Binary: true})
				continue
			}
			out = append(out, EIOPacket{Type: pkt[0], Data: pkt[1:]})
		}
		return out, nil
	}
	for len(body) > 0 {
		colon := bytes.IndexByte(body, ':')
		if colon < 1 {
			return nil, fmt.Errorf("bad length prefix in %q", body)
		}
		units, err := strconv.Atoi(string(body[:colon]))
		if err != nil {
			return nil, fmt.Errorf("bad length prefix in %q", body)
		}
		body = body[colon+1:]
		end := 0
		for units > 0 {
			if end >= len(body) {
				return nil, errors.New("length prefix beyond the payload")
			}
			r, size := utf8.DecodeRune(body[end:])
			units -= utf16.RuneLen(r)
			end += size
		}
		if units < 0 {
			return nil, errors.New("length prefix splits a surrogate pair")
		}
		p, err := decodeEIOText(body[:end], true)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
		body = body[end:]
	}
	return out, nil
}

func decodeEIOText(b []byte, typedBinary bool) (EIOPacket, error) {
	if len(b) == 0 {
		return EIOPacket{}, errors.New("empty packet")
	}
	if b[0] == 'b' {
		if typedBinary {
			if len(b) < 2 || b[1] != '4' {
				return EIOPacket{}, fmt.Errorf("binary packet %q is not a message", b)
			}
			b = b[1:]
		}
		data, err := base64.StdEncoding.DecodeString(string(b[1:]))
		if err != nil {
			return EIOPacket{}, fmt.Errorf("binary packet %q: %w", b, err)
		}
		return EIOPacket{Type: '4', Data: data, Binary: true}, nil
	}
	if b[0] < '0' || b[0] > '6' {
		return EIOPacket{}, fmt.Errorf("unknown packet type in %q", b)
	}
	return EIOPacket{Type: b[0], Data: append([]byte(nil), b[1:]...)}, nil
}

// WSConn is the client end of a WebSocket.
type WSConn struct {
	net.Conn
	r io.Reader
}

// DialWS opens a WebSocket. A refused upgrade returns a ws.StatusError.
func DialWS(ctx context.Context, u string) (*WSConn, error) {
	conn, br, _, err := ws.Dialer{Timeout: 10 * time.Second}.Dial(ctx, u)
	if err != nil {
		return nil, err
	}
	c := &WSConn{Conn: conn, r: conn}
	if br != nil {
		// Frames the server sent right behind its handshake response.
		c.r = io.MultiReader(br, conn)
	}
	return c, nil
}

// Read implements io.Reader over the buffered connection.
func (c *WSConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// ReadMessage returns the next data message, reassembling fragments and
// answering pings. A close frame from the server is returned as a
// wsutil.ClosedError carrying its code, even when the server has already
// gone and the reply cannot be written. The context's deadline, if any,
// bounds the read.
func (c *WSConn) ReadMessage(ctx context.Context) (ws.OpCode, []byte, error) {
	if d, ok := ctx.Deadline(); ok {
		c.Conn.SetReadDeadline(d)
		defer c.Conn.SetReadDeadline(time.Time{})
	}
	var op ws.OpCode
	var msg []byte
	for {
		f, err := ReadFrame(c, maxFrame)
		if err != nil {
			return 0, nil, err
		}
		if f.Header.Masked {
			return 0, nil, errors.New("masked frame from the server")
		}
		switch f.Header.OpCode {
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(f.Payload)
			c.WriteFrame(ws.MaskFrameInPlace(ws.NewCloseFrame(ws.NewCloseFrameBody(code, ""))))
			return 0, nil, wsutil.ClosedError{Code: code, Reason: reason}
		case ws.OpPing:
			c.WriteFrame(ws.MaskFrameInPlace(ws.NewPongFrame(f.Payload)))
			continue
		case ws.OpPong:
			continue
		case ws.OpContinuation:
			if op == 0 {
				return 0, nil, errors.New("continuation frame without a message")
			}
		default:
			if op != 0 {
				return 0, nil, errors.New("new message inside a fragmented one")
			}
			op = f.Header.OpCode
		}
		msg = append(msg, f.Payload...)
		if f.Header.Fin {
			return op, msg, nil
		}
	}
}

// maxFrame bounds one frame the test client accepts.
const maxFrame = 64 << 20

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
func (c *WSConn) WriteText(p []byte) error { return wsutil.WriteClientText(c.Conn, p) }

// WriteBinary sends one binary message.
func (c *WSConn) WriteBinary(p []byte) error { return wsutil.WriteClientBinary(c.Conn, p) }

// WriteFrame sends one frame as it is; the caller chooses masking.
func (c *WSConn) WriteFrame(f ws.Frame) error { return ws.WriteFrame(c.Conn, f) }
