package engineio

import (
	"bytes"
	"sync"
	"sync/atomic"

	"siogo/internal/wsconn"
)

// permessage-deflate (RFC 7692) for the WebSocket transport, through
// wsconn (gobwas/ws's wsflate), without context takeover in either
// direction. Every message is compressed and decompressed on its own, from
// pooled compressors, so:
//
//   - a connection holds no compression state between messages, and an idle
//     one holds nothing at all;
//   - the compressed form of a frame depends only on its payload and on the
//     server's settings, which every session shares. A broadcast's message
//     is therefore compressed once, by the first writer that needs it, and
//     the same bytes go to every recipient that negotiated the extension
//     (sharedFrame).

// sharedFrame holds the compressed payloads of one message sent to many
// sessions, computed at most once each. A text message has one payload for
// both protocol revisions; a binary one has two, as Engine.IO 3 puts a type
// byte before the data.
type sharedFrame struct {
	once [2]sync.Once
	z    [2][]byte // nil when compressing does not make the payload smaller
}

// get returns the compressed payload of variant v, computing it on first
// use in scratch, which it returns grown if need be.
func (f *sharedFrame) get(v int, typ, data, scratch []byte) (z, grown []byte) {
	f.once[v].Do(func() {
		scratch = deflatePayload(scratch[:0], typ, data)
		if len(scratch) < len(typ)+len(data) {
			f.z[v] = bytes.Clone(scratch)
		}
	})
	return f.z[v], scratch
}

// PrepareBroadcast readies msgs, the messages of one broadcast, to be sent
// unchanged to many sessions: with PerMessageDeflate on, each message's
// WebSocket frame is then compressed once for all recipients rather than
// once per recipient. Call it before the first Send of msgs; it sets up
// shared state in the slice's elements. It does nothing when
// PerMessageDeflate is off, and messages never prepared are compressed by
// each session that sends them.
func (s *Server) PrepareBroadcast(msgs []Message) {
	if !s.cfg.PerMessageDeflate {
		return
	}
	for i := range msgs {
		if msgs[i].shared == nil && len(msgs[i].Data)+1 >= s.cfg.PerMessageDeflateThreshold {
			msgs[i].shared = new(sharedFrame)
		}
	}
}

// deflations counts the payloads compressed; the tests check with it that a
// broadcast is compressed once.
var deflations atomic.Int64

// deflatePayload appends typ and data, compressed as one permessage-deflate
// message with a fresh window, to dst.
func deflatePayload(dst, typ, data []byte) []byte {
	deflations.Add(1)
	return wsconn.AppendDeflated(dst, typ, data)
}
