package eioparser

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// The rows below are the wire examples of the protocol notes (and captures
// against the reference server); each is checked in both directions.

func text(t PacketType, data string) Packet { return Packet{Type: t, Data: []byte(data)} }

func bin(data ...byte) Packet { return Packet{Type: PacketMessage, Data: data, Binary: true} }

// handshakeJSON is the reference server's handshake with its default
// settings and a 20-character sid.
const handshakeJSON = `{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}`

// capturedPlaceholder is the text part of a server emit of one Buffer.
const capturedPlaceholder = `51-["bin",{"_placeholder":true,"num":0}]`

func samePackets(a, b []Packet) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Type != b[i].Type || a[i].Binary != b[i].Binary || !bytes.Equal(a[i].Data, b[i].Data) {
			return false
		}
	}
	return true
}

func fmtPackets(pkts []Packet) string {
	parts := make([]string, len(pkts))
	for i, p := range pkts {
		if p.Binary {
			parts[i] = fmt.Sprintf("bin(% x)", p.Data)
		} else {
			parts[i] = fmt.Sprintf("%s%q", p.Type, p.Data)
		}
	}
	return "[" + strings.Join(parts, " ") + "]"
}

type codecRow struct {
	name string
	wire string
	pkts []Packet
}

func checkCodec(t *testing.T, rows []codecRow, enc func([]byte, []Packet) []byte, dec func([]byte) ([]Packet, error)) {
	t.Helper()
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			if got := enc(nil, row.pkts); string(got) != row.wire {
				t.Errorf("encode %s = %q, want %q", fmtPackets(row.pkts), got, row.wire)
			}
			got, err := dec([]byte(row.wire))
			if err != nil {
				t.Fatalf("decode %q: %v", row.wire, err)
			}
			if !samePackets(got, row.pkts) {
				t.Errorf("decode %q = %s, want %s", row.wire, fmtPackets(got), fmtPackets(row.pkts))
			}
		})
	}
}

func checkDecodeErrors(t *testing.T, inputs []string, dec func([]byte) ([]Packet, error)) {
	t.Helper()
	for _, in := range inputs {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			pkts, err := dec([]byte(in))
			if err == nil {
				t.Fatalf("decode %q = %s, want an error", in, fmtPackets(pkts))
			}
			if !errors.Is(err, ErrParse) {
				t.Errorf("error %v does not wrap ErrParse", err)
			}
		})
	}
}

func TestPayloadV4(t *testing.T) {
	checkCodec(t, []codecRow{
		{"three packets", "4hello\x1e2\x1e4world", []Packet{text(PacketMessage, "hello"), text(PacketPing, ""), text(PacketMessage, "world")}},
		{"binary", "bAQIDBA==", []Packet{bin(1, 2, 3, 4)}},
		{"empty binary", "b", []Packet{bin()}},
		{"handshake", "0" + handshakeJSON, []Packet{text(PacketOpen, handshakeJSON)}},
		{"server emit with a buffer", "4" + capturedPlaceholder + "\x1ebAQID", []Packet{text(PacketMessage, capturedPlaceholder), bin(1, 2, 3)}},
		{"probe", "2probe", []Packet{text(PacketPing, "probe")}},
		{"every type", "0\x1e1\x1e2\x1e3\x1e4\x1e5\x1e6", []Packet{
			text(PacketOpen, ""), text(PacketClose, ""), text(PacketPing, ""), text(PacketPong, ""),
			text(PacketMessage, ""), text(PacketUpgrade, ""), text(PacketNoop, ""),
		}},
		{"captured connects", "40{\"token\":\"t\"}\x1e40/custom,{\"a\":1}\x1e40/private,", []Packet{
			text(PacketMessage, `0{"token":"t"}`), text(PacketMessage, `0/custom,{"a":1}`), text(PacketMessage, "0/private,"),
		}},
		{"non-ASCII", "4héllo €😀", []Packet{text(PacketMessage, "héllo €😀")}},
	}, AppendPayloadV4, DecodePayloadV4)
}

func TestPayloadV4Errors(t *testing.T) {
	checkDecodeErrors(t, []string{
		"",             // nothing
		"\x1e",         // two empty packets
		"4a\x1e",       // trailing separator
		"\x1e4a",       // leading separator
		"4a\x1e\x1e4b", // empty packet in the middle
		"7",            // unknown type
		"x",            // not a digit
		"/",            // just below '0'
		"b!!!",         // not base64
		"bAQ",          // missing padding
		"bAQIDBA=",     // wrong padding
	}, DecodePayloadV4)
}

