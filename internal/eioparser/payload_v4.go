package eioparser

import (
	"bytes"
	"encoding/base64"
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
func DecodePayloadV4(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, parseErr("empty payload")
	}
	pkts := make([]Packet, 0, bytes.Count(body, []byte{recordSeparator})+1)
	for len(body) > 0 || len(pkts) < cap(pkts) {
		var part []byte
		if i := bytes.IndexByte(body, recordSeparator); i >= 0 {
			part, body = body[:i], body[i+1:]
		} else {
			part, body = body, nil
		}
		p, err := decodePacketV4(part)
		if err != nil {
			return nil, err
		}
		pkts = append(pkts, p)
	}
	return pkts, nil
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
