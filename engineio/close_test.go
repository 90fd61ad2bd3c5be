package engineio

import (
	"net/http"
	"testing"
)

// TestServerCloseReachesIdlePoller: a session closed by the server while its
// client has no poll waiting still delivers what was queued, then the close
// packet, on the next poll; only after that is the session gone.
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
		pkts, err := c.Recv(testCtx(t))
		if err != nil {
			t.Fatalf("EIO%d: poll after close: %v", protocol, err)
		}
		var got []string
		for _, p := range pkts {
			got = append(got, p.Text())
		}
		if len(got) != 2 || got[0] != "4last words" || got[1] != "1" {
			t.Fatalf("EIO%d: poll after close got %q, want the message then the close packet", protocol, got)
		}
		resp, body, _ := c.Get(testCtx(t))
		wantError(t, "GET after the close packet", resp, string(body), http.StatusBadRequest, codeUnknownSID)
	}
}
