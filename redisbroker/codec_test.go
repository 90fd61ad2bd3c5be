package redisbroker

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"

	"siogo/socketio"
)

// The hex strings below are what the Node.js side produces: the first row is
// the capture in the protocol notes (a Node.js node broadcasting a Buffer to
// room1 except room2); the others were encoded with the adapter's encoder,
// notepack.io 3.0.1, from the JavaScript values in the comments.

func hexDecode(s string) ([]byte, error) { return hex.DecodeString(s) }

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var bytes300 = bytes.Repeat([]byte{7}, 300)

var broadcastRows = []struct {
	name string
	hex  string
	want broadcastMessage
	// encodable: our encoder produces the same bytes from want (it writes
	// opts as {rooms, except, flags: {}}, as a Node.js node does).
	encodable bool
}{
	{
		name: "protocol notes capture",
		hex:  "93a646363972365a83a47479706502a46461746192a362696ec403010203a36e7370a12f83a5726f6f6d7391a5726f6f6d31a665786365707491a5726f6f6d32a5666c61677380",
		want: broadcastMessage{UID: "F69r6Z", Type: 2, Nsp: "/",
			Data:        json.RawMessage(`["bin",{"_placeholder":true,"num":0}]`),
			Attachments: [][]byte{{1, 2, 3}}, Rooms: []socketio.Room{"room1"}, Except: []socketio.Room{"room2"}},
		encodable: true,
	},
	{
		// emitter.emit("clientReceiver", {clientID: 7, message: "héllo €😀"})
		name: "emitter",
		hex:  "93a7656d697474657283a47479706502a46461746192ae636c69656e74526563656976657282a8636c69656e74494407a76d657373616765ae68c3a96c6c6f20e282acf09f9880a36e7370a12f83a5726f6f6d7390a5666c61677380a665786365707490",
		want: broadcastMessage{UID: "emitter", Type: 2, Nsp: "/",
			Data: json.RawMessage(`["clientReceiver",{"clientID":7,"message":"héllo €😀"}]`)},
	},
	{
		// every msgpack number width, floats, booleans, null, nesting;
		// flags {volatile: true}
		name: "numbers",
		hex:  "93a66e3064335a7883a47479706502a464617461dc0013a16e01ff7fcc80ccffcd0100ce00010000e0d0dfd1ff7fcb3ff8000000000000cf0000010000000000d3ffffff0000000000cbbfd0000000000000c3c2c081a161920181a162a178a36e7370a12f83a5726f6f6d7392a27231a27232a665786365707490a5666c61677381a8766f6c6174696c65c3",
		want: broadcastMessage{UID: "n0d3Zx", Type: 2, Nsp: "/",
			Data:  json.RawMessage(`["n",1,-1,127,128,255,256,65536,-32,-33,-129,1.5,1099511627776,-1099511627776,-0.25,true,false,null,{"a":[1,{"b":"x"}]}]`),
			Rooms: []socketio.Room{"r1", "r2"}},
	},
	{
		// a Date argument: msgpack timestamp extension -1
		name: "date",
		hex:  "93a664347465556483a47479706502a46461746192a164d7ffa1a5d60065937d25a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
		want: broadcastMessage{UID: "d4teUd", Type: 2, Nsp: "/", Data: json.RawMessage(`["d","2024-01-02T03:04:05.678Z"]`)},
	},
	{
		// Buffers nested in objects and arrays, one of 300 bytes (bin 16),
		// on namespace /custom
		name: "nested binary",
		hex:  "93a662316e55696483a47479706502a46461746193a362696e82a66e6573746564c402ff00a46c6973749201c4010ac5012c" + strings.Repeat("07", 300) + "a36e7370a72f637573746f6d83a5726f6f6d7390a665786365707491a178a5666c61677380",
		want: broadcastMessage{UID: "b1nUid", Type: 2, Nsp: "/custom",
			Data:        json.RawMessage(`["bin",{"nested":{"_placeholder":true,"num":0},"list":[1,{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":2}]`),
			Attachments: [][]byte{{0xff, 0x00}, {0x0a}, bytes300}, Except: []socketio.Room{"x"}},
		encodable: true,
	},
	{
		// strings of 40 (str 8) and 300 (str 16) bytes
		name: "long strings",
		hex:  "93a64c306e67537483a47479706502a46461746193a173d928" + strings.Repeat("61", 40) + "da012c" + strings.Repeat("62", 300) + "a36e7370a12f83a5726f6f6d7390a665786365707490a5666c61677380",
		want: broadcastMessage{UID: "L0ngSt", Type: 2, Nsp: "/",
			Data: json.RawMessage(`["s","` + strings.Repeat("a", 40) + `","` + strings.Repeat("b", 300) + `"]`)},
		encodable: true,
	},
}

