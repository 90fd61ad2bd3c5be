package wsconn

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// readAllBlocking reads stream with a Reader on a connection, as the
// goroutine path does: the messages, and whether it ended in an error
// other than the end of the stream at a message boundary.
func readAllBlocking(stream []byte, limit int64, deflate bool) ([]string, bool) {
	conn := &byteConn{r: bytes.NewReader(stream)}
	rd := NewReader(conn, limit, conn, nil, deflate)
	var out []string
	for {
		op, msg, err := rd.Next()
		if err == io.EOF {
			return out, false
		}
		if err != nil {
			return out, true
		}
		out = append(out, fmt.Sprintf("%v:%q", op, msg))
	}
}

// readAllFed hands stream to a polled Reader in pieces of chunk bytes, as
// the poller path does: the messages, and whether it ended in an error or
// with an unfinished message.
func readAllFed(stream []byte, limit int64, deflate bool, chunk int) ([]string, bool) {
	conn := &byteConn{r: bytes.NewReader(nil)}
	rd := NewReader(conn, limit, conn, nil, deflate)
	rd.polled()
	var out []string
	var in []byte
	collect := func(op ws.OpCode, msg []byte) bool {
		out = append(out, fmt.Sprintf("%v:%q", op, msg))
		return true
	}
	for len(stream) > 0 {
		n := min(chunk, len(stream))
		data := append(in, stream[:n]...)
		stream = stream[n:]
		rest, more, err := rd.feed(data, collect)
		if err != nil || !more {
			return out, true
		}
		in = append([]byte(nil), rest...)
	}
	return out, len(in) > 0
}

// FuzzFeed checks that reading through the poller, whatever pieces the
// bytes arrive in, gives the messages and the verdict of reading the
// connection directly.
func FuzzFeed(f *testing.F) {
	const limit = 64
	f.Add(maskedFrame(ws.OpText, true, []byte(`42["a"]`)), uint8(1), false)
	f.Add(append(maskedFrame(ws.OpText, false, []byte("4he")), maskedFrame(ws.OpContinuation, true, []byte("llo"))...), uint8(3), false)
	f.Add(append(maskedFrame(ws.OpPing, true, []byte("hi")), maskedFrame(ws.OpText, true, []byte("2"))...), uint8(2), false)
	f.Add(append(maskedFrame(ws.OpText, false, []byte("4a")), append(maskedFrame(ws.OpPing, true, nil), maskedFrame(ws.OpContinuation, true, []byte("b"))...)...), uint8(4), false)
	f.Add(maskedFrame(ws.OpText, true, bytes.Repeat([]byte("x"), limit+2)), uint8(7), false)
	f.Add(maskedFrame(ws.OpText, true, []byte("4\xff")), uint8(5), false)
	f.Add(maskedFrame(ws.OpClose, true, []byte{0x03, 0xe8}), uint8(1), false)
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), uint8(9), false)
	f.Add([]byte{0x81, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 1, 2, 3, 4}, uint8(3), false)
	f.Add(append(deflatedFrame(ws.OpText, []byte("4one")), deflatedFrame(ws.OpText, []byte("4two"))...), uint8(6), true)
	f.Add(deflatedFrame(ws.OpText, bytes.Repeat([]byte("y"), 10*limit)), uint8(2), true)
	f.Fuzz(func(t *testing.T, stream []byte, chunk uint8, deflate bool) {
		want, wantErr := readAllBlocking(stream, limit, deflate)
		got, gotErr := readAllFed(stream, limit, deflate, int(chunk)%32+1)
		// The poller path hands over what a direct read does, in the same
		// order. On a broken stream it may stop sooner: it refuses a bad
		// header before the payload ahead of it, and it waits for the end
		// of a fragmented message where a direct read ends the message at
		// a close frame inside it. A direct read also takes a stream that
		// stops inside a frame header for a clean end (gobwas/ws reports
		// io.EOF), where the poller path may have refused that header.
		if len(got) > len(want) || !slices.Equal(got, want[:len(got)]) {
			t.Fatalf("fed %v, read %v", got, want)
		}
		if wantErr && !gotErr || !wantErr && !gotErr && len(got) != len(want) {
			t.Fatalf("fed: %v, error %v; read: %v, error %v", got, gotErr, want, wantErr)
		}
	})
}

// TestFeedKeepsNoBuffer: between messages, a fed reader keeps nothing.
func TestFeedKeepsNoBuffer(t *testing.T) {
	frame := maskedFrame(ws.OpText, true, []byte(`42["hello"]`))
	rd := NewReader(&byteConn{r: bytes.NewReader(nil)}, 1<<20, io.Discard, nil, false)
	rd.polled()
	var got []string
	collect := func(op ws.OpCode, msg []byte) bool { got = append(got, string(msg)); return true }
	rest, more, err := rd.feed(frame[:5], collect)
	if err != nil || !more || len(rest) != 5 || len(got) != 0 {
		t.Fatalf("half a frame: rest %d, more %v, err %v, got %v", len(rest), more, err, got)
	}
	rest, more, err = rd.feed(append(rest, frame[5:]...), collect)
	if err != nil || !more || len(rest) != 0 || len(got) != 1 || got[0] != `42["hello"]` {
		t.Fatalf("the whole frame: rest %d, more %v, err %v, got %v", len(rest), more, err, got)
	}
	// A header that announces more than the limit fails at once.
	big := maskedFrame(ws.OpText, true, bytes.Repeat([]byte("x"), 2<<20))
	if _, _, err := rd.feed(big[:16], collect); !errors.Is(err, wsutil.ErrMessageTooLarge) {
		t.Fatalf("an oversized frame's header: %v", err)
	}
}

// TestFeedStatesDoNotLeak: readers share pooled reading states, and what
// one connection's broken input leaves in a state never reaches another.
func TestFeedStatesDoNotLeak(t *testing.T) {
	broken := [][]byte{
		maskedFrame(ws.OpText, true, []byte("4\xff")),
		append(maskedFrame(ws.OpText, false, []byte("4\xe2")), maskedFrame(ws.OpContinuation, true, []byte("\x28"))...),
		maskedFrame(ws.OpBinary, true, bytes.Repeat([]byte("b"), 100)),
	}
	good := append(maskedFrame(ws.OpText, false, []byte("4fine ")), maskedFrame(ws.OpContinuation, true, []byte("message"))...)
	for range 50 {
		for _, b := range broken {
			bad := NewReader(nil, 64, io.Discard, nil, false)
			bad.polled()
			if _, _, err := bad.feed(b, func(ws.OpCode, []byte) bool { return true }); err == nil {
				t.Fatalf("broken input %q read without error", b)
			}
			ok := NewReader(nil, 64, io.Discard, nil, false)
			ok.polled()
			var got []string
			if _, _, err := ok.feed(good, func(_ ws.OpCode, m []byte) bool { got = append(got, string(m)); return true }); err != nil || !slices.Equal(got, []string{"4fine message"}) {
				t.Fatalf("after broken input: %v, %v", got, err)
			}
		}
	}
}
