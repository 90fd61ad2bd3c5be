package engineio

import (
	"net/http"
	"testing"

	"siogo/internal/eioparser"
)

// TestServerCloseReachesIdlePoller: a session closed by the server while its
// client has no poll waiting still delivers what was queued on the next
// poll, then the close packet alone on the one after (see servePoll); only
// after that is the session gone.
func TestServerCloseReachesIdlePoller(t *testing.T) {
	e := startEcho(t, Config{})
	for _, protocol := range []int{3, 4} {
		c := e.dial(t, protocol, "polling")
		sess := e.session(t, c.SID())
		if err := sess.Send(Message{Data: []byte("last words")}); err != nil {
			t.Fatal(err)
		}
		sess.Close("server shutting down")
		if r := e.closeReason(t, c.SID()); r != "server shutting down" {
			t.Fatalf("EIO%d: closed with %q", protocol, r)
		}
		for _, want := range []string{"4last words", "1"} {
			pkts, err := c.Recv(testCtx(t))
			if err != nil {
				t.Fatalf("EIO%d: poll after close: %v", protocol, err)
			}
			if len(pkts) != 1 || pkts[0].Text() != want {
				t.Fatalf("EIO%d: poll after close got %v, want %q alone", protocol, pkts, want)
			}
		}
		resp, body, _ := c.Get(testCtx(t))
		wantError(t, "GET after the close packet", resp, string(body), http.StatusBadRequest, codeUnknownSID)
	}
}

// TestServerCloseAnswersWaitingPoll: a session closed by the server while a
// poll waits answers that poll with what was queued, and the next with the
// close packet alone.
func TestServerCloseAnswersWaitingPoll(t *testing.T) {
	e := startEcho(t, Config{})
	c := e.dial(t, 4, "polling")
	sess := e.session(t, c.SID())
	got := make(chan []string, 1)
	go func() {
		pkts, _ := c.Recv(testCtx(t))
		var out []string
		for _, p := range pkts {
			out = append(out, p.Text())
		}
		got <- out
	}()
	waitFor(t, "the poll to wait", func() bool {
		sess.mu.Lock()
		defer sess.mu.Unlock()
		return sess.poll.waiting
	})
	// Queued without waking the poll, as if it came just before the close.
	sess.mu.Lock()
	sess.queue = append(sess.queue, outPacket{Packet: eioparser.Packet{Type: eioparser.PacketMessage, Data: []byte("last words")}})
	sess.mu.Unlock()
	sess.Close("server shutting down")
	if first := <-got; len(first) != 1 || first[0] != "4last words" {
		t.Fatalf("the waiting poll got %q, want the message alone", first)
	}
	pkts, err := c.Recv(testCtx(t))
	if err != nil || len(pkts) != 1 || pkts[0].Text() != "1" {
		t.Fatalf("the next poll got %v (%v), want the close packet", pkts, err)
	}
}
