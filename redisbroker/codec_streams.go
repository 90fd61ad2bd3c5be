package redisbroker

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"siogo/socketio"
)

// The messages of the Node.js Redis Streams adapter
// (@socket.io/redis-streams-adapter 0.3, on socket.io-adapter's
// ClusterAdapter). A message is {uid, nsp, type, data}:
//
//   - durable ones (broadcasts, socketsJoin/Leave, disconnectSockets) are
//     stream entries with fields uid, nsp, type (decimal) and data, which is
//     JSON, or base64 msgpack when it holds binary;
//   - ephemeral ones (fetchSockets, serverSideEmit, broadcasts with
//     acknowledgements) and every answer are msgpack maps published on
//     "socket.io#<nsp>#", answers on "socket.io#<nsp>#<requester uid>#".
//
// Our entries carry one field more, seq: the publishing node's own sequence
// number, by which a node that reads an entry twice (after a Redis restart
// made its publisher send it again) delivers it once.

// Message types of the ClusterAdapter.
const (
	msgBroadcast            = 3
	msgSocketsJoin          = 4
	msgSocketsLeave         = 5
	msgDisconnectSockets    = 6
	msgFetchSockets         = 7
	msgFetchSocketsResponse = 8
	msgServerSideEmit       = 9
	msgServerSideEmitResp   = 10
	msgBroadcastClientCount = 11
	msgBroadcastAck         = 12
)

// clusterMessage is a ClusterAdapter message with its data as JSON, binary
// values as placeholders indexing attachments.
type clusterMessage struct {
	UID         string          `json:"uid"`
	Nsp         string          `json:"nsp"`
	Type        int             `json:"type"`
	Data        json.RawMessage `json:"data,omitempty"`
	attachments [][]byte
}

// messageData is what the data of any message may hold.
type messageData struct {
	Packet      json.RawMessage `json:"packet,omitempty"`
	Opts        *wireOpts       `json:"opts,omitempty"`
	Rooms       []roomName      `json:"rooms,omitempty"`
	Close       bool            `json:"close,omitempty"`
	RequestID   *string         `json:"requestId,omitempty"`
	Sockets     json.RawMessage `json:"sockets,omitempty"`
	ClientCount *int            `json:"clientCount,omitempty"`
}

// streamEntry is a durable message as it goes into the stream.
type streamEntry struct {
	seq    uint64
	fields []any // uid, nsp, type, data and seq, as XADD arguments
	// b is this node's broadcast, handed back when the entry is read.
	b  *socketio.Broadcast
	at time.Time
}

// entryFields builds the fields of a stream entry. data is JSON unless
// attachments are given, when it is base64 msgpack.
func entryFields(uid, nsp string, typ int, data json.RawMessage, attachments [][]byte, seq uint64) ([]any, error) {
	value := string(data)
	if len(attachments) > 0 {
		var buf bytes.Buffer
		if err := encodeJSONTo(msgpack.NewEncoder(&buf), data, attachments); err != nil {
			return nil, err
		}
		value = base64.StdEncoding.EncodeToString(buf.Bytes())
	}
	return []any{"uid", uid, "nsp", nsp, "type", strconv.Itoa(typ), "data", value, "seq", strconv.FormatUint(seq, 10)}, nil
}

// streamOpts is a selection as a Node.js node writes it into the stream.
type streamOpts struct {
	Rooms  []roomName     `json:"rooms"`
	Except []roomName     `json:"except"`
	Flags  map[string]any `json:"flags"`
}

func streamOptsOf(o socketio.BroadcastOptions) streamOpts {
	return streamOpts{fromRooms(o.Rooms), fromRooms(o.Except), map[string]any{}}
}

