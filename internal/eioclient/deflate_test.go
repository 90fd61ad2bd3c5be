package eioclient

import (
	"bytes"
	"strings"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// compressedFrames splits the compressed form of msg into frames of at most
// n payload bytes, RSV1 on the first, as a server with permessage-deflate
// sends a fragmented message.
func compressedFrames(t *testing.T, msg string, n int) []ws.Frame {
	t.Helper()
	z, err := wsflate.CompressFrame(ws.NewTextFrame([]byte(msg)))
	if err != nil {
		t.Fatal(err)
	}
	p := z.Payload
	var out []ws.Frame
	for first := true; first || len(p) > 0; first = false {
		k := min(n, len(p))
		op := ws.OpContinuation
		if first {
			op = ws.OpText
		}
		f := ws.NewFrame(op, k == len(p), p[:k])
		if first {
			f.Header.Rsv = rsv1
		}
		out = append(out, f)
		p = p[k:]
	}
	return out
}

func TestNextMessageInflates(t *testing.T) {
	long := "42[\"clientReceiver\",{\"clientID\":1,\"message\":\"" + strings.Repeat("abc", 1000) + "\"}]"
	frames := compressedFrames(t, long, 1<<20)
	frames = append(frames, ws.NewTextFrame([]byte("4plain"))) // below the threshold: sent as it is
	frames = append(frames, compressedFrames(t, "4"+strings.Repeat("xy", 3000), 20)...)
	c, _ := fakeWS(bytes.NewReader(serverFrames(t, frames...)))
	c.deflate = true
	for _, want := range []string{long, "4plain", "4" + strings.Repeat("xy", 3000)} {
		op, msg, err := c.NextMessage()
		if err != nil || op != ws.OpText || string(msg) != want {
			t.Fatalf("NextMessage = %v %.40q (%d bytes) %v, want %.40q (%d bytes)", op, msg, len(msg), err, want, len(want))
		}
	}
}

func TestNextMessageRefusesStrayCompression(t *testing.T) {
	compressed := compressedFrames(t, strings.Repeat("a", 2000), 10)
	secondRsv := append([]ws.Frame(nil), compressed...)
	secondRsv[1].Header.Rsv = rsv1
	for name, tc := range map[string]struct {
		deflate bool
		frames  []ws.Frame
	}{
		"compressed without the extension": {false, compressed},
		"RSV1 on a continuation frame":     {true, secondRsv},
		"RSV2":                             {true, []ws.Frame{{Header: ws.Header{Fin: true, OpCode: ws.OpText, Rsv: ws.Rsv(false, true, false), Length: 1}, Payload: []byte("4")}}},
		"not deflate data":                 {true, []ws.Frame{{Header: ws.Header{Fin: true, OpCode: ws.OpText, Rsv: rsv1, Length: 4}, Payload: []byte{0xff, 0xff, 0xff, 0xff}}}},
	} {
		c, _ := fakeWS(bytes.NewReader(serverFrames(t, tc.frames...)))
		c.deflate = tc.deflate
		if _, msg, err := c.NextMessage(); err == nil {
			t.Errorf("%s: got %.20q, want an error", name, msg)
		}
	}
}

func TestWriteCompressesLongMessages(t *testing.T) {
	long := []byte("42[\"serverReceiver\",\"" + strings.Repeat("x", 2048) + "\"]")
	for _, deflate := range []bool{false, true} {
		c, rc := fakeWS(bytes.NewReader(nil))
		c.deflate = deflate
		if err := c.WriteText([]byte("42[\"serverReceiver\",\"short\"]")); err != nil {
			t.Fatal(err)
		}
		if err := c.WriteText(long); err != nil {
			t.Fatal(err)
		}
		frames := written(t, rc)
		if len(frames) != 2 || frames[0].Header.Rsv != 0 || string(frames[0].Payload) != `42["serverReceiver","short"]` {
			t.Fatalf("deflate %v: first frame %+v", deflate, frames)
		}
		got := frames[1]
		if deflate {
			if got.Header.Rsv != rsv1 || len(got.Payload) > len(long)/10 {
				t.Fatalf("long message: RSV %03b, %d bytes; want RSV1 and far fewer than %d", got.Header.Rsv, len(got.Payload), len(long))
			}
			var err error
			if got, err = wsflate.DecompressFrame(got); err != nil {
				t.Fatal(err)
			}
		}
		if got.Header.Rsv != 0 || !bytes.Equal(got.Payload, long) {
			t.Errorf("deflate %v: long message came out as RSV %03b, %.40q", deflate, got.Header.Rsv, got.Payload)
		}
	}
}
