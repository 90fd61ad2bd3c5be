package redisadapter

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"
	"github.com/vmihailenco/msgpack/v5/msgpcode"

	"siogo/socketio"
)

// The Socket.IO layer keeps event payloads as JSON in which binary values are
// placeholders {"_placeholder":true,"num":i} indexing a list of attachments.
// On Redis the same payloads travel as msgpack, where binary values are
// plain bin items. This file converts between the two without losing map key
// order, and encodes and decodes the adapter's messages.

// maxDepth bounds the nesting of a decoded value, so that a hostile message
// cannot exhaust the stack.
const maxDepth = 500

var errMalformed = errors.New("redisadapter: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}

// msgpackToJSON converts one msgpack value to JSON. Binary values become
// placeholders and are appended to attachments, in document order, as the
// Socket.IO parser numbers them.
type msgpackToJSON struct {
	r           *bytes.Reader
	dec         *msgpack.Decoder
	out         []byte
	attachments [][]byte
}

func newMsgpackToJSON(b []byte) *msgpackToJSON {
	r := bytes.NewReader(b)
	return &msgpackToJSON{r: r, dec: msgpack.NewDecoder(r), out: make([]byte, 0, 2*len(b)+16)}
}

// readSized reads a str or bin value: its length header, then its bytes.
func (c *msgpackToJSON) readSized() ([]byte, error) {
	n, err := c.dec.DecodeBytesLen()
	if err != nil {
		return nil, err
	}
	return c.readBytes(n)
}

// readBytes reads n raw bytes, refusing lengths beyond what is left so that a
// forged length cannot make it allocate.
func (c *msgpackToJSON) readBytes(n int) ([]byte, error) {
	if n < 0 || n > c.r.Len() {
		return nil, malformed("length %d beyond the end of the message", n)
	}
	b := make([]byte, n)
	if err := c.dec.ReadFull(b); err != nil {
		return nil, err
	}
	return b, nil
}

func (c *msgpackToJSON) value(depth int) error {
	if depth > maxDepth {
		return malformed("nested deeper than %d", maxDepth)
	}
	code, err := c.dec.PeekCode()
	if err != nil {
		return err
	}
	switch {
	case code == msgpcode.Nil:
		c.dec.DecodeNil()
		c.out = append(c.out, "null"...)
	case code == msgpcode.False || code == msgpcode.True:
		v, err := c.dec.DecodeBool()
		if err != nil {
			return err
		}
		c.out = strconv.AppendBool(c.out, v)
	case code == msgpcode.Uint64:
		v, err := c.dec.DecodeUint64()
		if err != nil {
			return err
		}
		c.out = strconv.AppendUint(c.out, v, 10)
	case msgpcode.IsFixedNum(code), code >= msgpcode.Uint8 && code <= msgpcode.Uint32,
		code >= msgpcode.Int8 && code <= msgpcode.Int64:
		v, err := c.dec.DecodeInt64()
		if err != nil {
			return err
		}
		c.out = strconv.AppendInt(c.out, v, 10)
	case code == msgpcode.Float || code == msgpcode.Double:
		v, err := c.dec.DecodeFloat64()
		if err != nil {
			return err
		}
		c.out = appendJSNumber(c.out, v)
	case msgpcode.IsString(code):
		b, err := c.readSized()
		if err != nil {
			return err
		}
		c.out = appendJSONString(c.out, string(b))
	case msgpcode.IsBin(code):
		b, err := c.readSized()
		if err != nil {
			return err
		}
		c.out = append(c.out, `{"_placeholder":true,"num":`...)
		c.out = strconv.AppendInt(c.out, int64(len(c.attachments)), 10)
		c.out = append(c.out, '}')
		c.attachments = append(c.attachments, b)
	case msgpcode.IsFixedArray(code) || code == msgpcode.Array16 || code == msgpcode.Array32:
		n, err := c.dec.DecodeArrayLen()
		if err != nil {
			return err
		}
		c.out = append(c.out, '[')
		for i := 0; i < n; i++ {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			if err := c.value(depth + 1); err != nil {
				return err
			}
		}
		c.out = append(c.out, ']')
	case msgpcode.IsFixedMap(code) || code == msgpcode.Map16 || code == msgpcode.Map32:
		n, err := c.dec.DecodeMapLen()
		if err != nil {
			return err
		}
		c.out = append(c.out, '{')
		for i := 0; i < n; i++ {
			if i > 0 {
				c.out = append(c.out, ',')
			}
			if err := c.key(); err != nil {
				return err
			}
			c.out = append(c.out, ':')
			if err := c.value(depth + 1); err != nil {
				return err
			}
		}
		c.out = append(c.out, '}')
	case msgpcode.IsExt(code):
		id, n, err := c.dec.DecodeExtHeader()
		if err != nil {
			return err
		}
		b, err := c.readBytes(n)
		if err != nil {
			return err
		}
		// Type -1 is the msgpack timestamp, what a JavaScript Date
		// becomes; JSON gives it the form Date.prototype.toJSON has.
		// Other extension types have no JSON form.
		if t, ok := decodeTimestamp(id, b); ok {
			c.out = appendJSONString(c.out, t.UTC().Format("2006-01-02T15:04:05.000Z"))
		} else {
			c.out = append(c.out, "null"...)
		}
	default:
		return malformed("unknown msgpack code 0x%02x", code)
	}
	return nil
}

// key writes a map key. JSON keys are strings, so numbers are written in
// their decimal form, as JavaScript would.
func (c *msgpackToJSON) key() error {
	code, err := c.dec.PeekCode()
	if err != nil {
		return err
	}
	if msgpcode.IsString(code) {
		b, err := c.readSized()
		if err != nil {
			return err
		}
		c.out = appendJSONString(c.out, string(b))
		return nil
	}
	mark := len(c.out)
	if msgpcode.IsBin(code) || msgpcode.IsExt(code) || msgpcode.IsFixedArray(code) || msgpcode.IsFixedMap(code) ||
		code == msgpcode.Array16 || code == msgpcode.Array32 || code == msgpcode.Map16 || code == msgpcode.Map32 {
		return malformed("map key of code 0x%02x", code)
	}
	if err := c.value(maxDepth); err != nil {
		return err
	}
	k := string(c.out[mark:])
	c.out = appendJSONString(c.out[:mark], k)
	return nil
}

func decodeTimestamp(id int8, b []byte) (time.Time, bool) {
	if id != -1 {
		return time.Time{}, false
	}
	switch len(b) {
	case 4:
		return time.Unix(int64(be32(b)), 0), true
	case 8:
		v := uint64(be32(b))<<32 | uint64(be32(b[4:]))
		return time.Unix(int64(v&(1<<34-1)), int64(v>>34)), true
	case 12:
		sec := uint64(be32(b[4:]))<<32 | uint64(be32(b[8:]))
		return time.Unix(int64(sec), int64(be32(b))), true
	}
	return time.Time{}, false
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// appendJSNumber writes a float as JSON.stringify does: the shortest
// round-tripping form, and null for NaN and the infinities.
func appendJSNumber(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	b, _ := json.Marshal(f) // encoding/json formats floats as ES6 does
	return append(dst, b...)
}

func appendJSONString(dst []byte, s string) []byte {
	b, _ := json.Marshal(s)
	return append(dst, b...)
}

// decodeToJSON converts a whole msgpack document to JSON, with its binary
// values as placeholders indexing the returned attachments.
func decodeToJSON(b []byte) (json.RawMessage, [][]byte, error) {
	c := newMsgpackToJSON(b)
	if err := c.value(0); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, nil, malformed("truncated")
		}
		if !errors.Is(err, errMalformed) {
			err = fmt.Errorf("%w: %v", errMalformed, err)
		}
		return nil, nil, err
	}
	if c.r.Len() != 0 {
		return nil, nil, malformed("%d bytes after the value", c.r.Len())
	}
	return c.out, c.attachments, nil
}

