//go:build unix

package wsconn

import (
	"errors"
	"net"
	"os"
	"syscall"
)

// tryWrite writes what of p the connection's socket takes at once, without
// waiting: done reports that all of p went. A connection that is not a
// plain socket, or a deadline that has passed, gets done false and no
// error, for the caller to write with a deadline.
func tryWrite(conn net.Conn, p []byte) (n int, done bool, err error) {
	if c, ok := conn.(*Conn); ok {
		conn = c.Conn
	}
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return 0, false, nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return 0, false, nil
	}
	var werr error
	err = rc.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true // never wait here
	})
	if n < 0 {
		n = 0
	}
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		return 0, false, nil
	case err != nil:
		return 0, false, err
	case werr == nil:
		return n, n == len(p), nil
	case errors.Is(werr, syscall.EAGAIN), errors.Is(werr, syscall.EINTR):
		return n, false, nil
	}
	return n, false, &net.OpError{Op: "write", Net: "tcp", Source: conn.LocalAddr(), Addr: conn.RemoteAddr(), Err: os.NewSyscallError("write", werr)}
}
