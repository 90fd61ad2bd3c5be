package wsconn

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsflate"
)

// byteConn is a net.Conn whose reads come from a fixed byte string and whose
// writes (pongs) are counted and dropped: enough to drive a Reader.
type byteConn struct {
	r      io.Reader
	writes int
}

func (c *byteConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *byteConn) Write(p []byte) (int, error)      { c.writes++; return len(p), nil }
func (c *byteConn) Close() error                     { return nil }
func (c *byteConn) LocalAddr() net.Addr              { return nil }
func (c *byteConn) RemoteAddr() net.Addr             { return nil }
func (c *byteConn) SetDeadline(time.Time) error      { return nil }
func (c *byteConn) SetReadDeadline(time.Time) error  { return nil }
func (c *byteConn) SetWriteDeadline(time.Time) error { return nil }

// maskedFrame returns the bytes of one client frame, with a fixed mask so
// that seeds are the same on every run.
func maskedFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	var buf bytes.Buffer
	f := ws.NewFrame(op, fin, append([]byte(nil), payload...))
	ws.WriteFrame(&buf, ws.MaskFrameInPlaceWith(f, [4]byte{0x12, 0x34, 0x56, 0x78}))
	return buf.Bytes()
}

func FuzzFrameReader(f *testing.F) {
	const limit = 64
	f.Add(maskedFrame(ws.OpText, true, []byte(`42["a"]`)))
	f.Add(maskedFrame(ws.OpBinary, true, []byte{4, 1, 2, 3}))
	f.Add(append(maskedFrame(ws.OpText, false, []byte("4he")), maskedFrame(ws.OpContinuation, true, []byte("llo"))...))
	f.Add(append(maskedFrame(ws.OpPing, true, []byte("hi")), maskedFrame(ws.OpText, true, []byte("2"))...))
	f.Add(maskedFrame(ws.OpText, true, bytes.Repeat([]byte("x"), limit+2)))
	f.Add(maskedFrame(ws.OpText, true, []byte("4\xff")))
	f.Add(maskedFrame(ws.OpClose, true, []byte{0x03, 0xe8}))
	f.Add([]byte{0x81, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}) // unmasked, 2^64-1 bytes
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4})
	f.Fuzz(func(t *testing.T, stream []byte) {
		if total := readChecked(t, stream, limit, false); total > len(stream) {
			t.Fatalf("returned %d bytes of messages from a %d-byte stream", total, len(stream))
		}
	})
}

// readChecked reads up to 64 messages from stream with a Reader and
// checks each: text or binary only, within limit, text valid UTF-8. It
// returns how many bytes of messages came out.
func readChecked(t *testing.T, stream []byte, limit int64, deflate bool) int {
	conn := &byteConn{r: bytes.NewReader(stream)}
	fr := NewReader(conn, limit, conn, nil, deflate)
	total := 0
	for range 64 {
		op, msg, err := fr.Next()
		if err != nil {
			break
		}
		if op != ws.OpText && op != ws.OpBinary {
			t.Fatalf("returned a message with opcode %v", op)
		}
		if int64(len(msg)) > limit {
			t.Fatalf("returned %d bytes, over the %d-byte limit", len(msg), limit)
		}
		if op == ws.OpText && !utf8.Valid(msg) {
			t.Fatalf("returned invalid UTF-8 text %q", msg)
		}
		total += len(msg)
	}
	return total
}

// deflatedFrame returns a masked client frame whose payload is compressed
// with permessage-deflate (RSV1 set).
func deflatedFrame(op ws.OpCode, payload []byte) []byte {
	f, err := wsflate.CompressFrame(ws.NewFrame(op, true, append([]byte(nil), payload...)))
	if err != nil {
		panic(err)
	}
	var buf bytes.Buffer
	ws.WriteFrame(&buf, ws.MaskFrameInPlaceWith(f, [4]byte{0x12, 0x34, 0x56, 0x78}))
	return buf.Bytes()
}

// FuzzDeflateFrameReader reads a connection that agreed on
// permessage-deflate: compressed and plain messages, fragments, control
// frames. Compressed input may inflate to any size, so the checks are the
// limit, the opcodes and UTF-8, not the byte count.
func FuzzDeflateFrameReader(f *testing.F) {
	const limit = 64
	f.Add(deflatedFrame(ws.OpText, []byte(`42["a"]`)))
	f.Add(deflatedFrame(ws.OpBinary, []byte{4, 1, 2, 3}))
	f.Add(maskedFrame(ws.OpText, true, []byte(`42["plain"]`)))
	f.Add(deflatedFrame(ws.OpText, bytes.Repeat([]byte("x"), 10*limit)))
	f.Add(deflatedFrame(ws.OpText, []byte("4\xff")))
	f.Add(append(deflatedFrame(ws.OpText, []byte("4one")), deflatedFrame(ws.OpText, []byte("4two"))...))
	f.Fuzz(func(t *testing.T, stream []byte) {
		readChecked(t, stream, limit, true)
	})
}
