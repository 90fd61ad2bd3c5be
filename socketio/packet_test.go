package socketio

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"siogo/engineio"
)

// The rows are the Socket.IO packets of the protocol notes (without the
// Engine.IO "4" in front), checked in both directions.

const (
	ph0 = `{"_placeholder":true,"num":0}`
	ph1 = `{"_placeholder":true,"num":1}`
)

type packetRow struct {
	name string
	wire string
	want packet
	n    int  // attachments announced
	enc  bool // wire is the canonical encoding of want
}

var packetRows = []packetRow{
	{"event", `2["a"]`, packet{Type: packetEvent, Namespace: "/", Data: json.RawMessage(`["a"]`)}, 0, true},
	{"event with args", `2["serverReceiver","héllo €😀"]`, packet{Type: packetEvent, Namespace: "/", Data: json.RawMessage(`["serverReceiver","héllo €😀"]`)}, 0, true},
	{"numeric event name", `2[1,2]`, packet{Type: packetEvent, Namespace: "/", Data: json.RawMessage(`[1,2]`)}, 0, true},
	{"connect", `0`, packet{Type: packetConnect, Namespace: "/"}, 0, true},
	{"connect with auth", `0{"token":"123"}`, packet{Type: packetConnect, Namespace: "/", Data: json.RawMessage(`{"token":"123"}`)}, 0, true},
	{"connect to a namespace", `0/custom,`, packet{Type: packetConnect, Namespace: "/custom"}, 0, true},
	{"namespace ends the string", `0/custom`, packet{Type: packetConnect, Namespace: "/custom"}, 0, false},
	{"namespace with auth", `0/admin,{"token":"abc"}`, packet{Type: packetConnect, Namespace: "/admin", Data: json.RawMessage(`{"token":"abc"}`)}, 0, true},
	{"namespace with a query (protocol 4)", `0/admin?token=abc,`, packet{Type: packetConnect, Namespace: "/admin?token=abc"}, 0, true},
	{"connect reply", `0{"sid":"jnIA"}`, packet{Type: packetConnect, Namespace: "/", Data: json.RawMessage(`{"sid":"jnIA"}`)}, 0, true},
	{"explicit root namespace", `2/,["a"]`, packet{Type: packetEvent, Namespace: "/", Data: json.RawMessage(`["a"]`)}, 0, false},
	{"disconnect", `1`, packet{Type: packetDisconnect, Namespace: "/"}, 0, true},
	{"disconnect from a namespace", `1/admin,`, packet{Type: packetDisconnect, Namespace: "/admin"}, 0, true},
	{"event in a namespace", `2/custom,["hi",{"a":1}]`, packet{Type: packetEvent, Namespace: "/custom", Data: json.RawMessage(`["hi",{"a":1}]`)}, 0, true},
	{"event with ack id", `2456["message-with-ack",1,"2",{"3":[false]}]`, packet{Type: packetEvent, Namespace: "/", ID: 456, HasID: true, Data: json.RawMessage(`["message-with-ack",1,"2",{"3":[false]}]`)}, 0, true},
	{"ack", `3456[1,"2",{"3":[false]}]`, packet{Type: packetAck, Namespace: "/", ID: 456, HasID: true, Data: json.RawMessage(`[1,"2",{"3":[false]}]`)}, 0, true},
	{"ack id 0", `30[]`, packet{Type: packetAck, Namespace: "/", ID: 0, HasID: true, Data: json.RawMessage(`[]`)}, 0, true},
	{"ack in a namespace", `3/admin,7["x"]`, packet{Type: packetAck, Namespace: "/admin", ID: 7, HasID: true, Data: json.RawMessage(`["x"]`)}, 0, true},
	{"binary event with ack", `52-789["message-with-ack",` + ph0 + `,` + ph1 + `]`, packet{Type: packetEvent, Namespace: "/", ID: 789, HasID: true, Data: json.RawMessage(`["message-with-ack",` + ph0 + `,` + ph1 + `]`)}, 2, true},
	{"binary ack", `62-789[` + ph0 + `,` + ph1 + `]`, packet{Type: packetAck, Namespace: "/", ID: 789, HasID: true, Data: json.RawMessage(`[` + ph0 + `,` + ph1 + `]`)}, 2, true},
	{"server binary emit", `51-["bin",` + ph0 + `]`, packet{Type: packetEvent, Namespace: "/", Data: json.RawMessage(`["bin",` + ph0 + `]`)}, 1, true},
	{"binary event in a namespace", `51-/custom,["bin",` + ph0 + `]`, packet{Type: packetEvent, Namespace: "/custom", Data: json.RawMessage(`["bin",` + ph0 + `]`)}, 1, true},
	{"binary event, no attachments", `50-["a"]`, packet{Type: packetEvent, Namespace: "/", Data: json.RawMessage(`["a"]`)}, 0, false},
	{"ten attachments", `510-["a"]`, packet{Type: packetEvent, Namespace: "/", Data: json.RawMessage(`["a"]`)}, 10, true},
	{"connect error", `4/private,{"message":"not authorized","data":{"reason":"no token"}}`, packet{Type: packetConnectError, Namespace: "/private", Data: json.RawMessage(`{"message":"not authorized","data":{"reason":"no token"}}`)}, 0, true},
	{"connect error, string (protocol 4)", `4/admin,"Not authorized"`, packet{Type: packetConnectError, Namespace: "/admin", Data: json.RawMessage(`"Not authorized"`)}, 0, true},
	{"invalid namespace", `4/random,{"message":"Invalid namespace"}`, packet{Type: packetConnectError, Namespace: "/random", Data: json.RawMessage(`{"message":"Invalid namespace"}`)}, 0, true},
}