func TestPayloadV3Text(t *testing.T) {
	handshake := "0" + handshakeJSON
	checkCodec(t, []codecRow{
		{"two messages", "6:4hello6:4world", []Packet{text(PacketMessage, "hello"), text(PacketMessage, "world")}},
		{"euro is one unit", "2:4€", []Packet{text(PacketMessage, "€")}},
		{"emoji is two units", "3:4😀", []Packet{text(PacketMessage, "😀")}},
		{"mixed", "10:4héllo €😀", []Packet{text(PacketMessage, "héllo €😀")}},
		{"binary", "10:b4AQIDBA==", []Packet{bin(1, 2, 3, 4)}},
		{"handshake", "118:" + handshake, []Packet{text(PacketOpen, handshakeJSON)}},
		{"ping", "1:2", []Packet{text(PacketPing, "")}},
		{"auto connect", "2:40", []Packet{text(PacketMessage, "0")}},
		{"captured session", `2:4010:40/custom,32:42/custom,["hi",{"token":"abc"}]32:44/private,{"reason":"no token"}`, []Packet{
			text(PacketMessage, "0"), text(PacketMessage, "0/custom,"),
			text(PacketMessage, `2/custom,["hi",{"token":"abc"}]`), text(PacketMessage, `4/private,{"reason":"no token"}`),
		}},
		{"ack", `8:437["x"]`, []Packet{text(PacketMessage, `37["x"]`)}},
		{"server emit with a buffer, b64", "41:4" + capturedPlaceholder + "6:b4AQID", []Packet{text(PacketMessage, capturedPlaceholder), bin(1, 2, 3)}},
	}, AppendPayloadV3Text, DecodePayloadV3Text)
}

func TestPayloadV3TextErrors(t *testing.T) {
	checkDecodeErrors(t, []string{
		"",              // nothing
		":4a",           // no length
		"2",             // no colon
		"0:",            // zero length
		"1:",            // length beyond the payload
		"3:4a",          // likewise
		"3:4€",          // counts bytes, not UTF-16 units
		"2:4😀",          // ends inside a surrogate pair
		"a:4a",          // not a number
		"-1:4",          // negative
		"12345678901:4", // absurdly long prefix
		"2:4a3",         // trailing garbage
		"1:7",           // unknown type
		"3:b3A",         // binary that is not a message
		"4:b4!!",        // bad base64
		"1:b",           // binary without a type
	}, DecodePayloadV3Text)
}

// capturedV3Binary is the binary form of the server emit with a buffer, as
// captured from the reference server: a 41-byte string packet then a
// 4-byte binary packet (type byte 4 and 01 02 03).
var capturedV3Binary = append(append([]byte{0x00, 0x04, 0x01, 0xff}, "4"+capturedPlaceholder...),
	0x01, 0x04, 0xff, 0x04, 0x01, 0x02, 0x03)

func TestPayloadV3Binary(t *testing.T) {
	checkCodec(t, []codecRow{
		{"captured", string(capturedV3Binary), []Packet{text(PacketMessage, capturedPlaceholder), bin(1, 2, 3)}},
		{"ping", "\x00\x01\xff2", []Packet{text(PacketPing, "")}},
		{"non-ASCII text, length in bytes", "\x00\x04\xff4€", []Packet{text(PacketMessage, "€")}},
		{"ten-byte binary", "\x01\x01\x01\xff\x04" + strings.Repeat("\x00", 10), []Packet{bin(make([]byte, 10)...)}},
		{"empty binary", "\x01\x01\xff\x04", []Packet{bin()}},
	}, AppendPayloadV3Binary, DecodePayloadV3Binary)
}

func TestPayloadV3BinaryErrors(t *testing.T) {
	checkDecodeErrors(t, []string{
		"",                      // nothing
		"\x02\x01\xff2",         // unknown kind
		"\x00\x01",              // no 0xff
		"\x00\xff2",             // no length
		"\x00\x00\xff",          // zero length
		"\x00\x05\xff42",        // length beyond the payload
		"\x00\x0a\xff4",         // "digit" 10
		"\x01\x01\xff\x03",      // binary that is not a message
		"\x00\x01\xff7",         // unknown type
		"\x00\x01\xff2\x00",     // truncated second packet
		"\x00\x03\xff4\xff\x00", // string packet that is not UTF-8
		"\x00" + strings.Repeat("\x00", 11) + "\x01\xff2", // eleven digits
	}, DecodePayloadV3Binary)
}

func TestUTF16Len(t *testing.T) {
	for _, c := range []struct {
		in   string
		want int
	}{
		{"", 0}, {"hello", 5}, {"€", 1}, {"😀", 2}, {"héllo €😀", 9},
		{"\xff", 1}, {"\xe2\x82", 2}, // invalid bytes count one each
	} {
		if got := UTF16Len([]byte(c.in)); got != c.want {
			t.Errorf("UTF16Len(%q) = %d, want %d", c.in, got, c.want)
		}
	}
}

func TestAppendDecodeKeepsDst(t *testing.T) {
	first := text(PacketNoop, "")
	for name, dec := range map[string]func([]Packet, []byte) ([]Packet, error){
		"v4": AppendDecodePayloadV4, "v3 text": AppendDecodePayloadV3Text, "v3 binary": AppendDecodePayloadV3Binary,
	} {
		ok := map[string]string{"v4": "4a\x1e2", "v3 text": "2:4a1:2", "v3 binary": "\x00\x02\xff4a\x00\x01\xff2"}[name]
		dst := make([]Packet, 1, 8)
		dst[0] = first
		got, err := dec(dst, []byte(ok))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if want := []Packet{first, text(PacketMessage, "a"), text(PacketPing, "")}; !samePackets(got, want) || &got[0] != &dst[0] {
			t.Errorf("%s: got %s, want %s in dst's array", name, fmtPackets(got), fmtPackets(want))
		}
		got, err = dec(got[:1], []byte("garbage\x1e"))
		if err == nil || !samePackets(got, []Packet{first}) {
			t.Errorf("%s: on error got %s, %v; want dst as it was", name, fmtPackets(got), err)
		}
	}
}
