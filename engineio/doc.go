// Package engineio implements the server side of the Engine.IO protocol,
// revisions 3 and 4: the handshake, sessions and heartbeats, the HTTP
// long-polling (XHR and JSONP) and WebSocket transports, the upgrade from one
// to the other, and compression (HTTP gzip/deflate for polling,
// permessage-deflate for WebSocket). It knows nothing of Socket.IO: it moves
// opaque text and binary messages between a Server and its clients.
//
// A Server is an http.Handler for the Engine.IO path. For every new session
// it asks the caller for a Handler, which receives the client's messages;
// Session.Send queues messages for the client.
//
//	srv := engineio.NewServer(engineio.Config{}, func(s *engineio.Session) engineio.Handler {
//		return &echo{s}
//	})
//	http.Handle("/engine.io/", srv)
//
// Each session has a bounded send queue. A WebSocket session's writer drains
// the whole queue into one buffered write, so a burst of messages costs one
// system call; a client that cannot keep up is disconnected rather than
// slowing anyone else down. Messages meant for many sessions can be sent
// as they are to each; Server.PrepareBroadcast lets them be compressed once
// for all.
//
// Requests that another node of a cluster relays (see Relayed) are served
// like direct ones, except that a relayed long poll may lose its connection
// without ending its session: the node in the middle may have gone away, and
// the client's next poll, by whatever route, takes over.
package engineio
