package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"

	"siogo/engineio"
)

// PacketType is the Socket.IO packet type.
type packetType byte

// Socket.IO packet types.
const (
	packetConnect packetType = iota
	packetDisconnect
	packetEvent
	packetAck
	packetConnectError
	packetBinaryEvent
	packetBinaryAck
)

// MaxAttachments bounds the binary attachments of one packet, as the
// reference parser does.
const maxAttachments = 10

// Packet is a decoded Socket.IO packet. Data is the raw JSON payload; binary
// values inside it are placeholders {"_placeholder":true,"num":i} that index
// Attachments. Type is never a binary type: BINARY_EVENT and BINARY_ACK are
// Event and Ack with attachments.
type packet struct {
	Type        packetType
	Namespace   string
	ID          uint64
	HasID       bool
	Data        json.RawMessage
	Attachments [][]byte
}

// ErrInvalidPacket wraps every decoding error.
var errInvalidPacket = errors.New("socketio: invalid packet")

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errInvalidPacket, fmt.Sprintf(format, args...))
}

// reservedEvents may not be sent by a client.
var reservedEvents = []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"}

// AppendText appends the text part of the packet's wire form:
// <type>[<#attachments>-][<nsp>,][<ack id>][payload].
func (p *packet) AppendText(dst []byte) []byte {
	t := p.Type
	if len(p.Attachments) > 0 {
		switch t {
		case packetEvent:
			t = packetBinaryEvent
		case packetAck:
			t = packetBinaryAck
		}
	}
	dst = append(dst, '0'+byte(t))
	if t == packetBinaryEvent || t == packetBinaryAck {
		dst = strconv.AppendInt(dst, int64(len(p.Attachments)), 10)
		dst = append(dst, '-')
	}
	if p.Namespace != "" && p.Namespace != "/" {
		dst = append(dst, p.Namespace...)
		dst = append(dst, ',')
	}
	if p.HasID {
		dst = strconv.AppendUint(dst, p.ID, 10)
	}
	return append(dst, p.Data...)
}

// Frames returns the packet as Engine.IO messages: the text part, then one
// binary message per attachment. The result may be sent to many sessions.
func (p *packet) Frames() []engineio.Message {
	frames := make([]engineio.Message, 1, 1+len(p.Attachments))
	frames[0] = engineio.Message{Data: p.AppendText(nil)}
	for _, a := range p.Attachments {
		frames = append(frames, engineio.Message{Data: a, Binary: true})
	}
	return frames
}

// DecodeText parses the text part of a packet and validates its payload as
// the reference parser does. For a binary packet the returned packet expects
// the number of attachments given by the second result.
func decodeText(b []byte) (*packet, int, error) {
	if len(b) == 0 {
		return nil, 0, invalid("empty packet")
	}
	if b[0] < '0' || b[0] > '0'+byte(packetBinaryAck) {
		return nil, 0, invalid("unknown packet type %q", b[0])
	}
	p := &packet{Type: packetType(b[0] - '0'), Namespace: "/"}
	i := 1
	attachments := 0
	if p.Type == packetBinaryEvent || p.Type == packetBinaryAck {
		j := i
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		if j == i || j >= len(b) || b[j] != '-' || j-i > 3 {
			return nil, 0, invalid("illegal attachments")
		}
		attachments, _ = strconv.Atoi(string(b[i:j]))
		if attachments > maxAttachments {
			return nil, 0, invalid("too many attachments")
		}
		i = j + 1
		p.Type -= packetBinaryEvent - packetEvent
	}
	if i < len(b) && b[i] == '/' {
		j := bytes.IndexByte(b[i:], ',')
		if j < 0 {
			p.Namespace = string(b[i:])
			i = len(b)
		} else {
			p.Namespace = string(b[i : i+j])
			i += j + 1
		}
	}
	if j := i; j < len(b) && b[j] >= '0' && b[j] <= '9' {
		for j < len(b) && b[j] >= '0' && b[j] <= '9' {
			j++
		}
		id, err := strconv.ParseUint(string(b[i:j]), 10, 64)
		if err != nil {
			return nil, 0, invalid("bad ack id")
		}
		p.ID, p.HasID = id, true
		i = j
	}
	if i < len(b) {
		p.Data = json.RawMessage(slices.Clone(b[i:]))
	}
	if err := validatePayload(p.Type, p.Data); err != nil {
		return nil, 0, err
	}
	return p, attachments, nil
}

func jsonKind(data json.RawMessage) byte {
	data = bytes.TrimLeft(data, " \t\r\n")
	if len(data) == 0 {
		return 0
	}
	return data[0]
}