// broadcastData is the data of a broadcast: {packet, opts}, with the packet
// as a Node.js node writes it (type and data; the entry names the
// namespace).
func broadcastData(b *socketio.Broadcast) json.RawMessage {
	out := make([]byte, 0, len(b.Data)+96)
	out = append(out, `{"packet":{"type":2,"data":`...)
	out = append(out, b.Data...)
	out = append(out, `},"opts":`...)
	opts, _ := json.Marshal(streamOptsOf(b.Opts))
	out = append(out, opts...)
	return append(out, '}')
}

// selectionData is the data of a join, leave or disconnect.
func selectionData(m *socketio.NodeRequest) json.RawMessage {
	d := struct {
		Opts  streamOpts `json:"opts"`
		Rooms []roomName `json:"rooms,omitempty"`
		Close *bool      `json:"close,omitempty"`
	}{Opts: streamOptsOf(m.Opts)}
	switch m.Type {
	case socketio.RequestSocketsJoin, socketio.RequestSocketsLeave:
		d.Rooms = fromRooms(m.Rooms)
	case socketio.RequestDisconnectSockets:
		d.Close = &m.Close
	}
	b, _ := json.Marshal(d)
	return b
}

// decodeEntryData decodes the data field of a stream entry.
func decodeEntryData(value string) (json.RawMessage, [][]byte, error) {
	if len(value) > 0 && value[0] == '{' {
		if !json.Valid([]byte(value)) {
			return nil, nil, malformed("entry data is not JSON")
		}
		return json.RawMessage(value), nil, nil
	}
	raw, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return nil, nil, malformed("entry data is neither JSON nor base64")
	}
	return decodeToJSON(raw)
}

// entry is a decoded stream entry.
type entry struct {
	id          string
	uid, nsp    string
	typ         int
	seq         uint64 // 0 for entries of Node.js nodes
	data        json.RawMessage
	attachments [][]byte
}

// parseEntry reads the fields of a stream entry, as redigo returns them.
func parseEntry(id string, fields []string) (*entry, error) {
	if len(fields)%2 != 0 {
		return nil, malformed("odd number of entry fields")
	}
	e := &entry{id: id}
	var data string
	for i := 0; i < len(fields); i += 2 {
		v := fields[i+1]
		switch fields[i] {
		case "uid":
			e.uid = v
		case "nsp":
			e.nsp = v
		case "type":
			t, err := strconv.Atoi(v)
			if err != nil {
				return nil, malformed("entry type %q", v)
			}
			e.typ = t
		case "data":
			data = v
		case "seq":
			n, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, malformed("entry seq %q", v)
			}
			e.seq = n
		}
	}
	if data != "" {
		var err error
		if e.data, e.attachments, err = decodeEntryData(data); err != nil {
			return nil, err
		}
	}
	return e, nil
}

// broadcast decodes a broadcast entry's data.
func (e *entry) broadcast() (*socketio.Broadcast, error) {
	var d messageData
	if err := json.Unmarshal(e.data, &d); err != nil {
		return nil, malformed("broadcast data: %v", err)
	}
	var p wirePacket
	if err := json.Unmarshal(d.Packet, &p); err != nil {
		return nil, malformed("packet: %v", err)
	}
	if p.Type != packetEvent && p.Type != packetBinaryEvent || !isEvent(p.Data) {
		return nil, malformed("packet is not an event")
	}
	return &socketio.Broadcast{Namespace: e.nsp, Data: p.Data, Attachments: e.attachments, Opts: d.Opts.options()}, nil
}

// request decodes a join, leave or disconnect entry.
func (e *entry) request() (*socketio.NodeRequest, error) {
	var d messageData
	if err := json.Unmarshal(e.data, &d); err != nil {
		return nil, malformed("entry data: %v", err)
	}
	m := &socketio.NodeRequest{Namespace: e.nsp, From: e.uid, Opts: d.Opts.options(), Rooms: toRooms(d.Rooms), Close: d.Close}
	switch e.typ {
	case msgSocketsJoin:
		m.Type = socketio.RequestSocketsJoin
	case msgSocketsLeave:
		m.Type = socketio.RequestSocketsLeave
	default:
		m.Type = socketio.RequestDisconnectSockets
	}
	return m, nil
}

