package redisbroker

import (
	"context"
	"crypto/rand"
	"fmt"
	"math/big"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/gomodule/redigo/redis"

	"siogo/socketio"
)

// PubSub is a socketio.Broker on Redis publish/subscribe, wire-compatible
// with the Node.js Redis adapter (@socket.io/redis-adapter v8), so that
// Node.js servers and emitters can share a cluster with Go ones:
//
//   - broadcasts are msgpack [uid, packet, opts] on "socket.io#<nsp>#", or
//     "socket.io#<nsp>#<room>#" when they target exactly one room;
//   - requests between nodes (all rooms, fetch sockets, server-side emit,
//     remote join, leave and disconnect, broadcasts with acknowledgements)
//     go to "socket.io-request#<nsp>#" and are answered on
//     "socket.io-response#<nsp>#<requester uid>#".
//
// Publish/subscribe keeps nothing: a node that is away misses what is
// published meanwhile, so PubSub is not a socketio.DurableBroker.
type PubSub struct {
	c   *Client
	cfg PubSubConfig
	uid string
	h   socketio.BrokerHandler

	pub *publisher
	sub *subscriber

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.RWMutex
	nsps   map[string]*pubsubChannels // by namespace
	routes map[string]route           // by pattern or channel

	malformedMsg atomic.Uint64
	closeOnce    sync.Once
}

// PubSubConfig configures a PubSub broker. The zero value works.
type PubSubConfig struct {
	// Key prefixes the channel names (default "socket.io", as in Node.js).
	Key string
	Backoff
}

// pubsubChannels are the channels of one namespace.
type pubsubChannels struct {
	nsp              string
	broadcast        string // socket.io#<nsp>#
	pattern          string // broadcast, glob-escaped, then *
	request          string // socket.io-request#<nsp>#
	response         string // socket.io-response#<nsp>#
	specificResponse string // socket.io-response#<nsp>#<uid>#
}

type route struct {
	ch   *pubsubChannels
	kind byte // 'b'roadcast pattern, re'q'uest or re's'ponse channel
}

// NewPubSub returns a broker on c. It starts connecting when the Socket.IO
// server opens it: while Redis is unreachable the node logs why and keeps
// retrying, serving its own clients meanwhile.
func NewPubSub(c *Client, cfg PubSubConfig) *PubSub {
	if cfg.Key == "" {
		cfg.Key = "socket.io"
	}
	cfg.Backoff.setDefaults()
	b := &PubSub{
		c:      c,
		cfg:    cfg,
		uid:    newUID(),
		nsps:   make(map[string]*pubsubChannels),
		routes: make(map[string]route),
	}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	b.sub = newSubscriber(c, cfg.Backoff, b.dispatch)
	return b
}

const uidAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

// newUID returns a 6-character node id like the Node.js adapter's.
func newUID() string {
	b := make([]byte, 6)
	for i := range b {
		n, _ := rand.Int(rand.Reader, big.NewInt(int64(len(uidAlphabet))))
		b[i] = uidAlphabet[n.Int64()]
	}
	return string(b)
}

// UID returns the node's id on the bus.
func (b *PubSub) UID() string { return b.uid }

// Open implements socketio.Broker.
func (b *PubSub) Open(h socketio.BrokerHandler) {
	b.h = h
	b.pub = newPublisher(b.c)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.sub.run(b.ctx, "pubsub "+b.uid)
	}()
}

