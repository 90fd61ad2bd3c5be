package eioclient

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// recordConn stands for the network: it keeps what the client writes.
type recordConn struct {
	net.Conn
	out bytes.Buffer
}

func (c *recordConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *recordConn) SetWriteDeadline(time.Time) error { return nil }

// serverFrames is what a server sends, unmasked.
func serverFrames(t testing.TB, frames ...ws.Frame) []byte {
	t.Helper()
	var b bytes.Buffer
	for _, f := range frames {
		if err := ws.WriteFrame(&b, f); err != nil {
			t.Fatal(err)
		}
	}
	return b.Bytes()
}

func fakeWS(r io.Reader) (*WSConn, *recordConn) {
	rc := &recordConn{}
	return &WSConn{Conn: rc, br: bufio.NewReader(r)}, rc
}

// written returns the frames the client wrote, unmasked, failing on an
// unmasked one.
func written(t *testing.T, rc *recordConn) []ws.Frame {
	t.Helper()
	var out []ws.Frame
	for rc.out.Len() > 0 {
		f, err := ReadFrame(&rc.out, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		if !f.Header.Masked {
			t.Errorf("client frame %v is not masked", f.Header.OpCode)
		}
		out = append(out, f)
	}
	return out
}

func TestNextMessage(t *testing.T) {
	c, rc := fakeWS(bytes.NewReader(serverFrames(t,
		ws.NewPingFrame([]byte("p1")),
		ws.NewFrame(ws.OpText, false, []byte("4he")),
		ws.NewPingFrame([]byte("p2")), // control frames may come between fragments
		ws.NewFrame(ws.OpContinuation, true, []byte("llo")),
		ws.NewPongFrame(nil),
		ws.NewBinaryFrame([]byte{1, 2, 3}),
		ws.NewCloseFrame(ws.NewCloseFrameBody(ws.StatusGoingAway, "bye")),
	)))
	op, msg, err := c.NextMessage()
	if err != nil || op != ws.OpText || string(msg) != "4hello" {
		t.Fatalf("NextMessage = %v %q %v, want text 4hello", op, msg, err)
	}
	op, msg, err = c.NextMessage()
	if err != nil || op != ws.OpBinary || !bytes.Equal(msg, []byte{1, 2, 3}) {
		t.Fatalf("NextMessage = %v %q %v, want binary 01 02 03", op, msg, err)
	}
	_, _, err = c.NextMessage()
	var closed wsutil.ClosedError
	if !errors.As(err, &closed) || closed.Code != ws.StatusGoingAway || closed.Reason != "bye" {
		t.Fatalf("NextMessage error %v, want the close frame 1001 bye", err)
	}
	got := written(t, rc)
	if len(got) != 3 ||
		got[0].Header.OpCode != ws.OpPong || string(got[0].Payload) != "p1" ||
		got[1].Header.OpCode != ws.OpPong || string(got[1].Payload) != "p2" ||
		got[2].Header.OpCode != ws.OpClose {
		t.Fatalf("client answered %v, want pong p1, pong p2, close", got)
	}
	if code, _ := ws.ParseCloseFrameData(got[2].Payload); code != ws.StatusGoingAway {
		t.Errorf("close reply with code %d, want %d", code, ws.StatusGoingAway)
	}
}

func TestNextMessageErrors(t *testing.T) {
	masked := ws.MaskFrame(ws.NewTextFrame([]byte("4x")))
	for name, frames := range map[string][]ws.Frame{
		"masked frame":               {masked},
		"continuation first":         {ws.NewFrame(ws.OpContinuation, true, []byte("x"))},
		"new message inside another": {ws.NewFrame(ws.OpText, false, []byte("4")), ws.NewTextFrame([]byte("4x"))},
		"fragmented ping":            {ws.NewFrame(ws.OpPing, false, nil)},
		"oversized ping":             {ws.NewPingFrame(bytes.Repeat([]byte("p"), 126))},
	} {
		c, _ := fakeWS(bytes.NewReader(serverFrames(t, frames...)))
		if op, msg, err := c.NextMessage(); err == nil {
			t.Errorf("%s: NextMessage = %v %q, want an error", name, op, msg)
		}
	}
}

// repeatReader replays the same bytes forever.
type repeatReader struct {
	b   []byte
	off int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		m := copy(p[n:], r.b[r.off:])
		n += m
		r.off = (r.off + m) % len(r.b)
	}
	return n, nil
}

// TestNextMessageDoesNotAllocate guards the read path of the load
// generator: once its buffer has grown, a message costs no allocation.
func TestNextMessageDoesNotAllocate(t *testing.T) {
	delivery := []byte(`42["clientReceiver",{"clientID":12,"message":"3.55.987654321.xxxxxxxxxxxxxxxx"}]`)
	c, _ := fakeWS(&repeatReader{b: serverFrames(t, ws.NewTextFrame(delivery))})
	if _, _, err := c.NextMessage(); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, msg, err := c.NextMessage(); err != nil || !bytes.Equal(msg, delivery) {
			t.Fatalf("NextMessage = %q, %v", msg, err)
		}
	})
	if allocs != 0 {
		t.Fatalf("%.1f allocations per message, want 0", allocs)
	}
}

func BenchmarkNextMessage(b *testing.B) {
	delivery := []byte(`42["clientReceiver",{"clientID":12,"message":"3.55.987654321.xxxxxxxxxxxxxxxx"}]`)
	c, _ := fakeWS(&repeatReader{b: serverFrames(b, ws.NewTextFrame(delivery))})
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := c.NextMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func TestReadMessageCopies(t *testing.T) {
	c, _ := fakeWS(bytes.NewReader(serverFrames(t, ws.NewTextFrame([]byte("4first")), ws.NewTextFrame([]byte("4again")))))
	_, first, err := c.ReadMessage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := c.ReadMessage(t.Context()); err != nil {
		t.Fatal(err)
	}
	if string(first) != "4first" {
		t.Fatalf("the first message became %q after the second was read", first)
	}
}
