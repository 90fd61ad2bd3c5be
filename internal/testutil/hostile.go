package testutil

// Misbehaving clients for crash-safety tests: each case opens its own
// session, sends something malformed at one protocol level, and succeeds
// only once the server has closed that session. Used against the server in
// process and against the real binary.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/gobwas/ws"
)

// JoinSIO opens a session and joins the root namespace: revision 4 asks
// with "40" and is answered "40{sid}", revision 3 is joined by the server
// ("40"). mode is "polling", "websocket" or "upgrade" (polling, upgraded to
// WebSocket once joined). hc may be nil.
func JoinSIO(ctx context.Context, endpoint string, protocol int, mode string, hc *http.Client) (*EIOClient, error) {
	transport := mode
	if mode == "upgrade" {
		transport = "polling"
	}
	c, err := DialEIO(ctx, endpoint, protocol, transport, hc)
	if err != nil {
		return nil, err
	}
	if protocol == 4 {
		if err := c.Send(ctx, "40"); err != nil {
			return nil, err
		}
	}
	p, err := c.Next(ctx)
	if err != nil {
		return nil, fmt.Errorf("waiting for the connect reply: %w", err)
	}
	if s := string(p.Data); !(protocol == 3 && s == "0") && !(protocol == 4 && strings.HasPrefix(s, `0{"sid":`)) {
		return nil, fmt.Errorf("connect reply %v", p)
	}
	if mode == "upgrade" {
		if err := c.Upgrade(ctx); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// expectClosed waits until the server has ended the session: a close packet
// or a 400 over polling, a close frame or the end of the connection over
// WebSocket. Anything else the server sends first is skipped.
func expectClosed(ctx context.Context, c *EIOClient) error {
	if conn := c.WS(); conn != nil {
		for {
			_, _, err := conn.ReadMessage(ctx)
			if err == nil {
				continue
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return errors.New("the server kept the WebSocket open")
			}
			return nil
		}
	}
	for {
		resp, body, err := c.Get(ctx)
		if err != nil {
			return fmt.Errorf("the session is still open: GET: %w", err)
		}
		if resp.StatusCode == http.StatusBadRequest {
			return nil
		}
		pkts, err := DecodeEIOPayload(c.Protocol, resp.Header.Get("Content-Type"), body)
		if err != nil {
			return err
		}
		for _, p := range pkts {
			if p.Type == '1' {
				return nil
			}
		}
	}
}

// HostileCase is one misbehaving client.
type HostileCase struct {
	Name string
	// Run misbehaves against the Socket.IO endpoint (e.g.
	// http://host/socket.io/) and returns nil once the server has closed
	// the session.
	Run func(ctx context.Context, endpoint string) error
}

func textPacket(s string) EIOPacket { return EIOPacket{Type: s[0], Data: []byte(s[1:])} }

func binaryPacket(b ...byte) EIOPacket { return EIOPacket{Type: '4', Data: b, Binary: true} }

// HostileCases returns the misbehaving clients: Socket.IO-level garbage on
// a joined session for both revisions over polling and WebSocket, then
// Engine.IO- and WebSocket-level garbage. maxPayload is the server's limit;
// one case sends a message twice that size.
func HostileCases(maxPayload int) []HostileCase {
	var cases []HostileCase
	add := func(name string, run func(context.Context, string) error) {
		cases = append(cases, HostileCase{name, run})
	}
	sio := []struct {
		name string
		pkts []EIOPacket
	}{
		{"unknown type 4abc", []EIOPacket{textPacket("4abc")}},
		{"event payload not an array", []EIOPacket{textPacket("42{}")}},
		{"letters for an ack id", []EIOPacket{textPacket(`42abc["serverReceiver","x"]`)}},
		{"reserved event name", []EIOPacket{textPacket(`42["disconnect"]`)}},
		{"too many attachments", []EIOPacket{textPacket(`4511-["serverReceiver",{"_placeholder":true,"num":0}]`)}},
		{"binary without a packet", []EIOPacket{binaryPacket(1, 2, 3)}},
		{"text while attachments are due", []EIOPacket{textPacket(`451-["serverReceiver",{"_placeholder":true,"num":0}]`), textPacket(`42["serverReceiver","x"]`)}},
		{"dangling placeholder", []EIOPacket{textPacket(`451-["serverReceiver",{"_placeholder":true,"num":7}]`), binaryPacket(9)}},
		{"event for a namespace never joined", []EIOPacket{textPacket(`42/admin,["serverReceiver","x"]`)}},
		{"connect error from a client", []EIOPacket{textPacket(`44{"message":"x"}`)}},
		{"truncated JSON", []EIOPacket{textPacket(`42["serverReceiver","x"`)}},
		// Revision 3 is joined to "/" by the server, revision 4 asked
		// already: either way a second CONNECT is an invalid state.
		{"connect to / again", []EIOPacket{textPacket("40")}},
	}
	for _, protocol := range []int{3, 4} {
		for _, mode := range []string{"polling", "websocket"} {
			for _, c := range sio {
				add(fmt.Sprintf("EIO%d %s: %s", protocol, mode, c.name), afterJoin(protocol, mode, c.pkts...))
			}
		}
	}
	add("EIO4 POST: unknown packet type", rawPost(4, "", "9"))
	add("EIO4 POST: invalid UTF-8", rawPost(4, "", "42[\"serverReceiver\",\"\xff\"]"))
	add("EIO4 POST: bad base64", rawPost(4, "", "b@@@"))
	add("EIO4 POST: binary content type", rawPost(4, "application/octet-stream", "\x00\x01\xff4"))
	add("EIO4 POST: empty packet", rawPost(4, "", "42[\"a\"]\x1e"))
	add("EIO3 POST: bad length prefix", rawPost(3, "", "99:42[\"serverReceiver\",\"x\"]"))
	add("EIO3 POST: invalid UTF-8", rawPost(3, "", "4:4\xff\xfe\xfd"))
	add("EIO3 POST: bad binary form", rawPost(3, "application/octet-stream", "\x07\x07"))
	add("EIO4 WS: unknown packet type", rawWS(4, func(c *WSConn) { c.WriteText([]byte("9")) }))
	add("EIO4 WS: invalid UTF-8", rawWS(4, func(c *WSConn) { c.WriteText([]byte("42[\"\xff\"]")) }))
	add("EIO3 WS: binary of type 2", rawWS(3, func(c *WSConn) { c.WriteBinary([]byte{2, 1}) }))
	add("EIO4 WS: unmasked frame", rawWS(4, func(c *WSConn) { c.WriteFrame(ws.NewTextFrame([]byte("40"))) }))
	add("EIO4 WS: reserved opcode", rawWS(4, func(c *WSConn) {
		c.WriteFrame(ws.MaskFrameInPlace(ws.NewFrame(ws.OpCode(3), true, []byte("40"))))
	}))
	add("EIO4 WS: message over max payload", rawWS(4, func(c *WSConn) {
		c.WriteText(append([]byte(`42["serverReceiver","`), bytes.Repeat([]byte("x"), 2*maxPayload)...))
	}))
	add("EIO3 WS: bytes that are no frames", rawWS(3, func(c *WSConn) { c.Conn.Write([]byte("\x00\x00\x00\x00hello")) }))
	return cases
}

// afterJoin misbehaves with Socket.IO packets on a joined session.
func afterJoin(protocol int, mode string, pkts ...EIOPacket) func(context.Context, string) error {
	return func(ctx context.Context, endpoint string) error {
		c, err := JoinSIO(ctx, endpoint, protocol, mode, nil)
		if err != nil {
			return err
		}
		defer c.Close(ctx)
		// Over polling, a packet that ends the session may make the POST
		// itself fail; what counts is that the session ends.
		c.SendPackets(ctx, pkts...)
		return expectClosed(ctx, c)
	}
}

// rawPost misbehaves at the Engine.IO level with one POST body, which must
// be refused with 400.
func rawPost(protocol int, contentType, body string) func(context.Context, string) error {
	return func(ctx context.Context, endpoint string) error {
		c, err := DialEIO(ctx, endpoint, protocol, "polling", nil)
		if err != nil {
			return err
		}
		resp, b, err := c.Post(ctx, contentType, []byte(body))
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusBadRequest {
			return fmt.Errorf("POST %q: %s %q, want 400", body, resp.Status, b)
		}
		return expectClosed(ctx, c)
	}
}

// rawWS misbehaves at the WebSocket level on a fresh session.
func rawWS(protocol int, send func(*WSConn)) func(context.Context, string) error {
	return func(ctx context.Context, endpoint string) error {
		c, err := DialEIO(ctx, endpoint, protocol, "websocket", nil)
		if err != nil {
			return err
		}
		defer c.WS().Close()
		send(c.WS())
		return expectClosed(ctx, c)
	}
}