// globEscaper keeps a namespace name such as "/a*" from widening the
// subscription pattern to other namespaces' channels.
var globEscaper = strings.NewReplacer(`\`, `\\`, `*`, `\*`, `?`, `\?`, `[`, `\[`, `]`, `\]`)

// Subscribe implements socketio.Broker.
func (b *PubSub) Subscribe(nsp string) error {
	ch := &pubsubChannels{
		nsp:       nsp,
		broadcast: b.cfg.Key + "#" + nsp + "#",
		request:   b.cfg.Key + "-request#" + nsp + "#",
		response:  b.cfg.Key + "-response#" + nsp + "#",
	}
	ch.specificResponse = ch.response + b.uid + "#"
	ch.pattern = globEscaper.Replace(ch.broadcast) + "*"
	b.mu.Lock()
	b.nsps[nsp] = ch
	b.routes[ch.pattern] = route{ch, 'b'}
	b.routes[ch.request] = route{ch, 'q'}
	b.routes[ch.response] = route{ch, 's'}
	b.routes[ch.specificResponse] = route{ch, 's'}
	b.mu.Unlock()
	b.sub.add([]string{ch.request, ch.response, ch.specificResponse}, []string{ch.pattern})
	return nil
}

func (b *PubSub) channels(nsp string) (*pubsubChannels, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	ch := b.nsps[nsp]
	if ch == nil {
		return nil, fmt.Errorf("redisbroker: namespace %q is not subscribed", nsp)
	}
	return ch, nil
}

// Publish implements socketio.Broker: the broadcast goes to the other nodes
// through Redis, on the room's own channel when it targets exactly one
// room, as the Node.js adapter does.
func (b *PubSub) Publish(bc *socketio.Broadcast) {
	ch, err := b.channels(bc.Namespace)
	if err != nil {
		b.pub.drop(1, err)
		return
	}
	msg, err := encodeBroadcast(b.uid, bc)
	if err != nil {
		b.pub.drop(1, err)
		return
	}
	channel := ch.broadcast
	if len(bc.Opts.Rooms) == 1 {
		channel += string(bc.Opts.Rooms[0]) + "#"
	}
	b.pub.publish(channel, msg)
}

// Send implements socketio.Broker.
func (b *PubSub) Send(m *socketio.NodeRequest) error {
	ch, err := b.channels(m.Namespace)
	if err != nil {
		return err
	}
	payload, err := encodeMessage(b.uid, m)
	if err != nil {
		return err
	}
	b.pub.publish(ch.request, payload)
	return nil
}

// Reply implements socketio.Broker. A Node.js node listens on both
// response channels whatever its settings, so the one named after the
// requester keeps answers away from the other nodes.
func (b *PubSub) Reply(to string, r *socketio.NodeReply) error {
	ch, err := b.channels(r.Namespace)
	if err != nil {
		return err
	}
	payload, err := encodeResponse(r)
	if err != nil {
		return err
	}
	channel := ch.response
	if to != "" {
		channel += to + "#"
	}
	b.pub.publish(channel, payload)
	return nil
}

// ServerCount implements socketio.Broker: the subscribers of the
// namespace's request channel, as the Node.js adapter counts them.
func (b *PubSub) ServerCount(ctx context.Context, nsp string) (int, error) {
	ch, err := b.channels(nsp)
	if err != nil {
		return 0, err
	}
	return numSub(ctx, b.c, ch.request)
}

// numSub returns how many connections subscribe to a channel.
func numSub(ctx context.Context, c *Client, channel string) (int, error) {
	var n int
	err := c.do(ctx, func(conn redis.Conn) error {
		vals, err := redis.Values(redis.DoContext(conn, ctx, "PUBSUB", "NUMSUB", channel))
		if err != nil {
			return err
		}
		if len(vals) != 2 {
			return fmt.Errorf("redisbroker: unexpected PUBSUB NUMSUB reply %v", vals)
		}
		n, err = redis.Int(vals[1], nil)
		return err
	})
	return n, err
}

// Close implements socketio.Broker: it publishes what is still queued,
// waiting until ctx ends at most, then unsubscribes. The Client stays open.
func (b *PubSub) Close(ctx context.Context) error {
	b.closeOnce.Do(func() {
		if b.pub != nil {
			b.pub.close(ctx)
		}
		b.cancel()
		b.wg.Wait()
	})
	return nil
}

// Metric names under which the counters are meant to be exported.
const (
	MetricReconnects = "siogo_redis_reconnects_total"
	MetricDropped    = "siogo_redis_publish_dropped_total"
	MetricMalformed  = "siogo_redis_malformed_messages_total"
)

// Reconnects returns how many times the subscriber connection was
// re-established after being lost (metric MetricReconnects).
func (b *PubSub) Reconnects() uint64 { return b.sub.reconnects.Load() }

// Dropped returns how many messages for other nodes were dropped (metric
// MetricDropped).
func (b *PubSub) Dropped() uint64 {
	if b.pub == nil {
		return 0
	}
	return b.pub.dropped.Load()
}

// Malformed returns how many messages from Redis were skipped as malformed
// (metric MetricMalformed).
func (b *PubSub) Malformed() uint64 { return b.malformedMsg.Load() }

// Subscribed reports whether the subscriber connection is up with every
// subscription confirmed.
func (b *PubSub) Subscribed() bool { return b.sub.subscribed.Load() }

// Ready reports whether the node takes part in the cluster: the subscriber
// is subscribed and Redis answers PING.
func (b *PubSub) Ready(ctx context.Context) error {
	if !b.Subscribed() {
		return fmt.Errorf("redis subscriber not connected")
	}
	if err := b.c.Ping(ctx); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// dispatch handles one message from Redis. A message that cannot be handled
// is logged and skipped.
func (b *PubSub) dispatch(m redis.Message) {
	key := m.Channel
	if m.Pattern != "" {
		key = m.Pattern
	}
	b.mu.RLock()
	r, ok := b.routes[key]
	b.mu.RUnlock()
	if !ok {
		return
	}
	var err error
	switch r.kind {
	case 'b':
		err = b.onBroadcast(r.ch, m.Channel, m.Data)
	case 'q':
		err = b.onRequest(r.ch, m.Data)
	case 's':
		err = b.onReply(r.ch, m.Data)
	}
	if err != nil {
		b.malformedMsg.Add(1)
		b.c.log.Warn("redisbroker: skipping message", "channel", m.Channel, "err", err, "size", len(m.Data))
	}
}

func (b *PubSub) onBroadcast(ch *pubsubChannels, channel string, data []byte) error {
	if !strings.HasPrefix(channel, ch.broadcast) {
		return nil
	}
	if peekUID(data) == b.uid {
		return nil // this node's own, delivered when published
	}
	m, err := decodeBroadcast(data)
	if err != nil {
		return err
	}
	if m.UID == b.uid || m.Nsp != ch.nsp {
		return nil
	}
	if m.Type != packetEvent && m.Type != packetBinaryEvent {
		return malformed("broadcast of packet type %d", m.Type)
	}
	b.h.HandleBroadcast(m.broadcast(), "")
	return nil
}

func (b *PubSub) onRequest(ch *pubsubChannels, data []byte) error {
	r, err := decodeRequest(data)
	if err != nil {
		return err
	}
	if r.UID == b.uid {
		return nil // applied locally when sent
	}
	m, err := r.message(ch.nsp)
	if err != nil || m == nil {
		return err
	}
	b.h.HandleRequest(m)
	return nil
}

func (b *PubSub) onReply(ch *pubsubChannels, data []byte) error {
	r, err := decodeRequest(data)
	if err != nil {
		return err
	}
	resp, err := r.response(ch.nsp)
	if err != nil {
		return err
	}
	b.h.HandleReply(resp)
	return nil
}