// jsonValue is a parsed JSON value that keeps object keys in order, which
// encoding to msgpack needs (map lengths come first).
type jsonValue struct {
	kind byte // 'n'ull, 'b'ool, '0' number, 's'tring, 'a'rray, 'o'bject
	b    bool
	num  json.Number
	str  string
	keys []string
	vals []jsonValue // array elements or object values
}

func parseJSON(data []byte) (jsonValue, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	v, err := parseJSONValue(dec, 0)
	if err != nil {
		return jsonValue{}, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return jsonValue{}, malformed("data after the JSON value")
	}
	return v, nil
}

func parseJSONValue(dec *json.Decoder, depth int) (jsonValue, error) {
	if depth > maxDepth {
		return jsonValue{}, malformed("nested deeper than %d", maxDepth)
	}
	tok, err := dec.Token()
	if err != nil {
		return jsonValue{}, malformed("invalid JSON: %v", err)
	}
	switch t := tok.(type) {
	case nil:
		return jsonValue{kind: 'n'}, nil
	case bool:
		return jsonValue{kind: 'b', b: t}, nil
	case json.Number:
		return jsonValue{kind: '0', num: t}, nil
	case string:
		return jsonValue{kind: 's', str: t}, nil
	case json.Delim:
		switch t {
		case '[':
			v := jsonValue{kind: 'a'}
			for dec.More() {
				e, err := parseJSONValue(dec, depth+1)
				if err != nil {
					return jsonValue{}, err
				}
				v.vals = append(v.vals, e)
			}
			if _, err := dec.Token(); err != nil { // ']'
				return jsonValue{}, malformed("invalid JSON: %v", err)
			}
			return v, nil
		case '{':
			v := jsonValue{kind: 'o'}
			for dec.More() {
				k, err := dec.Token()
				if err != nil {
					return jsonValue{}, malformed("invalid JSON: %v", err)
				}
				e, err := parseJSONValue(dec, depth+1)
				if err != nil {
					return jsonValue{}, err
				}
				v.keys = append(v.keys, k.(string))
				v.vals = append(v.vals, e)
			}
			if _, err := dec.Token(); err != nil { // '}'
				return jsonValue{}, malformed("invalid JSON: %v", err)
			}
			return v, nil
		}
	}
	return jsonValue{}, malformed("unexpected JSON token %v", tok)
}

