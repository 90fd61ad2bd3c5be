package redisbroker

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"siogo/socketio"
)

// The messages of the Node.js Redis adapter (@socket.io/redis-adapter v8):
// broadcasts are msgpack [uid, packet, opts]; requests and their answers are
// JSON, except a broadcast with acknowledgements and each acknowledgement,
// which are msgpack maps.

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

func fromRooms(rs []socketio.Room) []roomName {
	out := make([]roomName, len(rs))
	for i, r := range rs {
		out[i] = roomName(r)
	}
	return out
}

// wireOpts is the broadcast selection as it travels between nodes.
type wireOpts struct {
	Rooms  []roomName      `json:"rooms"`
	Except []roomName      `json:"except"`
	Flags  json.RawMessage `json:"flags,omitempty"`
}

func (o *wireOpts) options() socketio.BroadcastOptions {
	if o == nil {
		return socketio.BroadcastOptions{}
	}
	return socketio.BroadcastOptions{Rooms: toRooms(o.Rooms), Except: toRooms(o.Except)}
}

// timeout reads flags.timeout, in milliseconds.
func (o *wireOpts) timeout() time.Duration {
	if o == nil || len(o.Flags) == 0 {
		return 0
	}
	var flags struct {
		Timeout *float64 `json:"timeout"`
	}
	if json.Unmarshal(o.Flags, &flags) != nil || flags.Timeout == nil || *flags.Timeout <= 0 {
		return 0
	}
	return time.Duration(*flags.Timeout * float64(time.Millisecond))
}

func wireOptsOf(opts socketio.BroadcastOptions) *wireOpts {
	return &wireOpts{Rooms: fromRooms(opts.Rooms), Except: fromRooms(opts.Except)}
}

// wirePacket is a Socket.IO packet as it travels between nodes: data holds
// the whole event array, [name, ...args].
type wirePacket struct {
	Type int             `json:"type"`
	Data json.RawMessage `json:"data"`
	Nsp  *string         `json:"nsp"`
}

// Socket.IO packet types a broadcast may carry.
const (
	packetEvent       = 2
	packetBinaryEvent = 5
)

// isEvent reports whether data is an event array: [name, ...args] whose
// name is a string or a number. What a name may be beyond that is the
// Socket.IO layer's to check.
func isEvent(data json.RawMessage) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('[') || !dec.More() {
		return false
	}
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil {
		return false
	}
	switch tok.(type) {
	case string, json.Number:
		return true
	}
	return false
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

func (m *broadcastMessage) broadcast() *socketio.Broadcast {
	return &socketio.Broadcast{Namespace: m.Nsp, Data: m.Data, Attachments: m.Attachments,
		Opts: socketio.BroadcastOptions{Rooms: m.Rooms, Except: m.Except}}
}

// encodeBroadcast builds the message [uid, {type, data, nsp}, {rooms, except,
// flags}].
func encodeBroadcast(uid string, b *socketio.Broadcast) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(b.Data) + 64)
	enc := msgpack.NewEncoder(&buf)
	enc.EncodeArrayLen(3)
	enc.EncodeString(uid)
	enc.EncodeMapLen(3)
	enc.EncodeString("type")
	enc.EncodeInt(packetEvent)
	enc.EncodeString("data")
	if err := encodeJSONTo(enc, b.Data, b.Attachments); err != nil {
		return nil, err
	}
	enc.EncodeString("nsp")
	enc.EncodeString(b.Namespace)
	encodeOpts(enc, b.Opts.Rooms, b.Opts.Except, nil)
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