func samePacket(a, b *packet) bool {
	if a.Type != b.Type || a.Namespace != b.Namespace || a.ID != b.ID || a.HasID != b.HasID || !bytes.Equal(a.Data, b.Data) || len(a.Attachments) != len(b.Attachments) {
		return false
	}
	for i := range a.Attachments {
		if !bytes.Equal(a.Attachments[i], b.Attachments[i]) {
			return false
		}
	}
	return true
}

func fmtPacket(p *packet) string {
	if p == nil {
		return "<nil>"
	}
	return fmt.Sprintf("{type %d nsp %q id %d/%v data %s, %d attachments}", p.Type, p.Namespace, p.ID, p.HasID, p.Data, len(p.Attachments))
}

func TestDecodeText(t *testing.T) {
	for _, row := range packetRows {
		t.Run(row.name, func(t *testing.T) {
			got, n, err := decodeText([]byte(row.wire))
			if err != nil {
				t.Fatalf("DecodeText(%q): %v", row.wire, err)
			}
			if !samePacket(got, &row.want) || n != row.n {
				t.Errorf("DecodeText(%q) = %s with %d attachments, want %s with %d", row.wire, fmtPacket(got), n, fmtPacket(&row.want), row.n)
			}
		})
	}
}

func TestAppendText(t *testing.T) {
	for _, row := range packetRows {
		if !row.enc {
			continue
		}
		t.Run(row.name, func(t *testing.T) {
			p := row.want
			for i := range row.n {
				p.Attachments = append(p.Attachments, []byte{byte(i)})
			}
			if got := p.AppendText(nil); string(got) != row.wire {
				t.Errorf("AppendText(%s) = %q, want %q", fmtPacket(&p), got, row.wire)
			}
		})
	}
}

func TestDecodeTextInvalid(t *testing.T) {
	for _, in := range []string{
		``,                           // nothing
		`abc`,                        // "4abc" on the wire: type 'a'
		`7["a"]`,                     // unknown type
		`/["a"]`,                     // below '0'
		`2{}`,                        // event payload must be an array
		`2abc["a"]`,                  // "abc" is not an id and not JSON
		`2[]`,                        // event without a name
		`2[{}]`,                      // object as event name
		`2[null]`,                    // null as event name
		`2[true]`,                    // boolean as event name
		`2[["a"]]`,                   // array as event name
		`2`,                          // event without payload
		`2["a"`,                      // truncated JSON
		`2["a"]x`,                    // trailing garbage
		`2["a"]["b"]`,                // two documents
		`2/custom,`,                  // event in a namespace without payload
		`2/custom,{}`,                // ... with an object payload
		`299999999999999999999["a"]`, // ack id overflows uint64
		`0[]`,                        // connect payload must be an object
		`0"x"`,                       // likewise
		`0null`,                      // likewise
		`1{}`,                        // disconnect carries nothing
		`1["a"]`,                     // likewise
		`3{}`,                        // ack payload must be an array
		`3`,                          // ack without payload
		`31`,                         // ack with an id but no payload
		`4`,                          // connect error without payload
		`4[]`,                        // connect error must be a string or object
		`41`,                         // ... an id and nothing else
		`511-["a"]`,                  // 11 attachments: over the limit
		`5999-["a"]`,                 // likewise
		`51234-["a"]`,                // absurd count
		`5-["a"]`,                    // no count
		`51["a"]`,                    // no dash
		`5a-["a"]`,                   // count is not a number
		`51-`,                        // binary event without payload
		`61-{}`,                      // binary ack that is not an array
		`5`,                          // type alone
	} {
		t.Run(fmt.Sprintf("%q", in), func(t *testing.T) {
			p, n, err := decodeText([]byte(in))
			if err == nil {
				t.Fatalf("DecodeText(%q) = %s (%d attachments), want an error", in, fmtPacket(p), n)
			}
			if !errors.Is(err, errInvalidPacket) {
				t.Errorf("error %v does not wrap ErrInvalidPacket", err)
			}
		})
	}
}

