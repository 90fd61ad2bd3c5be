package eioclient

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"siogo/internal/eioparser"
)

// Packet is one Engine.IO packet as the client sees it. Type is the packet
// type as its digit on the wire ('0' open … '6' noop); binary packets are
// always messages.
type Packet struct {
	Type   byte
	Data   []byte
	Binary bool
}

// String quotes the packet for test failures.
func (p Packet) String() string {
	if p.Binary {
		return fmt.Sprintf("binary(% x)", p.Data)
	}
	return strconv.Quote(string(p.Type) + string(p.Data))
}

// Text returns the text form "<type><data>".
func (p Packet) Text() string { return string(p.Type) + string(p.Data) }

// Open is the handshake (open packet) data.
type Open struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int64    `json:"pingInterval"`
	PingTimeout  int64    `json:"pingTimeout"`
	MaxPayload   int64    `json:"maxPayload"`
}

// ParseOpen decodes an open packet; it fails on any other packet and on
// an open packet without a session id.
func ParseOpen(p Packet) (Open, error) {
	var o Open
	if p.Type != '0' || p.Binary {
		return o, fmt.Errorf("eioclient: got %s, want an open packet", p)
	}
	if err := json.Unmarshal(p.Data, &o); err != nil || o.SID == "" {
		return o, fmt.Errorf("eioclient: bad open packet %s", p)
	}
	return o, nil
}

// ErrClosed is returned once the server has sent a close packet or closed
// the WebSocket.
var ErrClosed = errors.New("eioclient: engine.io session closed by the server")

// URL returns endpoint with the Engine.IO query: EIO, transport, and sid
// when non-empty.
func URL(endpoint string, protocol int, transport, sid string) string {
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

// EncodePayload encodes a polling POST body in the text form of the
// revision: packets joined by 0x1e with binary as "b<base64>" (4), or
// "<UTF-16 length>:<packet>" with binary as "b4<base64>" (3).
func EncodePayload(protocol int, pkts []Packet) []byte {
	pp := make([]eioparser.Packet, len(pkts))
	for i, p := range pkts {
		pp[i] = toParser(p)
	}
	return appendPayload(protocol, nil, pp)
}

// DecodePayload decodes a polling response body. contentType tells the
// binary form of revision 3 (application/octet-stream) from its text form.
// Text packets alias body.
func DecodePayload(protocol int, contentType string, body []byte) ([]Packet, error) {
	pp, err := appendDecodePayload(nil, protocol, contentType, body)
	if err != nil {
		return nil, err
	}
	out := make([]Packet, len(pp))
	for i, p := range pp {
		out[i] = fromParser(p)
	}
	return out, nil
}

func appendPayload(protocol int, dst []byte, pkts []eioparser.Packet) []byte {
	if protocol == 3 {
		return eioparser.AppendPayloadV3Text(dst, pkts)
	}
	return eioparser.AppendPayloadV4(dst, pkts)
}

// appendDecodePayload decodes body, appending its packets to dst so that a
// client can reuse one slice for every poll.
func appendDecodePayload(dst []eioparser.Packet, protocol int, contentType string, body []byte) ([]eioparser.Packet, error) {
	switch {
	case protocol != 3:
		return eioparser.AppendDecodePayloadV4(dst, body)
	case strings.HasPrefix(contentType, "application/octet-stream"):
		return eioparser.AppendDecodePayloadV3Binary(dst, body)
	default:
		return eioparser.AppendDecodePayloadV3Text(dst, body)
	}
}

// toParser and fromParser convert between the wire digit and eioparser's
// packet type; the byte arithmetic wraps, so a test's deliberately unknown
// type survives the round trip.
func toParser(p Packet) eioparser.Packet {
	return eioparser.Packet{Type: eioparser.PacketType(p.Type - '0'), Data: p.Data, Binary: p.Binary}
}

func fromParser(p eioparser.Packet) Packet {
	return Packet{Type: '0' + byte(p.Type), Data: p.Data, Binary: p.Binary}
}