// placeholder returns the attachment index of a binary placeholder, which
// is, as for the Socket.IO parser, any object whose _placeholder is true.
func (v *jsonValue) placeholder() (num int64, ok bool) {
	if v.kind != 'o' {
		return 0, false
	}
	isPlaceholder := false
	num = -1
	for i, k := range v.keys {
		switch k {
		case "_placeholder":
			isPlaceholder = v.vals[i].kind == 'b' && v.vals[i].b
		case "num":
			if v.vals[i].kind == '0' {
				if n, err := v.vals[i].num.Int64(); err == nil {
					num = n
				}
			}
		}
	}
	return num, isPlaceholder
}

// encodeJSONValue writes v as msgpack the way a Node.js node encodes the
// same JavaScript value: integral numbers as ints, others as float64,
// placeholders as bin.
func encodeJSONValue(enc *msgpack.Encoder, v *jsonValue, attachments [][]byte) error {
	switch v.kind {
	case 'n':
		return enc.EncodeNil()
	case 'b':
		return enc.EncodeBool(v.b)
	case 's':
		return enc.EncodeString(v.str)
	case '0':
		return encodeNumber(enc, v.num)
	case 'a':
		if err := enc.EncodeArrayLen(len(v.vals)); err != nil {
			return err
		}
		for i := range v.vals {
			if err := encodeJSONValue(enc, &v.vals[i], attachments); err != nil {
				return err
			}
		}
		return nil
	case 'o':
		if num, ok := v.placeholder(); ok {
			if num < 0 || num >= int64(len(attachments)) {
				return fmt.Errorf("redisadapter: placeholder %d without an attachment", num)
			}
			b := attachments[num]
			if b == nil {
				b = []byte{} // EncodeBytes writes nil for a nil slice
			}
			return enc.EncodeBytes(b)
		}
		if err := enc.EncodeMapLen(len(v.keys)); err != nil {
			return err
		}
		for i, k := range v.keys {
			if err := enc.EncodeString(k); err != nil {
				return err
			}
			if err := encodeJSONValue(enc, &v.vals[i], attachments); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("redisadapter: unknown JSON value kind %q", v.kind)
}

func encodeNumber(enc *msgpack.Encoder, n json.Number) error {
	if i, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return enc.EncodeInt(i)
	}
	if u, err := strconv.ParseUint(string(n), 10, 64); err == nil {
		return enc.EncodeUint(u)
	}
	f, err := strconv.ParseFloat(string(n), 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return fmt.Errorf("redisadapter: bad number %q", n)
	}
	if f == math.Trunc(f) && math.Abs(f) < 1<<63 {
		return enc.EncodeInt(int64(f))
	}
	return enc.EncodeFloat64(f)
}

// encodeJSONTo appends the msgpack form of a JSON document.
func encodeJSONTo(enc *msgpack.Encoder, data json.RawMessage, attachments [][]byte) error {
	v, err := parseJSON(data)
	if err != nil {
		return err
	}
	return encodeJSONValue(enc, &v, attachments)
}

// roomName accepts a room as a JSON string or number: Node.js rooms may be
// numbers, and their channel and set keys use the decimal form.
type roomName string

func (r *roomName) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*r = roomName(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return malformed("room %s is neither a string nor a number", b)
	}
	*r = roomName(n.String())
	return nil
}

