package wsconn

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// served is one server-side connection under Serve, as a test sees it.
type served struct {
	conn *Conn
	msgs chan string
	end  chan error
}

// serveOne starts an HTTP server whose one WebSocket is read with Serve,
// and dials it; the client end comes back with what the server saw.
func serveOne(t *testing.T, first []byte) (net.Conn, *served) {
	t.Helper()
	srv := make(chan *served, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _, err := Upgrade(w, r, false)
		if err != nil {
			t.Error(err)
			return
		}
		s := &served{conn: c, msgs: make(chan string, 64), end: make(chan error, 1)}
		var wr Writer[int]
		wr.Conn = c
		c.Serve(NewReader(c, 1<<10, &wr, nil, false), func(op ws.OpCode, data []byte) bool {
			s.msgs <- string(data)
			return string(data) != "stop"
		}, func(err error) { s.end <- err })
		srv <- s
	})
	ts := httptest.NewServer(h)
	t.Cleanup(ts.Close)
	client, _, _, err := ws.Dialer{}.Dial(t.Context(), strings.Replace(ts.URL, "http", "ws", 1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	if len(first) > 0 {
		// Sent at once behind the handshake, so that it may come in
		// the same read as the answer's last bytes.
		client.Write(first)
	}
	select {
	case s := <-srv:
		return client, s
	case <-time.After(5 * time.Second):
		t.Fatal("no connection")
		return nil, nil
	}
}

func (s *served) next(t *testing.T) string {
	t.Helper()
	select {
	case m := <-s.msgs:
		return m
	case err := <-s.end:
		t.Fatalf("ended with %v, want a message", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no message")
	}
	return ""
}

func (s *served) ended(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.end:
		return err
	case m := <-s.msgs:
		t.Fatalf("message %q, want the end", m)
	case <-time.After(5 * time.Second):
		t.Fatal("did not end")
	}
	return nil
}

// both runs a test on the poller path and on the goroutine path.
func both(t *testing.T, f func(t *testing.T)) {
	t.Run("poller", f)
	t.Run("goroutine", func(t *testing.T) {
		usePoller = false
		defer func() { usePoller = true }()
		f(t)
	})
}

func TestServe(t *testing.T) {
	both(t, func(t *testing.T) {
		client, s := serveOne(t, maskedFrame(ws.OpText, true, []byte("early")))
		if m := s.next(t); m != "early" {
			t.Fatalf("got %q", m)
		}
		// A message in pieces, a ping between two of its fragments.
		stream := append(maskedFrame(ws.OpText, false, []byte("hel")), maskedFrame(ws.OpPing, true, []byte("p"))...)
		stream = append(stream, maskedFrame(ws.OpContinuation, true, []byte("lo"))...)
		for i := range stream {
			client.Write(stream[i : i+1])
		}
		if m := s.next(t); m != "hello" {
			t.Fatalf("got %q", m)
		}
		client.SetReadDeadline(time.Now().Add(5 * time.Second))
		if f, err := ws.ReadFrame(client); err != nil || f.Header.OpCode != ws.OpPong || string(f.Payload) != "p" {
			t.Fatalf("pong: %v %v", f.Header.OpCode, err)
		}
		client.Write(maskedFrame(ws.OpText, true, bytes.Repeat([]byte("x"), 2<<10)))
		if err := s.ended(t); !errors.Is(err, wsutil.ErrMessageTooLarge) {
			t.Fatalf("ended with %v", err)
		}
	})
}

func TestServeEnds(t *testing.T) {
	both(t, func(t *testing.T) {
		client, s := serveOne(t, nil)
		client.Close()
		if err := s.ended(t); !errors.Is(err, io.EOF) {
			t.Fatalf("the client left: %v", err)
		}
	})
	both(t, func(t *testing.T) {
		client, s := serveOne(t, nil)
		client.Write(maskedFrame(ws.OpText, true, []byte("stop")))
		s.next(t)
		client.Write(maskedFrame(ws.OpText, true, []byte("unread")))
		select {
		case m := <-s.msgs:
			t.Fatalf("read %q after the handler stopped", m)
		case err := <-s.end:
			t.Fatalf("ended with %v after the handler stopped", err)
		case <-time.After(200 * time.Millisecond):
		}
	})
	both(t, func(t *testing.T) {
		_, s := serveOne(t, nil)
		s.conn.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		if err := s.ended(t); !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("past the deadline: %v", err)
		}
	})
	both(t, func(t *testing.T) {
		client, s := serveOne(t, nil)
		s.conn.Close()
		client.Write(maskedFrame(ws.OpText, true, []byte("late")))
		select {
		case m := <-s.msgs:
			t.Fatalf("read %q after Close", m)
		case <-s.end: // the goroutine path sees its own close
			if usePoller {
				t.Fatal("the poller path reported its own close")
			}
		case <-time.After(200 * time.Millisecond):
		}
	})
}
