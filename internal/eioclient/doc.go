// Package eioclient is the Engine.IO and Socket.IO client of the tests and
// the tools. Client is a wire-level client: it shows every packet as it
// travels and sends exactly the bytes it is given, malformed ones included.
// ChatClient is a concurrent chat client for runs of thousands of
// connections (the load generator, the soak driver, the limit tests); like
// socket.io-client 4.6+, it keeps its session id and last offset and
// recovers its session when it reconnects (Reconnect); one dialled over
// long-polling moves to WebSocket as socket.io-client does (Upgrade). Both
// speak Engine.IO 3 and 4 over long-polling and WebSocket, and encode and
// decode polling payloads with package eioparser, the server's own codec.
package eioclient