func toRooms(rs []roomName) []socketio.Room {
	if len(rs) == 0 {
		return nil
	}
	out := make([]socketio.Room, len(rs))
	for i, r := range rs {
		out[i] = socketio.Room(r)
	}
	return out
}

// wireOpts is the broadcast selection as it travels between nodes.
type wireOpts struct {
	Rooms  []roomName      `json:"rooms"`
	Except []roomName      `json:"except"`
	Flags  json.RawMessage `json:"flags,omitempty"`
}

// wirePacket is a Socket.IO packet as it travels between nodes: data holds
// the whole event array, [name, ...args].
type wirePacket struct {
	Type int             `json:"type"`
	Data json.RawMessage `json:"data"`
	Nsp  *string         `json:"nsp"`
}

// broadcastMessage is a decoded message from a broadcast channel.
type broadcastMessage struct {
	UID         string
	Type        int
	Nsp         string
	Data        json.RawMessage // [event, ...args], binary values as placeholders
	Attachments [][]byte
	Rooms       []socketio.Room
	Except      []socketio.Room
}

// encodeBroadcast builds the message [uid, {type, data, nsp}, {rooms, except,
// flags}] for a packet of the Socket.IO layer.
func encodeBroadcast(uid, nsp string, p *socketio.Packet, opts socketio.BroadcastOptions) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(p.Data) + 64)
	enc := msgpack.NewEncoder(&buf)
	enc.EncodeArrayLen(3)
	enc.EncodeString(uid)
	enc.EncodeMapLen(3)
	enc.EncodeString("type")
	enc.EncodeInt(int64(socketio.PacketEvent))
	enc.EncodeString("data")
	if err := encodeJSONTo(enc, p.Data, p.Attachments); err != nil {
		return nil, err
	}
	enc.EncodeString("nsp")
	enc.EncodeString(nsp)
	encodeOpts(enc, opts.Rooms, opts.Except, nil)
	return buf.Bytes(), nil
}

// encodeOpts writes {rooms, except, flags}. flags holds the keys and values
// of the flags object (e.g. "timeout", 1000), empty for none.
func encodeOpts(enc *msgpack.Encoder, rooms, except []socketio.Room, flags []any) {
	enc.EncodeMapLen(3)
	enc.EncodeString("rooms")
	enc.EncodeArrayLen(len(rooms))
	for _, r := range rooms {
		enc.EncodeString(string(r))
	}
	enc.EncodeString("except")
	enc.EncodeArrayLen(len(except))
	for _, r := range except {
		enc.EncodeString(string(r))
	}
	enc.EncodeString("flags")
	enc.EncodeMapLen(len(flags) / 2)
	for _, f := range flags {
		enc.Encode(f)
	}
}

// decodeBroadcast decodes a message from a broadcast channel. It accepts
// what Node.js nodes and emitters publish: a missing nsp means "/", missing
// rooms or except mean none.
func decodeBroadcast(b []byte) (*broadcastMessage, error) {
	doc, attachments, err := decodeToJSON(b)
	if err != nil {
		return nil, err
	}
	var parts []json.RawMessage
	if err := json.Unmarshal(doc, &parts); err != nil || len(parts) < 3 {
		return nil, malformed("a broadcast is an array [uid, packet, opts]")
	}
	m := &broadcastMessage{Attachments: attachments}
	if err := json.Unmarshal(parts[0], &m.UID); err != nil {
		return nil, malformed("uid is not a string")
	}
	var p wirePacket
	if err := json.Unmarshal(parts[1], &p); err != nil {
		return nil, malformed("packet: %v", err)
	}
	if !socketio.ValidEventData(p.Data) {
		return nil, malformed("packet data is not an event")
	}
	m.Type, m.Data, m.Nsp = p.Type, p.Data, "/"
	if p.Nsp != nil {
		m.Nsp = *p.Nsp
	}
	var o wireOpts
	if err := json.Unmarshal(parts[2], &o); err != nil {
		return nil, malformed("opts: %v", err)
	}
	m.Rooms, m.Except = toRooms(o.Rooms), toRooms(o.Except)
	return m, nil
}