func TestReservedEventNames(t *testing.T) {
	for _, name := range []string{"connect", "connect_error", "disconnect", "disconnecting", "newListener", "removeListener"} {
		for _, wire := range []string{`2["` + name + `"]`, `2/custom,["` + name + `",1]`, `51-["` + name + `",` + ph0 + `]`, `212["` + name + `"]`} {
			if p, _, err := decodeText([]byte(wire)); err == nil {
				t.Errorf("DecodeText(%q) = %s, want an error for a reserved name", wire, fmtPacket(p))
			}
		}
	}
	// Names that only resemble reserved ones are ordinary events.
	for _, name := range []string{"Connect", "connect ", "disconnected", "message"} {
		if _, _, err := decodeText([]byte(`2["` + name + `"]`)); err != nil {
			t.Errorf("event %q refused: %v", name, err)
		}
	}
}

func TestFrames(t *testing.T) {
	p := &packet{Type: packetAck, Namespace: "/", ID: 789, HasID: true,
		Data:        json.RawMessage(`[` + ph0 + `,` + ph1 + `]`),
		Attachments: [][]byte{{1, 2, 3}, {4}}}
	frames := p.Frames()
	want := []engineio.Message{
		{Data: []byte(`62-789[` + ph0 + `,` + ph1 + `]`)},
		{Data: []byte{1, 2, 3}, Binary: true},
		{Data: []byte{4}, Binary: true},
	}
	if len(frames) != len(want) {
		t.Fatalf("%d frames, want %d", len(frames), len(want))
	}
	for i := range want {
		if frames[i].Binary != want[i].Binary || !bytes.Equal(frames[i].Data, want[i].Data) {
			t.Errorf("frame %d = %+v, want %+v", i, frames[i], want[i])
		}
	}
	// Without attachments, a single text frame of type 2/3.
	p = &packet{Type: packetEvent, Namespace: "/custom", Data: json.RawMessage(`["a"]`)}
	if f := p.Frames(); len(f) != 1 || string(f[0].Data) != `2/custom,["a"]` || f[0].Binary {
		t.Errorf("Frames() = %+v, want one text frame 2/custom,[\"a\"]", f)
	}
}

func TestEncodeArgs(t *testing.T) {
	data, atts, err := encodeEvent("bin", []any{json.RawMessage(`{"b":2,"a":1.50}`), []byte{1, 2}, "x", []byte{}, 7})
	if err != nil {
		t.Fatal(err)
	}
	// Raw JSON keeps its key order and number format; byte slices become
	// placeholders in order.
	want := `["bin",{"b":2,"a":1.50},` + ph0 + `,"x",` + ph1 + `,7]`
	if string(data) != want {
		t.Errorf("encodeEvent = %s, want %s", data, want)
	}
	if len(atts) != 2 || !bytes.Equal(atts[0], []byte{1, 2}) || len(atts[1]) != 0 {
		t.Errorf("attachments %v", atts)
	}
	if _, _, err := encodeEvent("e", []any{json.RawMessage(`{bad`)}); err == nil {
		t.Error("invalid raw JSON accepted")
	}
	if _, _, err := encodeEvent("e", []any{make(chan int)}); err == nil {
		t.Error("unencodable argument accepted")
	}
	data, _, _ = encodeArgs(nil, nil)
	if string(data) != `[]` {
		t.Errorf("empty ack args = %s, want []", data)
	}
}

