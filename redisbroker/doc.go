// Package redisbroker connects the Socket.IO servers of a cluster through
// Redis, with redigo. It speaks the wire formats of the Node.js adapters, so
// Node.js servers and emitters can share a cluster with Go ones.
//
// A Client is one node's connection to Redis, from one pool shared by all
// that the node does there:
//
//   - PubSub, a socketio.Broker on publish/subscribe, compatible with
//     @socket.io/redis-adapter;
//   - Registry, where nodes find each other's address;
//   - Counter, a sequence shared by the cluster that survives a Redis
//     restart without persistence.
//
// Wiring a server to the cluster:
//
//	c, err := redisbroker.NewClient("redis://127.0.0.1:6379/0", nil)
//	if err != nil {
//		return err
//	}
//	io := socketio.NewServer(socketio.Options{Broker: redisbroker.NewPubSub(c, redisbroker.PubSubConfig{})})
//
// A node whose Redis goes away keeps serving its own clients, logs why, and
// reconnects by itself.
package redisbroker