// Request types, shared with the Node.js adapter.
const (
	reqSockets              = 0
	reqAllRooms             = 1
	reqRemoteJoin           = 2
	reqRemoteLeave          = 3
	reqRemoteDisconnect     = 4
	reqRemoteFetch          = 5
	reqServerSideEmit       = 6
	reqBroadcast            = 7
	reqBroadcastClientCount = 8
	reqBroadcastAck         = 9
)

// request is a message on a request or response channel. Both directions
// share it because Node.js responses carry a subset of the same fields.
type request struct {
	UID       string          `json:"uid,omitempty"`
	RequestID *string         `json:"requestId,omitempty"`
	Type      *int            `json:"type,omitempty"`
	Opts      *wireOpts       `json:"opts,omitempty"`
	Rooms     json.RawMessage `json:"rooms,omitempty"`
	Close     bool            `json:"close,omitempty"`
	Data      json.RawMessage `json:"data,omitempty"`
	Packet    json.RawMessage `json:"packet,omitempty"`
	Sockets   json.RawMessage `json:"sockets,omitempty"`
	// ClientCount answers a broadcast with acknowledgements.
	ClientCount *int `json:"clientCount,omitempty"`
	// SID and Room belong to the legacy single-socket join and leave.
	SID  string   `json:"sid,omitempty"`
	Room roomName `json:"room,omitempty"`

	// attachments are the binary values of Packet (msgpack requests only).
	attachments [][]byte
}

func (r *request) id() string {
	if r.RequestID == nil {
		return ""
	}
	return *r.RequestID
}

func (r *request) typ() int {
	if r.Type == nil {
		return -1
	}
	return *r.Type
}

// decodeRequest decodes a request or response: JSON when it starts with
// "{", msgpack otherwise, as the Node.js adapter sniffs it.
func decodeRequest(b []byte) (*request, error) {
	doc := json.RawMessage(b)
	var attachments [][]byte
	if len(b) == 0 || b[0] != '{' {
		var err error
		doc, attachments, err = decodeToJSON(b)
		if err != nil {
			return nil, err
		}
	}
	var r request
	if err := json.Unmarshal(doc, &r); err != nil {
		return nil, malformed("request: %v", err)
	}
	r.attachments = attachments
	return &r, nil
}

// roomList decodes the rooms field of a join or leave request.
func (r *request) roomList() ([]socketio.Room, error) {
	if len(r.Rooms) == 0 {
		return nil, nil
	}
	var rooms []roomName
	if err := json.Unmarshal(r.Rooms, &rooms); err != nil {
		var one roomName
		if err := json.Unmarshal(r.Rooms, &one); err != nil {
			return nil, malformed("rooms: %v", err)
		}
		rooms = []roomName{one}
	}
	return toRooms(rooms), nil
}

// encodeBroadcastAck builds the msgpack answer {type: 9, requestId, packet}
// carrying one client's acknowledgement of a broadcast.
func encodeBroadcastAck(requestID string, arg json.RawMessage, attachments [][]byte) ([]byte, error) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	// A client that acks without arguments acks with undefined, which
	// the Node.js encoder leaves out of the map.
	if arg == nil {
		enc.EncodeMapLen(2)
	} else {
		enc.EncodeMapLen(3)
	}
	enc.EncodeString("type")
	enc.EncodeInt(reqBroadcastAck)
	enc.EncodeString("requestId")
	enc.EncodeString(requestID)
	if arg != nil {
		enc.EncodeString("packet")
		if err := encodeJSONTo(enc, arg, attachments); err != nil {
			return nil, err
		}
	}
	return buf.Bytes(), nil
}
