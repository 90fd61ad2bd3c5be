package socketio

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Fuzz targets for the Socket.IO decoders. Seed corpora live in
// testdata/fuzz/<target>/.

func FuzzDecodeText(f *testing.F) {
	for _, row := range packetRows {
		f.Add([]byte(row.wire))
	}
	for _, s := range []string{`abc`, `2{}`, `2abc["a"]`, `2["connect"]`, `511-["a"]`, `2/a`, `2 ["a"]`, `0/a?b=c,{}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, orig []byte) {
		in := bytes.Clone(orig) // zeroed below; the fuzzer owns orig
		p, n, err := decodeText(in)
		if err != nil {
			return
		}
		if p.Type > packetConnectError {
			t.Fatalf("%q decoded to type %d; binary types must come out as event/ack", in, p.Type)
		}
		if n < 0 || n > maxAttachments || (n > 0 && in[0] != '5' && in[0] != '6') {
			t.Fatalf("%q announces %d attachments", in, n)
		}
		if p.Namespace == "" || p.Namespace[0] != '/' {
			t.Fatalf("%q decoded to namespace %q", in, p.Namespace)
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("%q decoded to invalid JSON %q", in, p.Data)
		}
		// Encoding the packet (with as many attachments as announced) and
		// decoding it again gives the same packet.
		q := *p
		q.Attachments = make([][]byte, n)
		wire := q.AppendText(nil)
		again, n2, err := decodeText(wire)
		if err != nil {
			t.Fatalf("%q decoded to %s, re-encoded as %q, which fails: %v", in, fmtPacket(p), wire, err)
		}
		if !samePacket(again, p) || n2 != n {
			t.Fatalf("%q decoded to %s, re-encoded as %q, decoded to %s (%d attachments, want %d)", in, fmtPacket(p), wire, fmtPacket(again), n2, n)
		}
		// The decoder must not alias its input.
		if len(p.Data) > 0 {
			saved := bytes.Clone(p.Data)
			for i := range in {
				in[i] = 0
			}
			if !bytes.Equal(p.Data, saved) {
				t.Fatalf("packet data aliases the input")
			}
		}
	})
}

// FuzzDecoder feeds the reassembling decoder a text message, count binary
// messages, and a second text message, and checks that a packet comes out
// exactly when its announced attachments have all arrived, carrying copies
// of them; and that a complete packet survives Frames and a fresh decoder.
func FuzzDecoder(f *testing.F) {
	f.Add([]byte(`51-["bin",`+ph0+`]`), []byte{1, 2, 3}, uint8(1), []byte(`2["after"]`))
	f.Add([]byte(`52-789["m",`+ph0+`,`+ph1+`]`), []byte("x"), uint8(2), []byte(`3789[]`))
	f.Add([]byte(`62-789[`+ph0+`,`+ph1+`]`), []byte{}, uint8(3), []byte(`2["x"]`))
	f.Add([]byte(`2["a"]`), []byte{9}, uint8(1), []byte(`2["b"]`))
	f.Add([]byte(`51-["bin",`+ph1+`]`), []byte{1}, uint8(1), []byte(``))
	f.Add([]byte(`50-["a"]`), []byte{}, uint8(0), []byte(`51-[`+ph0+`]`))
	f.Fuzz(func(t *testing.T, first, attachment []byte, count uint8, second []byte) {
		var d decoder
		msgs := [][]byte{first}
		binary := []bool{false}
		for range count % (maxAttachments + 2) {
			msgs = append(msgs, bytes.Clone(attachment))
			binary = append(binary, true)
		}
		msgs = append(msgs, second)
		binary = append(binary, false)

		pendingFrom := -1 // index of the text message awaiting attachments
		need := 0
		for i, m := range msgs {
			p, err := d.add(m, binary[i])
			if err != nil {
				return // a decoder error closes the connection; nothing follows
			}
			switch {
			case !binary[i] && p == nil:
				_, n, _ := decodeText(m)
				if n == 0 {
					t.Fatalf("message %d (%q) decoded without error but gave no packet and wants no attachments", i, m)
				}
				pendingFrom, need = i, n
			case !binary[i]:
				if len(p.Attachments) != 0 {
					t.Fatalf("packet from text alone has %d attachments", len(p.Attachments))
				}
			case binary[i] && pendingFrom < 0:
				t.Fatalf("binary message %d accepted with no packet pending", i)
			case binary[i] && p == nil:
				if i-pendingFrom >= need {
					t.Fatalf("%d attachments arrived for %d announced, no packet yet", i-pendingFrom, need)
				}
			default:
				if i-pendingFrom != need || len(p.Attachments) != need {
					t.Fatalf("packet completed after %d attachments with %d, want %d", i-pendingFrom, len(p.Attachments), need)
				}
				for k, a := range p.Attachments {
					if !bytes.Equal(a, attachment) {
						t.Fatalf("attachment %d = %x, want %x", k, a, attachment)
					}
				}
				if len(attachment) > 0 {
					// The decoder keeps copies, not the caller's buffers.
					for _, m := range msgs[pendingFrom+1 : i+1] {
						m[0]++
					}
					if !bytes.Equal(p.Attachments[0], attachment) {
						t.Fatal("attachment aliases the message buffer")
					}
					for _, m := range msgs[pendingFrom+1 : i+1] {
						m[0]--
					}
				}
				// Frames and a fresh decoder give the packet back.
				var d2 decoder
				var back *packet
				for j, fr := range p.Frames() {
					q, err := d2.add(fr.Data, fr.Binary)
					if err != nil {
						t.Fatalf("frame %d of the re-encoded packet: %v", j, err)
					}
					back = q
				}
				if back == nil || !samePacket(back, p) {
					t.Fatalf("re-encoded packet %s decoded to %s", fmtPacket(p), fmtPacket(back))
				}
				pendingFrom, need = -1, 0
			}
		}
	})
}
