//go:build linux

package netpoll

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T, ln net.Listener) (client, server *net.TCPConn) {
	t.Helper()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

func newPoller(t *testing.T, opts Options) *Poller {
	t.Helper()
	p, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func recv(t *testing.T, ch <-chan string) string {
	t.Helper()
	select {
	case s := <-ch:
		return s
	case <-time.After(5 * time.Second):
		t.Fatal("the handler did not run")
		return ""
	}
}

func quiet(t *testing.T, ch <-chan string) {
	t.Helper()
	select {
	case s := <-ch:
		t.Fatalf("the handler ran (%q) when it should not", s)
	case <-time.After(100 * time.Millisecond):
	}
}

// TestReadableOncePerArming: the handler runs when bytes arrive, reads
// them without waiting, and runs again only after Resume.
func TestReadableOncePerArming(t *testing.T) {
	p := newPoller(t, Options{})
	client, server := pair(t, listen(t))
	got := make(chan string, 8)
	d, err := p.Add(server, func(d *Desc) {
		b := make([]byte, 64)
		n, err := d.TryRead(b)
		if err != nil {
			got <- "error: " + err.Error()
			return
		}
		got <- string(b[:n])
	})
	if err != nil {
		t.Fatal(err)
	}
	quiet(t, got)
	client.Write([]byte("one"))
	if s := recv(t, got); s != "one" {
		t.Fatalf("read %q", s)
	}
	client.Write([]byte("two"))
	quiet(t, got) // not armed
	if err := d.Resume(); err != nil {
		t.Fatal(err)
	}
	if s := recv(t, got); s != "two" {
		t.Fatalf("read %q", s)
	}
	// Nothing ready: TryRead does not wait.
	if n, err := d.TryRead(make([]byte, 8)); n != 0 || err != nil {
		t.Fatalf("TryRead on an empty connection: %d, %v", n, err)
	}
	client.Close()
	d.Resume()
	if s := recv(t, got); s != "error: "+io.EOF.Error() {
		t.Fatalf("after the peer closed: %q", s)
	}
	d.Remove()
}

// TestClosedIsNotConfused: a connection closed with events on their way is
// never taken for the connection that gets its descriptor next.
func TestClosedIsNotConfused(t *testing.T) {
	p := newPoller(t, Options{})
	ln := listen(t)
	for range 50 {
		client, server := pair(t, ln)
		fired := make(chan string, 4)
		d, err := p.Add(server, func(*Desc) { fired <- "old" })
		if err != nil {
			t.Fatal(err)
		}
		client.Write([]byte("x"))
		server.Close()
		d.Remove()
		if err := d.Resume(); err != ErrClosed {
			t.Fatalf("Resume after close: %v", err)
		}
		// Drain a stale run, if one started before the close.
		select {
		case <-fired:
		case <-time.After(10 * time.Millisecond):
		}
		c2, s2 := pair(t, ln)
		got := make(chan string, 4)
		d2, err := p.Add(s2, func(d *Desc) {
			b := make([]byte, 8)
			n, _ := d.TryRead(b)
			got <- string(b[:n])
		})
		if err != nil {
			t.Fatal(err)
		}
		c2.Write([]byte("new"))
		if s := recv(t, got); s != "new" {
			t.Fatalf("read %q", s)
		}
		quiet2 := len(fired)
		if quiet2 != 0 {
			t.Fatal("the closed connection's handler ran after its close")
		}
		d2.Remove()
	}
}

// TestManyConnectionsFewWorkers: thousands of connections, each readable
// once, are all served, by no more workers than allowed.
func TestManyConnectionsFewWorkers(t *testing.T) {
	const conns, workers = 2000, 4
	p := newPoller(t, Options{MaxWorkers: workers})
	ln := listen(t)
	var served atomic.Int64
	var running, most atomic.Int64
	var wg sync.WaitGroup
	clients := make([]*net.TCPConn, conns)
	for i := range conns {
		c, s := pair(t, ln)
		clients[i] = c
		wg.Add(1)
		_, err := p.Add(s, func(d *Desc) {
			r := running.Add(1)
			for {
				m := most.Load()
				if r <= m || most.CompareAndSwap(m, r) {
					break
				}
			}
			b := make([]byte, 16)
			if n, _ := d.TryRead(b); n > 0 {
				served.Add(1)
				wg.Done()
			}
			running.Add(-1)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range clients {
		c.Write([]byte("hi"))
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatalf("served %d of %d", served.Load(), conns)
	}
	if m := most.Load(); m > workers {
		t.Fatalf("%d handlers ran at once, over the %d workers", m, workers)
	}
	if n := p.Workers(); n > workers {
		t.Fatalf("%d workers alive", n)
	}
}

// TestIdleWorkersExit: the pool shrinks to nothing when there is no work.
func TestIdleWorkersExit(t *testing.T) {
	p := newPoller(t, Options{IdleTime: 50 * time.Millisecond})
	client, server := pair(t, listen(t))
	ran := make(chan string, 1)
	if _, err := p.Add(server, func(*Desc) { ran <- "" }); err != nil {
		t.Fatal(err)
	}
	client.Write([]byte("x"))
	recv(t, ran)
	deadline := time.Now().Add(5 * time.Second)
	for p.Workers() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d workers still alive", p.Workers())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
