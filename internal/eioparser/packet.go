package eioparser

import (
	"errors"
	"fmt"
)

// PacketType is the Engine.IO packet type.
type PacketType byte

// Engine.IO packet types, shared by both protocol revisions.
const (
	PacketOpen PacketType = iota
	PacketClose
	PacketPing
	PacketPong
	PacketMessage
	PacketUpgrade
	PacketNoop
)

var packetTypeNames = [...]string{"open", "close", "ping", "pong", "message", "upgrade", "noop"}

// String returns the type's name, e.g. "message".
func (t PacketType) String() string {
	if int(t) < len(packetTypeNames) {
		return packetTypeNames[t]
	}
	return fmt.Sprintf("PacketType(%d)", byte(t))
}

// Packet is one Engine.IO packet. Binary is only meaningful for messages: it
// marks Data as raw bytes rather than text.
type Packet struct {
	Type   PacketType
	Data   []byte
	Binary bool
}

// Errors returned by the codecs. They wrap ErrParse so callers can tell a
// malformed payload from an I/O failure.
var (
	ErrParse = errors.New("engineio: parse error")
)

func parseErr(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrParse, fmt.Sprintf(format, args...))
}

// DecodePacket decodes "<type digit><data>". The returned packet's Data
// aliases b.
func DecodePacket(b []byte) (Packet, error) {
	if len(b) == 0 {
		return Packet{}, parseErr("empty packet")
	}
	t := b[0] - '0'
	if b[0] < '0' || t > byte(PacketNoop) {
		return Packet{}, parseErr("unknown packet type %q", b[0])
	}
	return Packet{Type: PacketType(t), Data: b[1:]}, nil
}
