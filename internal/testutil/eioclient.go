package testutil

// The wire clients live in package eioclient, shared with the tools; these
// names keep the tests' spelling.

import (
	"context"
	"io"
	"net/http"

	"github.com/gobwas/ws"

	"siogo/internal/eioclient"
)

type (
	// EIOPacket is one Engine.IO packet (eioclient.Packet).
	EIOPacket = eioclient.Packet
	// EIOOpen is the handshake data (eioclient.Open).
	EIOOpen = eioclient.Open
	// EIOClient is a wire-level Engine.IO session (eioclient.Client).
	EIOClient = eioclient.Client
	// WSConn is the client end of a WebSocket (eioclient.WSConn).
	WSConn = eioclient.WSConn
	// ChatClient is a concurrent chat client (eioclient.ChatClient).
	ChatClient = eioclient.ChatClient
	// ChatOptions configures DialChat (eioclient.ChatOptions).
	ChatOptions = eioclient.ChatOptions
	// ChatLine is one clientReceiver event (eioclient.ChatLine).
	ChatLine = eioclient.ChatLine
)

// Reasons a session ended, from package eioclient.
var (
	ErrChatClosedByServer = eioclient.ErrChatClosedByServer
	ErrChatClosedByClient = eioclient.ErrChatClosedByClient
)

// EIOURL returns endpoint with the Engine.IO query (eioclient.URL).
func EIOURL(endpoint string, protocol int, transport, sid string) string {
	return eioclient.URL(endpoint, protocol, transport, sid)
}

// WSURL turns an http:// URL into its ws:// form.
func WSURL(u string) string { return eioclient.WSURL(u) }

// DialEIO performs an Engine.IO handshake (eioclient.Dial).
func DialEIO(ctx context.Context, endpoint string, protocol int, transport string, hc *http.Client) (*EIOClient, error) {
	return eioclient.Dial(ctx, endpoint, protocol, transport, hc)
}

// DialWS opens a WebSocket (eioclient.DialWS).
func DialWS(ctx context.Context, u string) (*WSConn, error) { return eioclient.DialWS(ctx, u) }

// DialChat connects a chat client (eioclient.DialChat).
func DialChat(ctx context.Context, base string, opts ChatOptions) (*ChatClient, error) {
	return eioclient.DialChat(ctx, base, opts)
}

// EncodeEIOPayload encodes a polling POST body (eioclient.EncodePayload).
func EncodeEIOPayload(protocol int, pkts []EIOPacket) []byte {
	return eioclient.EncodePayload(protocol, pkts)
}

// DecodeEIOPayload decodes a polling response body (eioclient.DecodePayload).
func DecodeEIOPayload(protocol int, contentType string, body []byte) ([]EIOPacket, error) {
	return eioclient.DecodePayload(protocol, contentType, body)
}

// ReadFrame reads one whole WebSocket frame (eioclient.ReadFrame).
func ReadFrame(r io.Reader, max int64) (ws.Frame, error) { return eioclient.ReadFrame(r, max) }
