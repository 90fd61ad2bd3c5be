// Package server assembles the chat server: the Socket.IO endpoint with the
// chat application, the page, the client bundle, and the health endpoints,
// behind one HTTP server with graceful shutdown. With Redis it also joins a
// cluster: a broker, a node registry for forwarding, and the shared clientID
// counter, all on one Redis client.
package server