func TestDecodeBroadcast(t *testing.T) {
	for _, row := range broadcastRows {
		t.Run(row.name, func(t *testing.T) {
			got, err := decodeBroadcast(mustHex(t, row.hex))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(*got, row.want) {
				t.Errorf("decoded\n got %+v\nwant %+v", *got, row.want)
			}
		})
	}
}

func TestEncodeBroadcastMatchesNode(t *testing.T) {
	for _, row := range broadcastRows {
		if !row.encodable {
			continue
		}
		t.Run(row.name, func(t *testing.T) {
			want := row.want
			got, err := encodeBroadcast(want.UID, want.broadcast())
			if err != nil {
				t.Fatal(err)
			}
			if hex.EncodeToString(got) != row.hex {
				t.Errorf("encoded\n got %x\nwant %s", got, row.hex)
			}
		})
	}
}

// TestJSONToMsgpack checks the encoding of event payloads against the bytes
// notepack.io gives the same JavaScript values.
func TestJSONToMsgpack(t *testing.T) {
	rows := []struct {
		name        string
		json        string
		attachments [][]byte
		hex         string
	}{
		{"numbers", `["n",1,-1,127,128,255,256,65536,-32,-33,-129,1.5,1099511627776,-1099511627776,-0.25,true,false,null,{"a":[1,{"b":"x"}]}]`, nil,
			"dc0013a16e01ff7fcc80ccffcd0100ce00010000e0d0dfd1ff7fcb3ff8000000000000cf0000010000000000d3ffffff0000000000cbbfd0000000000000c3c2c081a161920181a162a178"},
		{"placeholders", `["bin",{"nested":{"_placeholder":true,"num":0},"list":[1,{"_placeholder":true,"num":1}]},{"_placeholder":true,"num":2}]`,
			[][]byte{{0xff, 0x00}, {0x0a}, {}}, "93a362696e82a66e6573746564c402ff00a46c6973749201c4010ac400"},
		{"key order and unicode keys", `{"é":"ü","":[],"k":{}}`, nil, "83a2c3a9a2c3bca090a16b80"},
		// JavaScript numbers: integral values are ints whatever their
		// JSON spelling.
		{"integral spellings", `[1.0,1e3,-0,2.5e1]`, nil, "9401cd03e80019"},
		{"float beyond int64", `[1e21]`, nil, "91cb444b1ae4d6e2ef50"},
		{"uint64", `[18446744073709551615]`, nil, "91cfffffffffffffffff"},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := encodeJSONTo(msgpack.NewEncoder(&buf), json.RawMessage(row.json), row.attachments); err != nil {
				t.Fatal(err)
			}
			if got := hex.EncodeToString(buf.Bytes()); got != row.hex {
				t.Errorf("got %s\nwant %s", got, row.hex)
			}
		})
	}
}

func TestJSONToMsgpackRejectsBadPlaceholders(t *testing.T) {
	for _, data := range []string{
		`["x",{"_placeholder":true,"num":1}]`,
		`["x",{"_placeholder":true,"num":-1}]`,
		`["x",{"_placeholder":true}]`,
		`["x",{"_placeholder":true,"num":"0"}]`,
		`["x"`,
		`["x"] 1`,
	} {
		var buf bytes.Buffer
		if err := encodeJSONTo(msgpack.NewEncoder(&buf), json.RawMessage(data), [][]byte{{1}}); err == nil {
			t.Errorf("%s: encoded without error", data)
		}
	}
}

