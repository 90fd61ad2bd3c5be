package server

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"siogo/internal/cluster"
	"siogo/redisbroker"
	"siogo/socketio"
)

// redisParts is what a node of a cluster has in Redis, on one client: the
// broker, the forwarding of session requests between nodes (whose registry
// lives there too) and, through the client, the clientID counter.
type redisParts struct {
	client *redisbroker.Client
	broker socketio.Broker
	ready  func(context.Context) error
	node   *cluster.Node
}

// Brokers a cluster can use.
const (
	BrokerStreams = "streams"
	BrokerPubSub  = "pubsub"
)

func newRedisParts(cfg *Config) (*redisParts, error) {
	client, err := redisbroker.NewClient(cfg.RedisURL, cfg.Logger)
	if err != nil {
		return nil, err
	}
	node, err := cluster.New(cluster.Config{
		NodeID:   cfg.NodeID,
		Registry: client.Registry(),
		Observer: cfg.Metrics,
		Logger:   cfg.Logger,
	})
	if err != nil {
		client.Close()
		return nil, err
	}
	// Brokers connect in the background: with Redis down the node
	// serves its own clients, logs why and keeps retrying.
	p := &redisParts{client: client, node: node}
	m := cfg.Metrics
	switch cfg.Broker {
	case BrokerStreams, "":
		b := redisbroker.NewStreams(client, redisbroker.StreamsConfig{})
		p.broker, p.ready = b, b.Ready
		m.AddCounterFunc(redisbroker.MetricReconnects, "Times the Redis stream reader reconnected after losing Redis.", b.Reconnects)
		m.AddCounterFunc(redisbroker.MetricMalformed, "Messages from Redis skipped because they could not be decoded.", b.Malformed)
		m.AddCounterFunc(redisbroker.MetricBufferDropped, "Messages kept for the stream while Redis was unreachable that a full buffer dropped.", b.BufferDropped)
		m.AddGaugeFunc(redisbroker.MetricBuffered, "Messages waiting to be added to the Redis stream.", b.Buffered)
	case BrokerPubSub:
		b := redisbroker.NewPubSub(client, redisbroker.PubSubConfig{})
		p.broker, p.ready = b, b.Ready
		m.AddCounterFunc(redisbroker.MetricReconnects, "Times the Redis subscriber connection was re-established after being lost.", b.Reconnects)
		m.AddCounterFunc(redisbroker.MetricDropped, "Messages for other nodes dropped because Redis was unreachable or too slow.", b.Dropped)
		m.AddCounterFunc(redisbroker.MetricMalformed, "Messages from Redis skipped because they could not be decoded.", b.Malformed)
	default:
		client.Close()
		return nil, fmt.Errorf("broker %q: want %s or %s", cfg.Broker, BrokerStreams, BrokerPubSub)
	}
	return p, nil
}

// start registers the node at its advertised address and makes the HTTP
// server cut, when it shuts down, the polls and WebSockets this node
// carries for other nodes, so that the balancer moves them and shutdown
// does not wait for them.
func (p *redisParts) start(ctx context.Context, ln net.Listener, advertise string, hs *http.Server) error {
	if advertise == "" {
		var err error
		if advertise, err = cluster.DefaultAdvertise(ln.Addr()); err != nil {
			return err
		}
	}
	if err := p.node.Start(ctx, advertise); err != nil {
		return err
	}
	hs.RegisterOnShutdown(p.node.Drain)
	return nil
}

// Close leaves the cluster: the registration goes at once, so that other
// nodes stop forwarding here, and the client's connections close.
func (p *redisParts) Close(ctx context.Context) error {
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	err := p.node.Close(dctx)
	if err != nil {
		err = fmt.Errorf("cluster: cannot deregister: %w", err)
	}
	p.client.Close()
	return err
}
