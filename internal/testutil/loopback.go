package testutil

import (
	"context"
	"net"
	"sync/atomic"
)

// LoopbackDialer returns a dial function, for ChatOptions.NetDial, that
// takes the loopback source addresses 127.0.0.2 to 127.0.0.(n+1) in turn,
// so that thousands of connections to one server never run out of one
// address's ephemeral ports. Linux routes all of 127.0.0.0/8 to the
// loopback interface.
func LoopbackDialer(n int) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var next atomic.Uint32
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		i := next.Add(1) % uint32(n)
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, byte(2+i))}}
		return d.DialContext(ctx, network, addr)
	}
}
