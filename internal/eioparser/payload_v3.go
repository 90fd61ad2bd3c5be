package eioparser

import (
	"encoding/base64"
	"strconv"
	"unicode/utf8"
)

// The Engine.IO 3 polling payload has two forms. The text form frames each
// packet as "<length>:<packet>", where the length counts UTF-16 code units
// (the string length a JavaScript client sees), and carries binary messages
// as "b<type><base64>". The binary form, used when the client can take binary
// and the payload holds some, frames each packet as
// <0 text|1 binary><length, one byte per decimal digit><0xff><packet>, with
// lengths in bytes.

// UTF16Len returns the number of UTF-16 code units needed for b, which is
// assumed to be UTF-8. Invalid bytes count as one unit each (they decode to
// U+FFFD).
func UTF16Len(b []byte) int {
	n := 0
	for i := 0; i < len(b); {
		c := b[i]
		if c < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n
}

// HasBinary reports whether any packet is a binary message.
func HasBinary(pkts []Packet) bool {
	for _, p := range pkts {
		if p.Binary {
			return true
		}
	}
	return false
}

// AppendPayloadV3Text appends the text form of pkts to dst.
func AppendPayloadV3Text(dst []byte, pkts []Packet) []byte {
	for _, p := range pkts {
		if p.Binary {
			n := 2 + base64.StdEncoding.EncodedLen(len(p.Data))
			dst = strconv.AppendInt(dst, int64(n), 10)
			dst = append(dst, ':', 'b', '0'+byte(p.Type))
			dst = base64.StdEncoding.AppendEncode(dst, p.Data)
			continue
		}
		dst = strconv.AppendInt(dst, int64(1+UTF16Len(p.Data)), 10)
		dst = append(dst, ':', '0'+byte(p.Type))
		dst = append(dst, p.Data...)
	}
	return dst
}

// AppendPayloadV3Binary appends the binary form of pkts to dst.
func AppendPayloadV3Binary(dst []byte, pkts []Packet) []byte {
	for _, p := range pkts {
		kind := byte(0)
		typ := '0' + byte(p.Type)
		if p.Binary {
			kind, typ = 1, byte(p.Type)
		}
		dst = append(dst, kind)
		mark := len(dst)
		dst = strconv.AppendInt(dst, int64(1+len(p.Data)), 10)
		for i := mark; i < len(dst); i++ {
			dst[i] -= '0'
		}
		dst = append(dst, 0xff, typ)
		dst = append(dst, p.Data...)
	}
	return dst
}

// DecodePayloadV3Text decodes the text form. Text packets alias body.
func DecodePayloadV3Text(body []byte) ([]Packet, error) { return AppendDecodePayloadV3Text(nil, body) }

// AppendDecodePayloadV3Text is DecodePayloadV3Text appending the packets to
// dst. On error it returns dst as it was.
func AppendDecodePayloadV3Text(dst []Packet, body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return dst, parseErr("empty payload")
	}
	start := len(dst)
	for len(body) > 0 {
		colon := 0
		for colon < len(body) && body[colon] != ':' {
			if body[colon] < '0' || body[colon] > '9' || colon > 9 {
				return dst[:start], parseErr("bad length prefix")
			}
			colon++
		}
		if colon == 0 || colon == len(body) {
			return dst[:start], parseErr("bad length prefix")
		}
		units, _ := strconv.Atoi(string(body[:colon]))
		body = body[colon+1:]
		// Walk forward until the packet spans the announced UTF-16 units.
		end, seen := 0, 0
		for seen < units && end < len(body) {
			r, size := utf8.DecodeRune(body[end:])
			if r >= 0x10000 {
				seen += 2
			} else {
				seen++
			}
			end += size
		}
		if seen != units || units == 0 {
			return dst[:start], parseErr("length prefix does not match the packet")
		}
		p, err := decodePacketV3Text(body[:end])
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, p)
		body = body[end:]
	}
	return dst, nil
}

// decodePacketV3Text decodes one packet of the text form: "b<type><base64>"
// is a binary packet, anything else "<type><data>".
func decodePacketV3Text(b []byte) (Packet, error) {
	if len(b) > 0 && b[0] == 'b' {
		if len(b) < 2 || b[1] != '0'+byte(PacketMessage) {
			return Packet{}, parseErr("binary packet that is not a message")
		}
		data, err := base64.StdEncoding.AppendDecode(nil, b[2:])
		if err != nil {
			return Packet{}, parseErr("bad base64 in binary packet")
		}
		return Packet{Type: PacketMessage, Data: data, Binary: true}, nil
	}
	return DecodePacket(b)
}

// DecodePayloadV3Binary decodes the binary form. Packets alias body.
func DecodePayloadV3Binary(body []byte) ([]Packet, error) {
	return AppendDecodePayloadV3Binary(nil, body)
}

// AppendDecodePayloadV3Binary is DecodePayloadV3Binary appending the packets
// to dst. On error it returns dst as it was.
func AppendDecodePayloadV3Binary(dst []Packet, body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return dst, parseErr("empty payload")
	}
	start := len(dst)
	for len(body) > 0 {
		kind := body[0]
		if kind > 1 {
			return dst[:start], parseErr("bad packet kind %d", kind)
		}
		n, i := 0, 1
		for ; i < len(body) && body[i] != 0xff; i++ {
			if body[i] > 9 || i > 10 {
				return dst[:start], parseErr("bad length prefix")
			}
			n = n*10 + int(body[i])
		}
		if i == 1 || i == len(body) || n == 0 || len(body)-(i+1) < n {
			return dst[:start], parseErr("bad length prefix")
		}
		pkt := body[i+1 : i+1+n]
		body = body[i+1+n:]
		if kind == 1 {
			if pkt[0] != byte(PacketMessage) {
				return dst[:start], parseErr("binary packet that is not a message")
			}
			dst = append(dst, Packet{Type: PacketMessage, Data: pkt[1:], Binary: true})
			continue
		}
		// String packets are UTF-8, decoded strictly as the reference
		// parser does.
		if !utf8.Valid(pkt) {
			return dst[:start], parseErr("string packet is not valid UTF-8")
		}
		p, err := DecodePacket(pkt)
		if err != nil {
			return dst[:start], err
		}
		dst = append(dst, p)
	}
	return dst, nil
}
