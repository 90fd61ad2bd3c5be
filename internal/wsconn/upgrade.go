package wsconn

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gobwas/ws"
)

// IsUpgradeRequest reports whether r asks for a WebSocket: a GET with
// "Upgrade: websocket" and "Connection: upgrade".
func IsUpgradeRequest(r *http.Request) bool {
	return r.Method == http.MethodGet &&
		strings.EqualFold(r.Header.Get("Upgrade"), "websocket") &&
		headerHasToken(r.Header, "Connection", "upgrade")
}

func headerHasToken(h http.Header, name, token string) bool {
	for _, v := range h.Values(name) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// Upgrade answers r's WebSocket handshake and returns the connection,
// agreeing on permessage-deflate (without context takeover) when
// offerDeflate is set and the client offers it; deflate reports whether it
// was agreed. A request that is not a valid handshake gets 400 and an
// error.
func Upgrade(w http.ResponseWriter, r *http.Request, offerDeflate bool) (conn *Conn, deflate bool, err error) {
	var u ws.HTTPUpgrader
	accepted := func() bool { return false }
	if offerDeflate {
		u.Negotiate, accepted = negotiateDeflate()
	}
	nc, rw, _, err := u.Upgrade(r, w)
	if err != nil {
		return nil, false, err
	}
	// The HTTP server's request deadlines would otherwise cut the
	// long-lived connection; heartbeats bound it instead.
	nc.SetDeadline(time.Time{})
	c := &Conn{Conn: nc}
	if rw != nil && rw.Reader.Buffered() > 0 {
		// The client sent frames right behind its handshake; keep the
		// bytes already read.
		c.pre, _ = rw.Reader.Peek(rw.Reader.Buffered())
		c.pre = bytes.Clone(c.pre)
	}
	return c, accepted(), nil
}

// lingerTime bounds how long a closing connection waits for the client to
// close its side, and lingerLimit how much it reads meanwhile.
const (
	lingerTime  = time.Second
	lingerLimit = 4 << 20
)

// CloseWrite shuts down the sending side of conn, once its close frame is
// written, so that the client sees the end of the stream and closes its
// side; whoever reads conn then sees the end too. The read deadline is set
// a second ahead, in case the client does not.
func CloseWrite(conn net.Conn) {
	inner := conn
	if c, ok := conn.(*Conn); ok {
		inner = c.Conn
	}
	if cw, ok := inner.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	conn.SetReadDeadline(time.Now().Add(lingerTime))
}

// Linger closes conn once its close frame is written and no one reads it:
// it shuts down the sending side, reads and drops what the client still
// sends until the client closes its side (for a second and a few megabytes
// at most), then closes conn. Closing at once with input unread would reset
// the connection, and the client could lose the close frame.
func Linger(conn net.Conn) {
	CloseWrite(conn)
	io.Copy(io.Discard, io.LimitReader(conn, lingerLimit))
	conn.Close()
}
