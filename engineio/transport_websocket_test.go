package engineio

import (
	"bytes"
	"testing"

	"github.com/gobwas/ws"

	"siogo/internal/eioparser"
	"siogo/internal/testutil"
)

// TestWebSocketFrames checks the frame forms: text frames "<type><data>",
// binary messages as raw bytes (4) or behind a type byte (3).
func TestWebSocketFrames(t *testing.T) {
	for _, c := range []struct {
		protocol int
		pkt      eioparser.Packet
		op       ws.OpCode
		payload  string
	}{
		{4, text(eioparser.PacketMessage, `2["a"]`), ws.OpText, `42["a"]`},
		{3, text(eioparser.PacketMessage, `2["a"]`), ws.OpText, `42["a"]`},
		{4, text(eioparser.PacketPong, "probe"), ws.OpText, "3probe"},
		{4, bin(1, 2, 3, 4), ws.OpBinary, "\x01\x02\x03\x04"},
		{3, bin(1, 2, 3, 4), ws.OpBinary, "\x04\x01\x02\x03\x04"},
	} {
		var buf bytes.Buffer
		if err := writeFrames(&buf, make([]byte, ws.MaxHeaderSize), c.protocol, []eioparser.Packet{c.pkt}); err != nil {
			t.Fatal(err)
		}
		f, err := testutil.ReadFrame(&buf, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Fin || f.Header.Masked || f.Header.OpCode != c.op || string(f.Payload) != c.payload || buf.Len() != 0 {
			t.Errorf("EIO%d %v: frame %+v %q (%d bytes left), want a final unmasked %v frame %q",
				c.protocol, c.pkt, f.Header, f.Payload, buf.Len(), c.op, c.payload)
		}
	}
}

func text(t eioparser.PacketType, data string) eioparser.Packet {
	return eioparser.Packet{Type: t, Data: []byte(data)}
}

func bin(data ...byte) eioparser.Packet {
	return eioparser.Packet{Type: eioparser.PacketMessage, Data: data, Binary: true}
}
