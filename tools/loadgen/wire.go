package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"
)

// openInfo is the part of the Engine.IO handshake the load generator needs.
type openInfo struct {
	SID          string `json:"sid"`
	PingInterval int    `json:"pingInterval"`
	PingTimeout  int    `json:"pingTimeout"`
}

// parseOpen decodes an Engine.IO open packet ("0{...}"). It runs once per
// connection, so full JSON decoding is fine here.
func parseOpen(pkt []byte) (openInfo, error) {
	var o openInfo
	if len(pkt) < 2 || pkt[0] != '0' {
		return o, fmt.Errorf("expected open packet, got %q", clip(pkt))
	}
	if err := json.Unmarshal(pkt[1:], &o); err != nil {
		return o, fmt.Errorf("open packet: %w", err)
	}
	if o.SID == "" {
		return o, errors.New("open packet without sid")
	}
	return o, nil
}

// splitV4 calls fn for each packet of an Engine.IO 4 polling payload, where
// packets are separated by the record separator 0x1e.
func splitV4(payload []byte, fn func(pkt []byte)) error {
	if len(payload) == 0 {
		return errors.New("empty payload")
	}
	for {
		i := bytes.IndexByte(payload, 0x1e)
		if i < 0 {
			fn(payload)
			return nil
		}
		fn(payload[:i])
		payload = payload[i+1:]
	}
}

// splitV3 calls fn for each packet of an Engine.IO 3 text polling payload
// ("<length>:<packet>" repeated). The length counts UTF-16 code units, as the
// JavaScript implementation does, so it is converted to a byte length by
// walking the runes.
func splitV3(payload []byte, fn func(pkt []byte)) error {
	if len(payload) == 0 {
		return errors.New("empty payload")
	}
	for len(payload) > 0 {
		colon := bytes.IndexByte(payload, ':')
		if colon <= 0 || colon > 10 {
			return fmt.Errorf("bad length prefix in %q", clip(payload))
		}
		units, err := strconv.Atoi(string(payload[:colon]))
		if err != nil || units < 0 {
			return fmt.Errorf("bad length prefix %q", payload[:colon])
		}
		rest := payload[colon+1:]
		n := utf16Prefix(rest, units)
		if n < 0 {
			return fmt.Errorf("length %d exceeds payload %q", units, clip(rest))
		}
		fn(rest[:n])
		payload = rest[n:]
	}
	return nil
}

// utf16Prefix returns how many bytes of b hold exactly units UTF-16 code
// units, or -1 when b is too short or the count ends inside a surrogate pair.
func utf16Prefix(b []byte, units int) int {
	i := 0
	for units > 0 {
		if i >= len(b) {
			return -1
		}
		if b[i] < utf8.RuneSelf {
			i++
			units--
			continue
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		if r >= 0x10000 {
			units -= 2
		} else {
			units--
		}
		if units < 0 {
			return -1
		}
	}
	return i
}

// utf16Len is the length of s in UTF-16 code units.
func utf16Len(s []byte) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] < utf8.RuneSelf {
			n++
			i++
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		i += size
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
	}
	return n
}

// appendV3 appends pkt to an Engine.IO 3 polling payload.
func appendV3(dst, pkt []byte) []byte {
	dst = strconv.AppendInt(dst, int64(utf16Len(pkt)), 10)
	dst = append(dst, ':')
	return append(dst, pkt...)
}

// appendV4 appends pkt to an Engine.IO 4 polling payload.
func appendV4(dst, pkt []byte) []byte {
	if len(dst) > 0 {
		dst = append(dst, 0x1e)
	}
	return append(dst, pkt...)
}

// The chat message a sender emits carries "<sender>.<seq>.<sent-ns>." and
// then padding, so every receiver can attribute it and time it without
// decoding JSON.
var (
	emitPrefix     = []byte(`42["serverReceiver","`)
	deliveryPrefix = []byte(`42["clientReceiver",`)
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

// parseDelivery recognises a clientReceiver event carrying a message made by
// appendEmit. It scans bytes instead of decoding JSON because it runs once
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
