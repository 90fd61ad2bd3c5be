// Package socketio implements the Socket.IO protocol, revisions 4 and 5, on
// top of package engineio: the packet codec with binary attachments,
// namespaces and their middlewares, sockets, rooms, acknowledgements and
// broadcasts, for every client generation (1.x and 2.x speak revision 4,
// 3.x and 4.x revision 5).
//
// A Server is an http.Handler for the Socket.IO path:
//
//	io := socketio.NewServer(socketio.Options{})
//	io.Of("/").OnEvent("chat", func(s *socketio.Socket, m *socketio.Message) {
//		io.Of("/").Emit("chat", m.Args[0])
//	})
//	http.Handle("/socket.io/", io)
//
// Every broadcast is encoded once and the same bytes are queued on every
// recipient's connection.
//
// A connection with no Engine.IO or Socket.IO framing at all, such as a
// plain WebSocket, joins a namespace through Namespace.ConnectRaw: each
// message it sends is one event, and it receives the first argument of
// each event, as JSON. Such raw sockets take part in rooms and broadcasts
// like any other; a broadcast computes their form once, too.
//
// A Broker links the servers of a cluster: the server delivers to its own
// sockets, and the broker carries broadcasts and requests (FetchSockets,
// SocketsJoin, ServerSideEmit and the like) between nodes. MemoryBroker
// serves a single node; package redisbroker connects nodes through Redis,
// wire-compatible with the Node.js adapters.
//
// Listeners watch a server without changing it: new connections and their
// end (Server.OnConnection, OnConnectionClose), sockets joining and leaving
// rooms (Namespace.OnJoinRoom, OnLeaveRoom), transport upgrades
// (OnUpgrade), and every event in and out (OnAny, OnAnyOutgoing), as
// Node.js socket.io offers them. Package socketio/admin builds the Socket.IO
// Admin UI's protocol on them.
package socketio