// feed gives the decoder one Engine.IO message and returns what it did.
type feedStep struct {
	data   string
	binary bool
	want   string // "" (nothing yet), "error", or the packet's text form
}

func TestDecoderAttachments(t *testing.T) {
	for _, c := range []struct {
		name  string
		steps []feedStep
	}{
		{"plain events", []feedStep{{`2["a"]`, false, `2["a"]`}, {`2["b"]`, false, `2["b"]`}}},
		{"one attachment", []feedStep{
			{`51-["bin",` + ph0 + `]`, false, ""},
			{"\x01\x02\x03", true, `51-["bin",` + ph0 + `]`},
		}},
		{"two attachments, then a plain event", []feedStep{
			{`52-789["m",` + ph0 + `,` + ph1 + `]`, false, ""},
			{"a", true, ""},
			{"b", true, `52-789["m",` + ph0 + `,` + ph1 + `]`},
			{`2["after"]`, false, `2["after"]`},
		}},
		{"binary ack", []feedStep{{`61-3[` + ph0 + `]`, false, ""}, {"", true, `61-3[` + ph0 + `]`}}},
		{"no attachments announced", []feedStep{{`50-["a"]`, false, `2["a"]`}}},
		{"binary without a packet", []feedStep{{"\x01", true, "error"}}},
		{"text while attachments are due", []feedStep{{`51-["bin",` + ph0 + `]`, false, ""}, {`2["a"]`, false, "error"}}},
		{"placeholder beyond the attachments", []feedStep{{`51-["bin",` + ph1 + `]`, false, ""}, {"x", true, "error"}}},
		{"negative placeholder", []feedStep{{`51-["bin",{"_placeholder":true,"num":-1}]`, false, ""}, {"x", true, "error"}}},
		{"placeholder without num", []feedStep{{`51-["bin",{"_placeholder":true}]`, false, ""}, {"x", true, "error"}}},
		{"nested placeholder beyond", []feedStep{{`51-["bin",{"a":[` + ph0 + `,{"b":` + ph1 + `}]}]`, false, ""}, {"x", true, "error"}}},
		{"nested placeholders", []feedStep{
			{`52-["bin",{"a":[` + ph1 + `,{"b":` + ph0 + `}]}]`, false, ""}, {"x", true, ""},
			{"y", true, `52-["bin",{"a":[` + ph1 + `,{"b":` + ph0 + `}]}]`},
		}},
		{"fractional placeholder", []feedStep{{`51-["bin",{"_placeholder":true,"num":0.5}]`, false, ""}, {"x", true, "error"}}},
		{"placeholder num written as a float", []feedStep{
			{`51-["bin",{"_placeholder":true,"num":0.0}]`, false, ""},
			{"x", true, `51-["bin",{"_placeholder":true,"num":0.0}]`},
		}},
		{"object that is no placeholder", []feedStep{
			{`51-["bin",{"_placeholder":false,"num":9},` + ph0 + `]`, false, ""},
			{"x", true, `51-["bin",{"_placeholder":false,"num":9},` + ph0 + `]`},
		}},
		{"invalid text", []feedStep{{`2{}`, false, "error"}}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var d decoder
			for i, s := range c.steps {
				buf := []byte(s.data)
				p, err := d.add(buf, s.binary)
				switch {
				case s.want == "error":
					if err == nil {
						t.Fatalf("step %d: %q accepted (%s), want an error", i, s.data, fmtPacket(p))
					}
					return
				case err != nil:
					t.Fatalf("step %d: %q: %v", i, s.data, err)
				case s.want == "" && p != nil:
					t.Fatalf("step %d: packet %s, want none yet", i, fmtPacket(p))
				case s.want == "":
				case p == nil:
					t.Fatalf("step %d: no packet, want %s", i, s.want)
				case string(p.AppendText(nil)) != s.want:
					t.Fatalf("step %d: packet %s, want %s", i, p.AppendText(nil), s.want)
				}
				// The decoder must own what it keeps: the engine reuses
				// its buffers after the call.
				for j := range buf {
					buf[j] = '!'
				}
				if p != nil {
					for k, a := range p.Attachments {
						want := c.steps[i-len(p.Attachments)+1+k].data
						if string(a) != want {
							t.Errorf("attachment %d = %q, want %q", k, a, want)
						}
					}
				}
			}
		})
	}
}
