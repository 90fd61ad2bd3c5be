package engineio

import (
	"context"
	"net/http"
)

type relayKey struct{}

// Relayed marks r as relayed by another node of a cluster, for a session of
// this node. A relayed long poll whose connection drops leaves its session
// open, and the client's next poll takes over a relayed poll that is still
// held: the node in the middle may have gone away while the client is still
// there.
func Relayed(r *http.Request) *http.Request {
	return r.WithContext(context.WithValue(r.Context(), relayKey{}, true))
}

func isRelayed(r *http.Request) bool {
	v, _ := r.Context().Value(relayKey{}).(bool)
	return v
}

// ParseRequest returns the session id and the transport an Engine.IO request
// names. The session id is empty for a handshake.
func ParseRequest(r *http.Request) (sid, transport string) {
	q := r.URL.Query()
	return q.Get("sid"), q.Get("transport")
}