func validatePayload(t packetType, data json.RawMessage) error {
	if data != nil && !json.Valid(data) {
		return invalid("invalid payload")
	}
	kind := jsonKind(data)
	ok := false
	switch t {
	case packetConnect:
		ok = data == nil || kind == '{'
	case packetDisconnect:
		ok = data == nil
	case packetConnectError:
		ok = kind == '"' || kind == '{'
	case packetEvent:
		_, err := eventName(data)
		ok = err == nil
	case packetAck:
		ok = kind == '['
	}
	if !ok {
		return invalid("invalid payload")
	}
	return nil
}

// eventName returns the first element of an event payload, which must be a
// string that is not a reserved name, or a number.
func eventName(data json.RawMessage) (string, error) {
	if jsonKind(data) != '[' {
		return "", invalid("invalid payload")
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	dec.Token() // '['
	if !dec.More() {
		return "", invalid("invalid payload")
	}
	tok, err := dec.Token()
	if err != nil {
		return "", invalid("invalid payload")
	}
	switch v := tok.(type) {
	case string:
		if slices.Contains(reservedEvents, v) {
			return "", invalid("reserved event name %q", v)
		}
		return v, nil
	case json.Number:
		return v.String(), nil
	}
	return "", invalid("invalid payload")
}

// decoder reassembles packets from Engine.IO messages: a binary packet's
// text part is followed by its attachments.
type decoder struct {
	pending *packet
	need    int
}

// add feeds one Engine.IO message. It returns a packet once one is complete.
func (d *decoder) add(data []byte, binary bool) (*packet, error) {
	if binary {
		if d.pending == nil {
			return nil, invalid("got binary data when not reconstructing a packet")
		}
		d.pending.Attachments = append(d.pending.Attachments, slices.Clone(data))
		if len(d.pending.Attachments) < d.need {
			return nil, nil
		}
		p := d.pending
		d.pending = nil
		if !placeholdersValid(p.Data, len(p.Attachments)) {
			return nil, invalid("illegal attachments")
		}
		return p, nil
	}
	if d.pending != nil {
		return nil, invalid("got plaintext data when reconstructing a packet")
	}
	p, n, err := decodeText(data)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		d.pending, d.need = p, n
		p.Attachments = make([][]byte, 0, n)
		return nil, nil
	}
	return p, nil
}

// placeholdersValid reports whether every placeholder in data indexes one
// of n attachments. The reference parser refuses a packet with a dangling
// one, and handlers index attachments by it.
func placeholdersValid(data json.RawMessage, n int) bool {
	var v any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return false
	}
	var valid func(v any) bool
	valid = func(v any) bool {
		switch v := v.(type) {
		case []any:
			return !slices.ContainsFunc(v, func(e any) bool { return !valid(e) })
		case map[string]any:
			if v["_placeholder"] == true {
				num, _ := v["num"].(json.Number)
				i, err := num.Float64()
				return err == nil && i >= 0 && i < float64(n) && i == math.Trunc(i)
			}
			for _, e := range v {
				if !valid(e) {
					return false
				}
			}
		}
		return true
	}
	return valid(v)
}

// placeholder is the JSON that stands for attachment i.
func appendPlaceholder(dst []byte, i int) []byte {
	dst = append(dst, `{"_placeholder":true,"num":`...)
	dst = strconv.AppendInt(dst, int64(i), 10)
	return append(dst, '}')
}

// encodeArgs builds a JSON array from head (already-encoded elements, e.g.
// the event name) and args. A json.RawMessage is written as it is, a []byte
// becomes a binary attachment, anything else goes through encoding/json.
func encodeArgs(head []byte, args []any) (json.RawMessage, [][]byte, error) {
	buf := make([]byte, 0, 64)
	buf = append(buf, '[')
	buf = append(buf, head...)
	var attachments [][]byte
	for i, a := range args {
		if i > 0 || len(head) > 0 {
			buf = append(buf, ',')
		}
		switch v := a.(type) {
		case json.RawMessage:
			if !json.Valid(v) {
				return nil, nil, fmt.Errorf("socketio: argument %d is not valid JSON", i)
			}
			buf = append(buf, v...)
		case []byte:
			buf = appendPlaceholder(buf, len(attachments))
			attachments = append(attachments, v)
		default:
			b, err := json.Marshal(v)
			if err != nil {
				return nil, nil, fmt.Errorf("socketio: argument %d: %w", i, err)
			}
			buf = append(buf, b...)
		}
	}
	buf = append(buf, ']')
	return buf, attachments, nil
}

func encodeEvent(event string, args []any) (json.RawMessage, [][]byte, error) {
	name, err := json.Marshal(event)
	if err != nil {
		return nil, nil, err
	}
	return encodeArgs(name, args)
}

// splitArgs splits an event or ack payload into its elements.
func splitArgs(data json.RawMessage) ([]json.RawMessage, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(data, &elems); err != nil {
		return nil, invalid("invalid payload")
	}
	return elems, nil
}
