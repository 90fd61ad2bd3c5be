//go:build !unix

package wsconn

import "net"

// tryWrite writes nothing here: the caller writes with a deadline.
func tryWrite(net.Conn, []byte) (int, bool, error) { return 0, false, nil }
