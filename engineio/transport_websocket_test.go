package engineio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

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
		var fw frameWriter
		if err := fw.writeFrames(&buf, make([]byte, ws.MaxHeaderSize), c.protocol, 0, []outPacket{{Packet: c.pkt}}); err != nil {
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

// TestSecondWebSocket: a WebSocket for a session that already has one,
// upgraded or still probing, is accepted (101) and closed at once with a
// close frame without a status, as the reference does, and the first one
// carries on: it finishes its upgrade if it was probing, and exchanges
// messages.
func TestSecondWebSocket(t *testing.T) {
	e := startEcho(t, Config{})
	for _, protocol := range []int{3, 4} {
		for _, when := range []string{"after the upgrade", "during the upgrade"} {
			t.Run(fmt.Sprintf("EIO%d %s", protocol, when), func(t *testing.T) {
				ctx := testCtx(t)
				c := e.dial(t, protocol, "polling")
				wsURL := testutil.WSURL(testutil.EIOURL(e.url, protocol, "websocket", c.SID()))
				var first *testutil.WSConn
				if when == "after the upgrade" {
					if err := c.Upgrade(ctx); err != nil {
						t.Fatal(err)
					}
					first = c.WS()
				} else {
					// Probed, but no upgrade packet yet.
					var err error
					if first, err = testutil.DialWS(ctx, wsURL); err != nil {
						t.Fatal(err)
					}
					defer first.Close()
					if err := first.WriteText([]byte("2probe")); err != nil {
						t.Fatal(err)
					}
					if op, msg, err := first.ReadMessage(ctx); err != nil || op != ws.OpText || string(msg) != "3probe" {
						t.Fatalf("probe answered %v %q %v", op, msg, err)
					}
				}

				second, err := testutil.DialWS(ctx, wsURL)
				if err != nil {
					t.Fatalf("second WebSocket: %v, want a completed handshake", err)
				}
				defer second.Close()
				second.SetReadDeadline(time.Now().Add(5 * time.Second))
				f, err := testutil.ReadFrame(second, 1<<10)
				if err != nil || f.Header.OpCode != ws.OpClose || len(f.Payload) != 0 {
					t.Fatalf("second WebSocket got %+v %q (%v), want a close frame without a status", f.Header, f.Payload, err)
				}
				// The client answers the close; the server then hangs up.
				second.WriteFrame(ws.MaskFrameInPlace(ws.NewCloseFrame(nil)))
				if _, err := testutil.ReadFrame(second, 1<<10); !errors.Is(err, io.EOF) {
					t.Errorf("after the closing handshake: %v, want the connection closed", err)
				}

				if when == "during the upgrade" {
					if err := first.WriteText([]byte("5")); err != nil {
						t.Fatal(err)
					}
				}
				for _, msg := range []string{"4still here", "4and here"} {
					if err := first.WriteText([]byte(msg)); err != nil {
						t.Fatal(err)
					}
					if op, got, err := first.ReadMessage(ctx); err != nil || op != ws.OpText || string(got) != msg {
						t.Fatalf("echo over the first WebSocket: %v %q %v, want %q", op, got, err, msg)
					}
				}
				if tr := e.session(t, c.SID()).Transport(); tr != TransportWebSocket {
					t.Errorf("session on %s, want websocket", tr)
				}
			})
		}
	}
}