// TestMsgpackJSONRoundTrip converts JSON with placeholders to msgpack and
// back.
func TestMsgpackJSONRoundTrip(t *testing.T) {
	for _, data := range []string{
		`["chat",{"clientID":3,"message":"a \"quoted\" \\ line\n\u0001 <b>&"}]`,
		`["bin",{"_placeholder":true,"num":0},[{"_placeholder":true,"num":1}],{"deep":{"deeper":[null,true,false,-1.25e-7,9007199254740993]}}]`,
		`["empty",[],{},"",0]`,
	} {
		attachments := [][]byte{{0, 1, 2}, {}}
		var buf bytes.Buffer
		if err := encodeJSONTo(msgpack.NewEncoder(&buf), json.RawMessage(data), attachments); err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		got, gotAtt, err := decodeToJSON(buf.Bytes())
		if err != nil {
			t.Fatalf("%s: %v", data, err)
		}
		var want, back any
		json.Unmarshal([]byte(data), &want)
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("%s: decoded invalid JSON %s", data, got)
		}
		if !reflect.DeepEqual(want, back) {
			t.Errorf("round trip\n got %s\nwant %s", got, data)
		}
		if strings.Contains(data, "_placeholder") && !reflect.DeepEqual(gotAtt, attachments) {
			t.Errorf("attachments: got %v, want %v", gotAtt, attachments)
		}
	}
}

func TestDecodeRequest(t *testing.T) {
	rows := []struct {
		name  string
		in    []byte
		typ   int
		id    string
		uid   string
		check func(t *testing.T, r *request)
	}{
		{
			name: "fetchSockets (protocol notes)",
			in:   []byte(`{"uid":"Ab3dEf","requestId":"Xy9Z01","type":5,"opts":{"rooms":[],"except":[]}}`),
			typ:  reqRemoteFetch, id: "Xy9Z01", uid: "Ab3dEf",
			check: func(t *testing.T, r *request) {
				if r.Opts == nil || len(r.Opts.Rooms) != 0 || len(r.Opts.Except) != 0 {
					t.Errorf("opts = %+v", r.Opts)
				}
			},
		},
		{
			name: "allRooms",
			in:   []byte(`{"uid":"Ab3dEf","requestId":"r00m5x","type":1}`),
			typ:  reqAllRooms, id: "r00m5x", uid: "Ab3dEf",
		},
		{
			name: "serverSideEmit without ack",
			in:   []byte(`{"uid":"Ab3dEf","type":6,"data":["myServerEvent","x"]}`),
			typ:  reqServerSideEmit, uid: "Ab3dEf",
			check: func(t *testing.T, r *request) {
				if r.RequestID != nil || string(r.Data) != `["myServerEvent","x"]` {
					t.Errorf("requestId %v, data %s", r.RequestID, r.Data)
				}
			},
		},
		{
			name: "socketsJoin with a numeric room",
			in:   []byte(`{"uid":"Ab3dEf","type":2,"opts":{"rooms":["room1",42],"except":[]},"rooms":["room9"]}`),
			typ:  reqRemoteJoin, uid: "Ab3dEf",
			check: func(t *testing.T, r *request) {
				rooms, err := r.roomList()
				if err != nil || !reflect.DeepEqual(rooms, []socketio.Room{"room9"}) {
					t.Errorf("rooms %v, %v", rooms, err)
				}
				if got := r.Opts.options().Rooms; !reflect.DeepEqual(got, []socketio.Room{"room1", "42"}) {
					t.Errorf("opts rooms %v", got)
				}
			},
		},
		{
			name: "disconnectSockets from an emitter (no uid)",
			in:   []byte(`{"type":4,"opts":{"rooms":[],"except":["vip"]},"close":true}`),
			typ:  reqRemoteDisconnect,
			check: func(t *testing.T, r *request) {
				if !r.Close || !reflect.DeepEqual(r.Opts.options().Except, []socketio.Room{"vip"}) {
					t.Errorf("close %v, opts %+v", r.Close, r.Opts)
				}
			},
		},
		{
			// io.timeout(1000).emit("question", Buffer.from([1, 2]), cb)
			// as msgpack
			name: "broadcast with ack (msgpack)",
			in:   mustHex(t, "85a3756964a641636b313233a9726571756573744964a6727131323334a47479706507a67061636b657483a47479706502a46461746192a87175657374696f6ec4020102a36e7370a12fa46f70747383a5726f6f6d7390a665786365707490a5666c61677381a774696d656f7574cd03e8"),
			typ:  reqBroadcast, id: "rq1234", uid: "Ack123",
			check: func(t *testing.T, r *request) {
				var p wirePacket
				if err := json.Unmarshal(r.Packet, &p); err != nil {
					t.Fatal(err)
				}
				if string(p.Data) != `["question",{"_placeholder":true,"num":0}]` || !reflect.DeepEqual(r.attachments, [][]byte{{1, 2}}) {
					t.Errorf("data %s, attachments %v", p.Data, r.attachments)
				}
				if string(r.Opts.Flags) != `{"timeout":1000}` {
					t.Errorf("flags %s", r.Opts.Flags)
				}
			},
		},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			r, err := decodeRequest(row.in)
			if err != nil {
				t.Fatal(err)
			}
			if r.typ() != row.typ || r.id() != row.id || r.UID != row.uid {
				t.Errorf("type %d id %q uid %q, want %d %q %q", r.typ(), r.id(), r.UID, row.typ, row.id, row.uid)
			}
			if row.check != nil {
				row.check(t, r)
			}
		})
	}
}