// peekUID returns the uid at the head of a broadcast, without decoding the
// rest: a node skips its own broadcasts coming back from Redis.
func peekUID(b []byte) string {
	dec := msgpack.NewDecoder(bytes.NewReader(b))
	if n, err := dec.DecodeArrayLen(); err != nil || n < 1 {
		return ""
	}
	uid, _ := dec.DecodeString()
	return uid
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
	if !isEvent(p.Data) {
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

func ptr[T any](v T) *T { return &v }

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

// message turns a request of another node into what the Socket.IO layer
// handles. It returns nil for the types this node has nothing to do with.
func (r *request) message(nsp string) (*socketio.NodeRequest, error) {
	m := &socketio.NodeRequest{Namespace: nsp, From: r.UID, RequestID: r.id(), Opts: r.Opts.options(), Close: r.Close}
	switch r.typ() {
	case reqAllRooms:
		m.Type = socketio.RequestAllRooms
	case reqRemoteJoin, reqRemoteLeave:
		m.Type = socketio.RequestSocketsJoin
		if r.typ() == reqRemoteLeave {
			m.Type = socketio.RequestSocketsLeave
		}
		rooms, err := r.roomList()
		if err != nil {
			return nil, err
		}
		m.Rooms = rooms
	case reqRemoteDisconnect:
		m.Type = socketio.RequestDisconnectSockets
	case reqRemoteFetch:
		m.Type = socketio.RequestFetchSockets
	case reqServerSideEmit:
		m.Type = socketio.RequestServerSideEmit
		if !isEvent(r.Data) {
			return nil, malformed("serverSideEmit data is not [event, ...args]")
		}
		m.Data = r.Data
	case reqBroadcast:
		var p wirePacket
		if err := json.Unmarshal(r.Packet, &p); err != nil {
			return nil, malformed("packet: %v", err)
		}
		if !isEvent(p.Data) {
			return nil, malformed("packet data is not an event")
		}
		m.Type = socketio.RequestBroadcastWithAck
		m.Data, m.Attachments, m.Timeout = p.Data, r.attachments, r.Opts.timeout()
	default:
		return nil, nil // types of other versions, or answers
	}
	return m, nil
}

// encodeMessage builds the request for a message of this node.
func encodeMessage(uid string, m *socketio.NodeRequest) ([]byte, error) {
	r := &request{UID: uid}
	if m.RequestID != "" {
		r.RequestID = ptr(m.RequestID)
	}
	switch m.Type {
	case socketio.RequestAllRooms:
		r.Type = ptr(reqAllRooms)
	case socketio.RequestSocketsJoin, socketio.RequestSocketsLeave:
		r.Type = ptr(reqRemoteJoin)
		if m.Type == socketio.RequestSocketsLeave {
			r.Type = ptr(reqRemoteLeave)
		}
		r.Opts = wireOptsOf(m.Opts)
		r.Rooms, _ = json.Marshal(fromRooms(m.Rooms))
	case socketio.RequestDisconnectSockets:
		r.Type, r.Opts, r.Close = ptr(reqRemoteDisconnect), wireOptsOf(m.Opts), m.Close
	case socketio.RequestFetchSockets:
		r.Type, r.Opts = ptr(reqRemoteFetch), wireOptsOf(m.Opts)
	case socketio.RequestServerSideEmit:
		r.Type, r.Data = ptr(reqServerSideEmit), m.Data
	default:
		return nil, malformed("no request of this adapter carries message type %d", m.Type)
	}
	return json.Marshal(r)
}

// response turns an answer to one of this node's requests into what the
// Socket.IO layer collects. Node.js answers carry no type for fetchSockets
// and allRooms; the fields present say what they hold.
func (r *request) response(nsp string) (*socketio.NodeReply, error) {
	resp := &socketio.NodeReply{Namespace: nsp, RequestID: r.id(), Data: r.Data}
	if len(r.Sockets) > 0 {
		if err := json.Unmarshal(r.Sockets, &resp.Sockets); err != nil {
			return nil, malformed("fetchSockets answer: %v", err)
		}
	}
	if len(r.Rooms) > 0 {
		var rooms []roomName
		if err := json.Unmarshal(r.Rooms, &rooms); err != nil {
			return nil, malformed("allRooms answer: %v", err)
		}
		resp.Rooms = toRooms(rooms)
	}
	switch {
	case r.typ() == reqServerSideEmit:
		resp.Type = socketio.ReplyServerSideEmit
	case r.typ() == reqBroadcastClientCount:
		resp.Type = socketio.ReplyBroadcastClientCount
	case r.typ() == reqBroadcastAck:
		resp.Type, resp.Data, resp.Attachments = socketio.ReplyBroadcastAck, r.Packet, r.attachments
	case r.Sockets != nil:
		resp.Type = socketio.ReplyFetchSockets
	case r.Rooms != nil:
		resp.Type = socketio.ReplyAllRooms
	}
	return resp, nil
}

// encodeResponse builds this node's answer to a request.
func encodeResponse(r *socketio.NodeReply) ([]byte, error) {
	switch r.Type {
	case socketio.ReplyFetchSockets:
		sockets := r.Sockets
		if sockets == nil {
			sockets = []socketio.RemoteSocket{}
		}
		return json.Marshal(map[string]any{"requestId": r.RequestID, "sockets": sockets})
	case socketio.ReplyAllRooms:
		return json.Marshal(map[string]any{"requestId": r.RequestID, "rooms": fromRooms(r.Rooms)})
	case socketio.ReplyServerSideEmit:
		return json.Marshal(&request{Type: ptr(reqServerSideEmit), RequestID: ptr(r.RequestID), Data: r.Data})
	case socketio.ReplyBroadcastClientCount:
		return json.Marshal(map[string]any{"type": reqBroadcastClientCount, "requestId": r.RequestID, "clientCount": r.ClientCount})
	case socketio.ReplyBroadcastAck:
		return encodeBroadcastAck(r.RequestID, r.Data, r.Attachments)
	}
	return nil, malformed("unknown response type %d", r.Type)
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
