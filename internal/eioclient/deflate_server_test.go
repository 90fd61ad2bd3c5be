package eioclient_test

import (
	"context"
	"net"
	"strings"
	"sync/atomic"
	"testing"

	"siogo/engineio"
	"siogo/internal/eioclient"
	"siogo/internal/server"
	"siogo/internal/testutil"
	"siogo/socketio"
)

// countingConn counts the bytes read from the network.
type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// deflateMember joins the chat at base over WebSocket, offering
// permessage-deflate when deflate is set, and counts what it reads.
func deflateMember(t *testing.T, base string, deflate bool) (*member, *atomic.Int64) {
	t.Helper()
	read := new(atomic.Int64)
	m := &member{lines: make(chan eioclient.ChatLine, 100)}
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var d net.Dialer
	c, err := eioclient.DialChat(ctx, base, eioclient.ChatOptions{
		Deflate: deflate,
		OnLine:  func(l eioclient.ChatLine) { m.lines <- l },
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			conn, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{conn, read}, nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	m.c = c
	t.Cleanup(func() { m.c.Close() })
	return m, read
}

// checkDeflate has a client offering permessage-deflate join the server at
// base beside one that does not. The first must have agreed to the
// extension exactly when agreed is set; both must get every line intact; a
// 4 KB line must take the first far fewer bytes on the wire when it
// agreed, and a line it says compressed must come out intact.
func checkDeflate(t *testing.T, base string, agreed bool) {
	zm, zread := deflateMember(t, base, true)
	pm, _ := deflateMember(t, base, false)
	if zm.c.Deflate() != agreed || pm.c.Deflate() {
		t.Fatalf("Deflate() = %v for the client offering it, %v for the other; want %v, false", zm.c.Deflate(), pm.c.Deflate(), agreed)
	}
	line := strings.Repeat("compressible ", 300)
	z0 := zread.Load()
	pm.say(t, line)
	pm.expect(t, line)
	zm.expect(t, line)
	zn := zread.Load() - z0
	if agreed && zn*10 > int64(len(line)) {
		t.Errorf("the deflate client read %d bytes for a %d-byte line: not compressed", zn, len(line))
	}
	if !agreed && zn < int64(len(line)) {
		t.Errorf("the client read %d bytes for a %d-byte line without deflate", zn, len(line))
	}
	reply := strings.Repeat("a reply, compressed by the client ", 100)
	zm.say(t, reply)
	zm.expect(t, reply)
	pm.expect(t, reply)
}

// TestDeflateWithOurServer: against the chat server with
// permessage-deflate on, a client offering it gets it and lines of over
// 1 KiB come compressed; with it off, the offer is declined.
func TestDeflateWithOurServer(t *testing.T) {
	on, _ := startNode(t, server.Config{Socket: socketio.Options{Engine: engineio.Config{PerMessageDeflate: true, PerMessageDeflateThreshold: 1024}}})
	off, _ := startNode(t, server.Config{})
	t.Run("on", func(t *testing.T) { checkDeflate(t, on, true) })
	t.Run("off", func(t *testing.T) { checkDeflate(t, off, false) })
}

// TestDeflateWithNodeServer: the same against the reference Node.js chat
// server of the benchmark, with and without --per-message-deflate.
func TestDeflateWithNodeServer(t *testing.T) {
	on := testutil.StartNodeServer(t, "bench/node-chat-server.js", "--per-message-deflate")
	off := testutil.StartNodeServer(t, "bench/node-chat-server.js")
	t.Run("on", func(t *testing.T) { checkDeflate(t, on, true) })
	t.Run("off", func(t *testing.T) { checkDeflate(t, off, false) })
}
