package eioclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// Client is one Engine.IO session driven step by step from a single
// goroutine: every call sends or receives what it says and nothing else,
// so a test sees each packet and can send malformed ones.
type Client struct {
	Endpoint  string // e.g. http://127.0.0.1:1234/socket.io/
	Protocol  int    // 3 or 4
	Transport string // "polling" or "websocket", the transport in use
	Open      Open
	HTTP      *http.Client

	ws      *WSConn
	pending []Packet
}

// SID returns the session id.
func (c *Client) SID() string { return c.Open.SID }

// Dial performs the handshake over the given transport. hc may be nil for
// http.DefaultClient.
func Dial(ctx context.Context, endpoint string, protocol int, transport string, hc *http.Client) (*Client, error) {
	if hc == nil {
		hc = http.DefaultClient
	}
	c := &Client{Endpoint: endpoint, Protocol: protocol, Transport: transport, HTTP: hc}
	var first []Packet
	switch transport {
	case "polling":
		resp, body, err := c.do(ctx, http.MethodGet, URL(endpoint, protocol, transport, ""), "", nil)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("handshake: %s: %s", resp.Status, body)
		}
		first, err = DecodePayload(protocol, resp.Header.Get("Content-Type"), body)
		if err != nil {
			return nil, fmt.Errorf("handshake: %w", err)
		}
	case "websocket":
		conn, err := DialWS(ctx, WSURL(URL(endpoint, protocol, transport, "")))
		if err != nil {
			return nil, err
		}
		c.ws = conn
		p, err := c.readWS(ctx)
		if err != nil {
			conn.Close()
			return nil, fmt.Errorf("handshake: %w", err)
		}
		first = []Packet{p}
	default:
		return nil, fmt.Errorf("unknown transport %q", transport)
	}
	if len(first) == 0 {
		return nil, errors.New("handshake: no packet")
	}
	open, err := ParseOpen(first[0])
	if err != nil {
		if c.ws != nil {
			c.ws.Close()
		}
		return nil, fmt.Errorf("handshake: %w", err)
	}
	c.Open = open
	c.pending = first[1:]
	return c, nil
}

// do sends one HTTP request and reads the whole response.
func (c *Client) do(ctx context.Context, method, u, contentType string, body []byte) (*http.Response, []byte, error) {
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
func (c *Client) PollURL() string { return URL(c.Endpoint, c.Protocol, "polling", c.Open.SID) }

// Get performs one raw polling GET for the session.
func (c *Client) Get(ctx context.Context) (*http.Response, []byte, error) {
	return c.do(ctx, http.MethodGet, c.PollURL(), "", nil)
}

// Post performs one raw polling POST for the session.
func (c *Client) Post(ctx context.Context, contentType string, body []byte) (*http.Response, []byte, error) {
	if contentType == "" {
		contentType = "text/plain;charset=UTF-8"
	}
	return c.do(ctx, http.MethodPost, c.PollURL(), contentType, body)
}

// Send sends text packets ("<type><data>" each): one POST holding all of
// them over polling, one frame per packet over WebSocket.
func (c *Client) Send(ctx context.Context, packets ...string) error {
	pkts := make([]Packet, len(packets))
	for i, s := range packets {
		if s == "" {
			return errors.New("empty packet")
		}
		pkts[i] = Packet{Type: s[0], Data: []byte(s[1:])}
	}
	return c.SendPackets(ctx, pkts...)
}

// SendPackets sends packets, text or binary, in one POST or as one frame
// each.
func (c *Client) SendPackets(ctx context.Context, pkts ...Packet) error {
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
	resp, body, err := c.Post(ctx, "", EncodePayload(c.Protocol, pkts))
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || string(body) != "ok" {
		return fmt.Errorf("POST: %s: %s", resp.Status, body)
	}
	return nil
}

// Recv returns the next batch of packets: one polling GET, or one frame.
// It returns ErrClosed after a WebSocket close.
func (c *Client) Recv(ctx context.Context) ([]Packet, error) {
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
		return []Packet{p}, nil
	}
	resp, body, err := c.Get(ctx)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET: %s: %s", resp.Status, body)
	}
	return DecodePayload(c.Protocol, resp.Header.Get("Content-Type"), body)
}

// Next returns the next message packet, answering the server's pings
// (revision 4) and skipping noops and pongs on the way. A close packet ends
// the session with ErrClosed.
func (c *Client) Next(ctx context.Context) (Packet, error) {
	for {
		for len(c.pending) > 0 {
			p := c.pending[0]
			c.pending = c.pending[1:]
			switch p.Type {
			case '4':
				return p, nil
			case '1':
				return Packet{}, ErrClosed
			case '2':
				if c.Protocol == 4 {
					if err := c.Send(ctx, "3"+string(p.Data)); err != nil {
						return Packet{}, err
					}
				}
			}
		}
		batch, err := c.Recv(ctx)
		if err != nil {
			return Packet{}, err
		}
		c.pending = batch
	}
}

// Upgrade moves a polling session to WebSocket: probe, then upgrade. No GET
// may be pending.
func (c *Client) Upgrade(ctx context.Context) error {
	conn, err := DialWS(ctx, WSURL(URL(c.Endpoint, c.Protocol, "websocket", c.Open.SID)))
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
func (c *Client) WS() *WSConn { return c.ws }

func (c *Client) readWS(ctx context.Context) (Packet, error) {
	op, data, err := c.ws.ReadMessage(ctx)
	if err != nil {
		var closed wsutil.ClosedError
		if errors.As(err, &closed) || errors.Is(err, io.EOF) {
			return Packet{}, fmt.Errorf("%w (%v)", ErrClosed, err)
		}
		return Packet{}, err
	}
	if op == ws.OpBinary {
		if c.Protocol == 3 {
			if len(data) == 0 || data[0] != 4 {
				return Packet{}, fmt.Errorf("binary frame % x is not a message", data)
			}
			data = data[1:]
		}
		return Packet{Type: '4', Data: data, Binary: true}, nil
	}
	if len(data) == 0 {
		return Packet{}, errors.New("empty text frame")
	}
	return Packet{Type: data[0], Data: data[1:]}, nil
}

// Close ends the session: a close packet over polling, closing the
// connection over WebSocket.
func (c *Client) Close(ctx context.Context) error {
	if c.ws != nil {
		return c.ws.Close()
	}
	return c.Send(ctx, "1")
}
