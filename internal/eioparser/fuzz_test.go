package eioparser

import "testing"

// Fuzz targets for the payload decoders. Each checks that the decoder
// never panics, that what it accepts is well formed, and, where an encoder
// exists, that encoding the decoded packets and decoding again gives the
// same packets. Seed corpora live in testdata/fuzz/<target>/.

// checkPackets fails on packets no decoder may produce.
func checkPackets(t *testing.T, pkts []Packet) {
	t.Helper()
	if len(pkts) == 0 {
		t.Fatal("decoded an empty payload without error")
	}
	for _, p := range pkts {
		if p.Type > PacketNoop {
			t.Fatalf("decoded packet type %d", p.Type)
		}
		if p.Binary && p.Type != PacketMessage {
			t.Fatalf("decoded a binary %s packet", p.Type)
		}
	}
}

func roundTrip(t *testing.T, in []byte, pkts []Packet, enc func([]byte, []Packet) []byte, dec func([]byte) ([]Packet, error)) {
	t.Helper()
	wire := enc(nil, pkts)
	again, err := dec(wire)
	if err != nil {
		t.Fatalf("%q decoded to %s, whose encoding %q does not decode: %v", in, fmtPackets(pkts), wire, err)
	}
	if !samePackets(again, pkts) {
		t.Fatalf("%q decoded to %s, re-encoded as %q, decoded to %s", in, fmtPackets(pkts), wire, fmtPackets(again))
	}
}

func FuzzDecodePayloadV4(f *testing.F) {
	for _, s := range []string{"4hello\x1e2\x1e4world", "bAQIDBA==", "b", "2probe", "4a\x1e", "0" + handshakeJSON, "b!!", "4é\x1ebAQ=="} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := DecodePayloadV4(body)
		if err != nil {
			return
		}
		checkPackets(t, pkts)
		roundTrip(t, body, pkts, AppendPayloadV4, DecodePayloadV4)
	})
}

func FuzzDecodePayloadV3Text(f *testing.F) {
	for _, s := range []string{"6:4hello6:4world", "2:4€", "3:4😀", "10:b4AQIDBA==", "2:4😀", "1:", "118:0" + handshakeJSON, "3:4\xff\xfe"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := DecodePayloadV3Text(body)
		if err != nil {
			return
		}
		checkPackets(t, pkts)
		roundTrip(t, body, pkts, AppendPayloadV3Text, DecodePayloadV3Text)
	})
}

func FuzzDecodePayloadV3Binary(f *testing.F) {
	f.Add(capturedV3Binary)
	for _, s := range []string{"\x00\x01\xff2", "\x01\x01\xff\x04", "\x00\x03\xff4\xff\x00", "\x02\x01\xff2", "\x00\x09\x09\x09\x09\x09\x09\x09\x09\x09\x09\xff"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		pkts, err := DecodePayloadV3Binary(body)
		if err != nil {
			return
		}
		checkPackets(t, pkts)
		roundTrip(t, body, pkts, AppendPayloadV3Binary, DecodePayloadV3Binary)
		// The text form must carry the same packets: the server picks one
		// form or the other for the same queue.
		roundTrip(t, body, pkts, AppendPayloadV3Text, DecodePayloadV3Text)
	})
}