// encodeClusterMessage builds an ephemeral message or an answer:
// msgpack {type, data, uid, nsp}.
func encodeClusterMessage(m *clusterMessage) ([]byte, error) {
	doc, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := encodeJSONTo(msgpack.NewEncoder(&buf), doc, m.attachments); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// decodeClusterMessage decodes an ephemeral message or an answer.
func decodeClusterMessage(b []byte) (*clusterMessage, error) {
	doc, attachments, err := decodeToJSON(b)
	if err != nil {
		return nil, err
	}
	var m clusterMessage
	if err := json.Unmarshal(doc, &m); err != nil {
		return nil, malformed("message: %v", err)
	}
	m.attachments = attachments
	return &m, nil
}

// ephemeral builds the message for a request that goes over pub/sub.
func ephemeral(uid string, m *socketio.NodeRequest) (*clusterMessage, error) {
	cm := &clusterMessage{UID: uid, Nsp: m.Namespace, attachments: m.Attachments}
	var data any
	switch m.Type {
	case socketio.RequestFetchSockets:
		cm.Type = msgFetchSockets
		data = map[string]any{"opts": wireOptsOf(m.Opts), "requestId": m.RequestID}
	case socketio.RequestServerSideEmit:
		cm.Type = msgServerSideEmit
		d := map[string]any{"packet": m.Data}
		if m.RequestID != "" {
			d["requestId"] = m.RequestID
		}
		data = d
	default:
		return nil, malformed("no message of this adapter carries request type %d", m.Type)
	}
	b, err := json.Marshal(data)
	if err != nil {
		return nil, err
	}
	cm.Data = b
	return cm, nil
}

// nodeRequest turns another node's ephemeral message into what the
// Socket.IO layer handles; nil for types it has nothing to do with.
func (cm *clusterMessage) nodeRequest() (*socketio.NodeRequest, error) {
	var d messageData
	if len(cm.Data) > 0 {
		if err := json.Unmarshal(cm.Data, &d); err != nil {
			return nil, malformed("message data: %v", err)
		}
	}
	m := &socketio.NodeRequest{Namespace: cm.Nsp, From: cm.UID, Opts: d.Opts.options()}
	if d.RequestID != nil {
		m.RequestID = *d.RequestID
	}
	switch cm.Type {
	case msgFetchSockets:
		m.Type = socketio.RequestFetchSockets
	case msgServerSideEmit:
		if !isEvent(d.Packet) {
			return nil, malformed("serverSideEmit packet is not [event, ...args]")
		}
		m.Type, m.Data = socketio.RequestServerSideEmit, d.Packet
	case msgBroadcast:
		if d.RequestID == nil {
			return nil, malformed("broadcast over pub/sub without a requestId")
		}
		var p wirePacket
		if err := json.Unmarshal(d.Packet, &p); err != nil || !isEvent(p.Data) {
			return nil, malformed("broadcast packet is not an event")
		}
		m.Type, m.Data, m.Attachments, m.Timeout = socketio.RequestBroadcastWithAck, p.Data, cm.attachments, d.Opts.timeout()
	default:
		return nil, nil
	}
	return m, nil
}

// nodeReply turns an answer into what the Socket.IO layer collects.
func (cm *clusterMessage) nodeReply() (*socketio.NodeReply, error) {
	var d messageData
	if err := json.Unmarshal(cm.Data, &d); err != nil {
		return nil, malformed("answer data: %v", err)
	}
	r := &socketio.NodeReply{Namespace: cm.Nsp}
	if d.RequestID != nil {
		r.RequestID = *d.RequestID
	}
	switch cm.Type {
	case msgFetchSocketsResponse:
		r.Type = socketio.ReplyFetchSockets
		if len(d.Sockets) > 0 {
			if err := json.Unmarshal(d.Sockets, &r.Sockets); err != nil {
				return nil, malformed("fetchSockets answer: %v", err)
			}
		}
	case msgServerSideEmitResp:
		r.Type, r.Data = socketio.ReplyServerSideEmit, d.Packet
	case msgBroadcastClientCount:
		r.Type = socketio.ReplyBroadcastClientCount
		if d.ClientCount != nil {
			r.ClientCount = *d.ClientCount
		}
	case msgBroadcastAck:
		r.Type, r.Data, r.Attachments = socketio.ReplyBroadcastAck, d.Packet, cm.attachments
	default:
		return nil, nil
	}
	return r, nil
}

// answer builds this node's answer to a request.
func answer(uid string, r *socketio.NodeReply) (*clusterMessage, error) {
	cm := &clusterMessage{UID: uid, Nsp: r.Namespace}
	d := map[string]any{"requestId": r.RequestID}
	switch r.Type {
	case socketio.ReplyFetchSockets:
		cm.Type = msgFetchSocketsResponse
		sockets := r.Sockets
		if sockets == nil {
			sockets = []socketio.RemoteSocket{}
		}
		d["sockets"] = sockets
	case socketio.ReplyServerSideEmit:
		cm.Type = msgServerSideEmitResp
		if r.Data != nil {
			d["packet"] = r.Data
		}
	case socketio.ReplyBroadcastClientCount:
		cm.Type = msgBroadcastClientCount
		d["clientCount"] = r.ClientCount
	case socketio.ReplyBroadcastAck:
		cm.Type, cm.attachments = msgBroadcastAck, r.Attachments
		if r.Data != nil {
			d["packet"] = r.Data
		}
	default:
		return nil, malformed("no answer of this adapter carries reply type %d", r.Type)
	}
	b, err := json.Marshal(d)
	if err != nil {
		return nil, err
	}
	cm.Data = b
	return cm, nil
}

// sessionValue is a stored session as the Node.js adapter encodes it:
// base64 msgpack {sid, pid, rooms, data}. expires is ours; the Node.js
// adapter ignores it.
func encodeSession(s *socketio.SavedSession) (string, error) {
	doc, err := json.Marshal(struct {
		SID     socketio.SocketID `json:"sid"`
		PID     string            `json:"pid"`
		Rooms   []roomName        `json:"rooms"`
		Data    json.RawMessage   `json:"data"`
		Expires int64             `json:"expires"`
	}{s.SID, s.PID, fromRooms(s.Rooms), s.Data, s.Expires.UnixMilli()})
	if err != nil {
		return "", err
	}
	var buf bytes.Buffer
	if err := encodeJSONTo(msgpack.NewEncoder(&buf), doc, nil); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

func decodeSession(value []byte) (*socketio.SavedSession, error) {
	raw, err := base64.StdEncoding.DecodeString(string(value))
	if err != nil {
		return nil, malformed("session is not base64")
	}
	doc, _, err := decodeToJSON(raw)
	if err != nil {
		return nil, err
	}
	var v struct {
		SID     socketio.SocketID `json:"sid"`
		PID     string            `json:"pid"`
		Rooms   []roomName        `json:"rooms"`
		Data    json.RawMessage   `json:"data"`
		Expires int64             `json:"expires"`
	}
	if err := json.Unmarshal(doc, &v); err != nil || v.SID == "" {
		return nil, malformed("session: %s", doc)
	}
	s := &socketio.SavedSession{SID: v.SID, PID: v.PID, Rooms: toRooms(v.Rooms), Data: v.Data}
	if v.Expires > 0 {
		s.Expires = time.UnixMilli(v.Expires)
	}
	if len(s.Data) == 0 || string(s.Data) == "null" {
		s.Data = json.RawMessage("{}")
	}
	return s, nil
}
