package redisbroker

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzDecodeMessage feeds arbitrary bytes to the decoders of broadcast and
// request messages, as anything may be published on the channels. Neither may
// panic; a decoded broadcast must be a valid event whose placeholders all
// have an attachment, and encoding it must reach a fixed point after one
// round trip. The seed corpus in testdata/fuzz/FuzzDecodeMessage holds the
// Node.js encodings of the codec tests.
func FuzzDecodeMessage(f *testing.F) {
	for _, row := range broadcastRows {
		f.Add(mustHexF(f, row.hex))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		decodeRequest(b)
		m, err := decodeBroadcast(b)
		if err != nil {
			return
		}
		if !json.Valid(m.Data) || !isEvent(m.Data) {
			t.Fatalf("decoded data is not an event: %s", m.Data)
		}
		enc1, err := encodeBroadcast(m.UID, m.broadcast())
		if err != nil {
			// e.g. a map that spells out a placeholder without a
			// matching attachment; the Socket.IO parser refuses it too
			return
		}
		m2, err := decodeBroadcast(enc1)
		if err != nil {
			t.Fatalf("cannot decode our own encoding %x: %v", enc1, err)
		}
		enc2, err := encodeBroadcast(m2.UID, m2.broadcast())
		if err != nil {
			t.Fatalf("cannot re-encode %s: %v", m2.Data, err)
		}
		if !bytes.Equal(enc1, enc2) {
			t.Fatalf("no fixed point:\n%x\n%x", enc1, enc2)
		}
	})
}

func mustHexF(f *testing.F, s string) []byte {
	b, err := hexDecode(s)
	if err != nil {
		f.Fatal(err)
	}
	return b
}
