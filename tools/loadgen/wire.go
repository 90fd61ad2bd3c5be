package main

import (
	"bytes"
	"strconv"
)

// The chat message a sender emits carries "<sender>.<seq>.<sent-ns>." and
// then padding, so every receiver can attribute it and time it without
// decoding JSON.
var (
	emitPrefix     = []byte(`42["serverReceiver","`)
	deliveryPrefix = []byte(`2["clientReceiver",`)
	messageKey     = []byte(`"message":"`)
)

// appendEmit appends the Engine.IO message packet for one serverReceiver
// emit, padded with 'x' so the message string is at least size bytes.
func appendEmit(dst []byte, sender, seq int, sentNS int64, size int) []byte {
	dst = append(dst, emitPrefix...)
	start := len(dst)
	dst = strconv.AppendInt(dst, int64(sender), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, int64(seq), 10)
	dst = append(dst, '.')
	dst = strconv.AppendInt(dst, sentNS, 10)
	dst = append(dst, '.')
	for len(dst)-start < size {
		dst = append(dst, 'x')
	}
	return append(dst, `"]`...)
}

// delivery is what a receiver learns from one clientReceiver packet.
type delivery struct {
	sender int
	seq    int
	sentNS int64
}

// parseDelivery recognises a clientReceiver event (a Socket.IO packet)
// carrying a message made by appendEmit. It scans bytes instead of decoding JSON because it runs once
// per delivery, the hot path of the load generator. ok is false for any
// other packet; foreign is true for a clientReceiver event whose message the
// load generator did not write.
func parseDelivery(pkt []byte) (d delivery, ok, foreign bool) {
	if !bytes.HasPrefix(pkt, deliveryPrefix) {
		return d, false, false
	}
	rest := pkt[len(deliveryPrefix):]
	i := bytes.Index(rest, messageKey)
	if i < 0 {
		return d, false, true
	}
	rest = rest[i+len(messageKey):]
	var n int
	var v int64
	if v, n = scanUint(rest); n == 0 || n >= len(rest) || rest[n] != '.' {
		return d, false, true
	}
	d.sender = int(v)
	rest = rest[n+1:]
	if v, n = scanUint(rest); n == 0 || n >= len(rest) || rest[n] != '.' {
		return d, false, true
	}
	d.seq = int(v)
	rest = rest[n+1:]
	if v, n = scanUint(rest); n == 0 || n >= len(rest) || rest[n] != '.' {
		return d, false, true
	}
	d.sentNS = v
	return d, true, false
}

// scanUint reads a decimal number at the start of b and returns it with the
// count of digits consumed (0 when b does not start with a digit or the
// number would overflow).
func scanUint(b []byte) (int64, int) {
	var v int64
	i := 0
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i == 18 {
			return 0, 0
		}
		v = v*10 + int64(b[i]-'0')
	}
	return v, i
}

// clip shortens b for error messages.
func clip(b []byte) []byte {
	if len(b) > 80 {
		return b[:80]
	}
	return b
}
