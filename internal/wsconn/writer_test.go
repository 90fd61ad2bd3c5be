package wsconn

import (
	"net"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/gobwas/ws"
)

// TestWriteCloseReason: a close frame's reason is cut to the 123 bytes a
// control frame has room for, never inside a character.
func TestWriteCloseReason(t *testing.T) {
	for _, reason := range []string{"", "bye", strings.Repeat("x", 123), strings.Repeat("가", 50)} {
		server, client := net.Pipe()
		w := &Writer[struct{}]{Conn: server}
		go func() {
			w.WriteClose(ws.StatusPolicyViolation, reason)
			server.Close()
		}()
		f, err := ws.ReadFrame(client)
		client.Close()
		if err != nil {
			t.Fatalf("%q: %v", reason, err)
		}
		code, got := ws.ParseCloseFrameData(f.Payload)
		want := reason
		for len(want) > 123 {
			_, size := utf8.DecodeLastRuneInString(want)
			want = want[:len(want)-size]
		}
		if f.Header.OpCode != ws.OpClose || code != ws.StatusPolicyViolation || got != want || !utf8.ValidString(got) {
			t.Errorf("reason %q (%d bytes): frame %v, code %d, reason %q (%d bytes), want %q", reason, len(reason), f.Header.OpCode, code, got, len(got), want)
		}
	}
}

// TestShrinkIdleLocked: an empty queue gives up a large array and keeps a
// small one, and the spare goes; a queue with messages keeps everything.
func TestShrinkIdleLocked(t *testing.T) {
	var w Writer[int]
	w.spare = make([]int, 0, 8)
	busy := append(make([]int, 0, 64), 1)
	w.ShrinkIdleLocked(&busy)
	if len(busy) != 1 || cap(busy) != 64 || cap(w.spare) != 8 {
		t.Errorf("a busy connection lost an array: queue %d/%d, spare %d", len(busy), cap(busy), cap(w.spare))
	}
	large := make([]int, 0, 64)
	w.ShrinkIdleLocked(&large)
	if large != nil || w.spare != nil {
		t.Errorf("an idle connection kept arrays of %d and %d", cap(large), cap(w.spare))
	}
	small := make([]int, 0, idleQueueCap)
	w.ShrinkIdleLocked(&small)
	if cap(small) != idleQueueCap {
		t.Errorf("a small queue array went")
	}
}
