package eioparser

import (
	"bytes"
	"encoding/base64"
	"slices"
)

// recordSeparator joins packets in an Engine.IO 4 polling payload.
const recordSeparator = 0x1e

// AppendPayloadV4 appends the Engine.IO 4 polling encoding of pkts to dst:
// text packets as "<type><data>", binary messages as "b<base64>", joined by
// the record separator.
func AppendPayloadV4(dst []byte, pkts []Packet) []byte {
	for i, p := range pkts {
		if i > 0 {
			dst = append(dst, recordSeparator)
		}
		if p.Binary {
			dst = append(dst, 'b')
			dst = base64.StdEncoding.AppendEncode(dst, p.Data)
			continue
		}
		dst = append(dst, '0'+byte(p.Type))
		dst = append(dst, p.Data...)
	}
	return dst
}

// DecodePayloadV4 splits an Engine.IO 4 polling payload into packets. Text
// packets alias body.
func DecodePayloadV4(body []byte) ([]Packet, error) { return AppendDecodePayloadV4(nil, body) }

// AppendDecodePayloadV4 is DecodePayloadV4 appending the packets to dst, so
// that a client reading many payloads can reuse one slice. On error it
// returns dst as it was.
func AppendDecodePayloadV4(dst []Packet, body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return dst, parseErr("empty payload")
	}
	start := len(dst)
	n := bytes.Count(body, []byte{recordSeparator}) + 1
	dst = slices.Grow(dst, n)
	for range n {
		var part []byte
		if i := bytes.IndexByte(body, recordSeparator); i >= 0 {
			part, body = body[:i], body[i+1:]
		} else {
			part, body = body, nil
		}
		if len(part) > 0 && part[0]-'0' <= byte(PacketNoop) {
			// A text packet, the common case, decoded in place: a call
			// per packet costs a client reading thousands of them a
			// second more than the rest of the loop.
			dst = append(dst, Packet{Type: PacketType(part[0] - '0'), Data: part[1:]})
			continue
		}
		p, err := decodePacketV4(part)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, p)
	}
	return dst, nil
}

// decodePacketV4 decodes one packet of a polling payload: "b<base64>" is a
// binary message, anything else a text packet.
func decodePacketV4(b []byte) (Packet, error) {
	if len(b) > 0 && b[0] == 'b' {
		data, err := base64.StdEncoding.AppendDecode(nil, b[1:])
		if err != nil {
			return Packet{}, parseErr("bad base64 in binary packet")
		}
		return Packet{Type: PacketMessage, Data: data, Binary: true}, nil
	}
	return DecodePacket(b)
}