func TestEncodeBroadcastAckMatchesNode(t *testing.T) {
	// {type: 9, requestId: "rq1234", packet: {answer: Buffer.from([9])}}
	const want = "83a47479706509a9726571756573744964a6727131323334a67061636b657481a6616e73776572c40109"
	got, err := encodeBroadcastAck("rq1234", json.RawMessage(`{"answer":{"_placeholder":true,"num":0}}`), [][]byte{{9}})
	if err != nil {
		t.Fatal(err)
	}
	if hex.EncodeToString(got) != want {
		t.Errorf("got %x\nwant %s", got, want)
	}
}

func TestDecodeMalformed(t *testing.T) {
	rows := map[string]string{
		"empty":                 "",
		"not an array":          "a3616263",
		"array of two":          "92a17880",
		"truncated":             "93a646363972365a83a474797065",
		"trailing bytes":        broadcastRows[0].hex + "00",
		"reserved code":         "c1",
		"bin longer than input": "93a175c6ffffffff",
		"ext longer than input": "93a175c9fffffff0ff",
		"str longer than input": "93a175dbffffffff",
		"map key is an array":   "93a17581900080",
		"data not an event":     "93a17583a474797065" + "02a464617461" + "90a36e7370a12f80",
		"event name is a map":   "93a17583a474797065" + "02a464617461" + "9180a36e7370a12f80",
		"uid not a string":      "930183a474797065" + "02a464617461" + "91a178a36e7370a12f80",
		"rooms not a list":      "93a17583a474797065" + "02a464617461" + "91a178a36e7370a12f81a5726f6f6d73c3",
		"deep nesting":          strings.Repeat("91", maxDepth+10) + "c0",
	}
	for name, h := range rows {
		t.Run(name, func(t *testing.T) {
			b, err := hex.DecodeString(h)
			if err != nil {
				t.Fatal(err)
			}
			m, err := decodeBroadcast(b)
			if err == nil {
				t.Fatalf("decoded %+v", m)
			}
			if !errors.Is(err, errMalformed) {
				t.Errorf("error %v does not wrap errMalformed", err)
			}
		})
	}
}
