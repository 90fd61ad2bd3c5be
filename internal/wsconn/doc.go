// Package wsconn is the server side of one WebSocket connection, as both
// package engineio's WebSocket transport and the plain WebSocket endpoint
// (internal/plainws) use it: the upgrade, a Reader of whole messages that
// enforces the size limit and UTF-8 and answers control frames, a Writer
// whose goroutine exists only while there is traffic and writes each batch
// of frames with one flush, and the close frames that tell a client why its
// connection ends.
//
// The framing comes from gobwas/ws; this package adds what both servers
// need on top of it and nothing of either protocol: what goes into a frame
// is the caller's business (see Source).
package wsconn
