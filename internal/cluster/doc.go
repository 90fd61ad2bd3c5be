// Package cluster lets chat nodes sit behind a plain round-robin balancer,
// without sticky sessions. Every session id names the node that owns the
// session; a node that receives a polling request or a WebSocket upgrade for
// a session it does not own forwards it, with a reverse proxy, to the owner,
// whose address it finds in a registry (Redis) where every node keeps its
// own entry alive.
//
// A node forwards at most once: forwarded requests carry a header, and a
// node never forwards a request that has it. A request for an owner that is
// unknown or cannot be reached is answered like any request for an unknown
// session (400, "Session ID unknown"), so the client reconnects.
//
// The owner serves a forwarded request as relayed (engineio.Relayed): a
// forwarded long poll runs through two nodes, and when the node in the
// middle goes away (killed, or drained on shutdown) the balancer retries the
// poll on another node, which must find the session still open. So losing a
// node only disconnects the clients whose sessions it owned, those whose
// WebSocket it was carrying, and any client with a POST in flight through
// it, which no balancer can safely replay.
package cluster
