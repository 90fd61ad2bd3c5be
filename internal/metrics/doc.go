// Package metrics exposes the chat server's Prometheus metrics at /metrics.
// A Metrics value is the observer the Engine.IO and Socket.IO layers and the
// cluster forwarder report to, and the registry other components (the Redis
// adapter) register their own collectors with.
package metrics
