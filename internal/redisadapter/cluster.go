// Package redisadapter shares Socket.IO broadcasts, rooms and clientIDs
// between the nodes of a cluster through Redis, using redigo. It speaks the
// wire format of the Node.js Redis adapter (v8), so Node.js servers and
// emitters can share the same Redis with our nodes:
//
//   - broadcasts are msgpack [uid, packet, opts] on "socket.io#<nsp>#", or
//     "socket.io#<nsp>#<room>#" when they target exactly one room;
//   - requests between nodes (all rooms, fetch sockets, server-side emit,
//     remote join, leave and disconnect, broadcasts with acknowledgements)
//     are JSON, some msgpack, on "socket.io-request#<nsp>#", answered on
//     "socket.io-response#<nsp>#".
//
// A Cluster is one node's connection to Redis: a redigo pool for publishing
// and commands, and one dedicated subscriber connection that reconnects by
// itself. Its AdapterFactory plugs into the Socket.IO server, so the core
// never knows which adapter it has; its IDs allocate cluster-wide clientIDs.
package redisadapter

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/url"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"

	"siogo/socketio"
)

// Config configures a Cluster. Only URL is required.
type Config struct {
	// URL locates Redis: redis://[user:password@]host[:port][/db].
	URL string
	// Key prefixes the channel names (default "socket.io", as in Node.js).
	Key string
	// IDKey is the counter behind the cluster-wide clientIDs (default
	// "siogo:chat:clientID").
	IDKey string
	// RequestTimeout bounds a request to the other nodes (default 5s, as
	// in Node.js).
	RequestTimeout time.Duration
	// SocketData gives the "data" of a socket in fetchSockets answers
	// (default: an empty object, as a Node.js socket without data).
	SocketData func(*socketio.Socket) any
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts of the subscriber (defaults 100ms and 2s).
	MinBackoff, MaxBackoff time.Duration
	// HealthInterval is how often the idle subscriber connection is
	// pinged; a connection silent for three intervals is dropped (default
	// 5s).
	HealthInterval time.Duration
	Logger         *slog.Logger
}

func (c *Config) setDefaults() {
	if c.Key == "" {
		c.Key = "socket.io"
	}
	if c.IDKey == "" {
		c.IDKey = "siogo:chat:clientID"
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = 5 * time.Second
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = 100 * time.Millisecond
	}
	if c.MaxBackoff < c.MinBackoff {
		c.MaxBackoff = max(2*time.Second, c.MinBackoff)
	}
	if c.HealthInterval <= 0 {
		c.HealthInterval = 5 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Timeouts of the pooled connections. The subscriber has no read timeout:
// it waits for messages, checked by its own pings.
const (
	connectTimeout = 2 * time.Second
	ioTimeout      = 5 * time.Second
	// outboxSize bounds the messages waiting to be published. Beyond it
	// (Redis unreachable or too slow) messages to other nodes are dropped,
	// and counted, so that local delivery never waits for Redis.
	outboxSize = 16384
	// maxBatch is how many PUBLISH commands share one round trip.
	maxBatch = 512
)

// Cluster is one node's connection to the Redis cluster bus. It is safe for
// concurrent use.
type Cluster struct {
	cfg  Config
	log  *slog.Logger
	uid  string
	pool *redis.Pool
	ids  *IDAllocator

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	outbox chan outgoing
	// closing asks the publisher to send what is queued and stop;
	// published is closed when it has.
	closing   chan struct{}
	published chan struct{}

	// mu guards the adapters and the live subscriber connection. redigo
	// allows one reader and one writer on a connection at a time: the
	// subscriber goroutine is its only reader, and every write to it
	// (subscriptions, health pings) happens under mu.
	mu         sync.Mutex
	adapters   map[string]*Adapter // by namespace
	psc        *redis.PubSubConn
	pendingSub int // subscriptions sent but not yet confirmed

	routesMu sync.RWMutex
	routes   map[string]route // by pattern or channel

	subscribed atomic.Bool
	// lostAt is when the subscriber last lost Redis (Unix nanoseconds):
	// pooled connections idle since before then are suspect.
	lostAt atomic.Int64

	reconnects   atomic.Uint64
	dropped      atomic.Uint64
	malformedMsg atomic.Uint64

	dropLogMu  sync.Mutex
	dropLogged time.Time

	closeOnce sync.Once
}

type route struct {
	a    *Adapter
	kind byte // 'b'roadcast pattern, re'q'uest or re's'ponse channel
}

type outgoing struct {
	channel string
	payload []byte
}

// Metric names under which the counters are meant to be exported, e.g.
// with prometheus.NewCounterFunc(..., func() float64 { return
// float64(c.Reconnects()) }).
const (
	MetricReconnects = "siogo_redis_reconnects_total"
	MetricDropped    = "siogo_redis_publish_dropped_total"
	MetricMalformed  = "siogo_redis_malformed_messages_total"
)

// New returns a cluster connection and starts connecting in the background:
// while Redis is unreachable the node logs why and keeps retrying, serving
// its own clients meanwhile. Only a malformed URL is an error.
func New(cfg Config) (*Cluster, error) {
	cfg.setDefaults()
	if err := checkURL(cfg.URL); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		cfg:       cfg,
		log:       cfg.Logger,
		uid:       newUID(),
		ctx:       ctx,
		cancel:    cancel,
		outbox:    make(chan outgoing, outboxSize),
		closing:   make(chan struct{}),
		published: make(chan struct{}),
		adapters:  make(map[string]*Adapter),
		routes:    make(map[string]route),
	}
	c.pool = &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialURLContext(ctx, cfg.URL,
				redis.DialConnectTimeout(connectTimeout),
				redis.DialReadTimeout(ioTimeout),
				redis.DialWriteTimeout(ioTimeout))
		},
		// A connection idle across a Redis restart is dead; check it
		// before use rather than losing a command to it.
		TestOnBorrowContext: func(ctx context.Context, conn redis.Conn, lastUsed time.Time) error {
			if time.Since(lastUsed) < time.Second && lastUsed.UnixNano() > c.lostAt.Load() {
				return nil
			}
			_, err := redis.DoContext(conn, ctx, "PING")
			return err
		},
		MaxIdle:     16,
		IdleTimeout: 4 * time.Minute,
	}
	c.ids = &IDAllocator{c: c, key: cfg.IDKey}
	c.wg.Add(1)
	go c.runPublisher()
	go c.runSubscriber()
	return c, nil
}

// checkURL rejects what the dialer would reject on every attempt, so that
// a typo fails at start instead of looking like Redis being down.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("redisadapter: bad Redis URL: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "valkey", "valkeys":
	default:
		return fmt.Errorf("redisadapter: bad Redis URL %q: want redis://host:port[/db]", raw)
	}
	if u.Opaque != "" {
		return fmt.Errorf("redisadapter: bad Redis URL %q: want redis://host:port[/db]", raw)
	}
	return nil
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
func (c *Cluster) UID() string { return c.uid }

// AdapterFactory returns the factory to put in socketio.Options.Adapter.
func (c *Cluster) AdapterFactory() socketio.AdapterFactory {
	return func(nsp *socketio.Namespace) socketio.Adapter { return c.newAdapter(nsp) }
}

// IDs returns the cluster-wide clientID allocator.
func (c *Cluster) IDs() *IDAllocator { return c.ids }

// Reconnects returns how many times the subscriber connection was
// re-established after being lost (metric MetricReconnects).
func (c *Cluster) Reconnects() uint64 { return c.reconnects.Load() }

// Dropped returns how many messages for other nodes were dropped (metric
// MetricDropped).
func (c *Cluster) Dropped() uint64 { return c.dropped.Load() }

// Malformed returns how many messages from Redis were skipped as malformed
// (metric MetricMalformed).
func (c *Cluster) Malformed() uint64 { return c.malformedMsg.Load() }

// Subscribed reports whether the subscriber connection is up with every
// subscription confirmed.
func (c *Cluster) Subscribed() bool { return c.subscribed.Load() }

// Ready reports whether the node takes part in the cluster: the subscriber
// is subscribed and Redis answers PING.
func (c *Cluster) Ready(ctx context.Context) error {
	if !c.subscribed.Load() {
		return errors.New("redis subscriber not connected")
	}
	err := c.withConn(ctx, func(conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "PING")
		return err
	})
	if err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// withConn runs f on a pooled connection. When the connection turns out to
// be broken (Redis restarted since it was opened), f runs again on another
// one, so callers see an error only when Redis is really unreachable.
func (c *Cluster) withConn(ctx context.Context, f func(redis.Conn) error) error {
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var conn redis.Conn
		conn, err = c.pool.GetContext(ctx)
		if err != nil {
			return err
		}
		err = f(conn)
		broken := conn.Err() != nil
		conn.Close()
		if err == nil || !broken || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// flushTimeout bounds how long Close waits for queued messages to go out.
const flushTimeout = 2 * time.Second

// Close publishes what is still queued (waiting up to two seconds), then
// stops the subscriber and closes the connections.
func (c *Cluster) Close() error {
	c.closeOnce.Do(func() {
		close(c.closing)
		select {
		case <-c.published:
		case <-time.After(flushTimeout):
		}
		c.cancel()
		c.mu.Lock()
		if c.psc != nil {
			c.psc.Close() // unblocks the receive loop
		}
		c.mu.Unlock()
		c.wg.Wait()
		<-c.published
		c.pool.Close()
	})
	return nil
}

// publish queues a message for Redis without ever blocking the caller.
func (c *Cluster) publish(channel string, payload []byte) {
	select {
	case c.outbox <- outgoing{channel, payload}:
	default:
		c.drop(1, errors.New("outbox full"))
	}
}

// drop counts lost messages and logs at most once every few seconds.
func (c *Cluster) drop(n int, err error) {
	total := c.dropped.Add(uint64(n))
	c.dropLogMu.Lock()
	defer c.dropLogMu.Unlock()
	if time.Since(c.dropLogged) >= 5*time.Second {
		c.dropLogged = time.Now()
		c.log.Warn("redisadapter: dropping messages for other nodes", "err", err, "dropped", n, "dropped_total", total)
	}
}

// runPublisher sends queued messages, pipelining whatever has piled up
// into one round trip. It takes a pooled connection per batch, so no
// connection is ever shared between goroutines.
func (c *Cluster) runPublisher() {
	defer close(c.published)
	batch := make([]outgoing, 0, maxBatch)
	for {
		select {
		case <-c.ctx.Done():
			return
		case <-c.closing:
			c.flush(batch)
			return
		case m := <-c.outbox:
			batch = append(batch[:0], m)
		}
	fill:
		for len(batch) < maxBatch {
			select {
			case m := <-c.outbox:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		c.publishBatch(batch)
		clear(batch)
	}
}

// flush publishes whatever is left in the outbox.
func (c *Cluster) flush(batch []outgoing) {
	for {
		batch = batch[:0]
	fill:
		for len(batch) < maxBatch {
			select {
			case m := <-c.outbox:
				batch = append(batch, m)
			default:
				break fill
			}
		}
		if len(batch) == 0 || c.ctx.Err() != nil {
			return
		}
		c.publishBatch(batch)
	}
}

func (c *Cluster) publishBatch(batch []outgoing) {
	var err error
	// A connection that broke under us (Redis restarted) fails the batch
	// part that got no reply; that part is retried on a fresh connection.
	for attempt := 0; attempt < 3 && len(batch) > 0; attempt++ {
		var done int
		done, err = c.pipeline(batch)
		batch = batch[done:]
		if err == nil || c.ctx.Err() != nil {
			break
		}
	}
	if len(batch) > 0 && c.ctx.Err() == nil {
		c.drop(len(batch), err)
	}
}

func (c *Cluster) pipeline(batch []outgoing) (int, error) {
	ctx, cancel := context.WithTimeout(c.ctx, connectTimeout)
	conn, err := c.pool.GetContext(ctx)
	cancel()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	for _, m := range batch {
		if err := conn.Send("PUBLISH", m.channel, m.payload); err != nil {
			return 0, err
		}
	}
	if err := conn.Flush(); err != nil {
		return 0, err
	}
	for i := range batch {
		if _, err := conn.Receive(); err != nil {
			var re redis.Error
			if errors.As(err, &re) {
				// The server refused this one command; the
				// connection itself is fine.
				c.drop(1, err)
				continue
			}
			return i, err
		}
	}
	return len(batch), nil
}

// runSubscriber keeps the dedicated subscriber connection up, reconnecting
// with exponential backoff, for as long as the cluster is open.
func (c *Cluster) runSubscriber() {
	defer c.wg.Done()
	backoff := c.cfg.MinBackoff
	everUp := false
	var lostAt time.Time
	failures := 0
	for c.ctx.Err() == nil {
		wasUp := false
		err := c.subscribeOnce(func() {
			wasUp = true
			backoff = c.cfg.MinBackoff
			failures = 0
			c.ids.restoreFloor()
			if everUp {
				c.reconnects.Add(1)
				c.log.Info("redisadapter: subscriber reconnected", "down_for", time.Since(lostAt).Round(time.Millisecond), "reconnects", c.reconnects.Load())
			} else {
				c.log.Info("redisadapter: subscribed", "uid", c.uid)
			}
			everUp = true
		})
		if c.ctx.Err() != nil {
			return
		}
		wait := jitter(backoff)
		if wasUp {
			lostAt = time.Now()
			c.lostAt.Store(lostAt.UnixNano())
			c.log.Warn("redisadapter: subscriber connection lost; reconnecting", "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			failures++
			c.log.Warn("redisadapter: cannot reach Redis; retrying", "err", err, "attempt", failures, "retry_in", wait.Round(time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-c.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, c.cfg.MaxBackoff)
	}
}

// jitter spreads reconnections of many nodes over [d/2, d).
func jitter(d time.Duration) time.Duration {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(d/2)+1))
	return d/2 + time.Duration(n.Int64())
}

// subscribeOnce runs one subscriber connection until it fails. onUp is
// called once every subscription is confirmed.
func (c *Cluster) subscribeOnce(onUp func()) error {
	ctx, cancel := context.WithTimeout(c.ctx, connectTimeout)
	conn, err := redis.DialURLContext(ctx, c.cfg.URL, redis.DialConnectTimeout(connectTimeout), redis.DialWriteTimeout(ioTimeout))
	cancel()
	if err != nil {
		return err
	}
	psc := &redis.PubSubConn{Conn: conn}
	c.mu.Lock()
	if c.ctx.Err() != nil {
		c.mu.Unlock()
		conn.Close()
		return c.ctx.Err()
	}
	c.psc = psc
	c.pendingSub = 0
	for _, a := range c.adapters {
		if err = c.subscribeLocked(a); err != nil {
			break
		}
	}
	c.mu.Unlock()

	stopPing := make(chan struct{})
	defer func() {
		close(stopPing)
		c.subscribed.Store(false)
		c.mu.Lock()
		c.psc = nil
		c.mu.Unlock()
		conn.Close()
	}()
	if err != nil {
		return err
	}
	go c.pingLoop(psc, stopPing)

	up := false
	c.mu.Lock()
	nothingToConfirm := c.pendingSub == 0
	c.mu.Unlock()
	if nothingToConfirm { // no namespace yet
		up = true
		c.subscribed.Store(true)
		onUp()
	}
	readTimeout := 3 * c.cfg.HealthInterval
	for {
		switch m := psc.ReceiveWithTimeout(readTimeout).(type) {
		case redis.Message:
			c.dispatch(m)
		case redis.Subscription:
			if m.Kind != "subscribe" && m.Kind != "psubscribe" {
				continue
			}
			c.mu.Lock()
			c.pendingSub--
			ready := c.pendingSub == 0
			c.mu.Unlock()
			if ready {
				c.subscribed.Store(true)
				if !up {
					up = true
					onUp()
				}
			}
		case redis.Pong:
		case error:
			return m
		}
	}
}

func (c *Cluster) pingLoop(psc *redis.PubSubConn, stop <-chan struct{}) {
	t := time.NewTicker(c.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			c.mu.Lock()
			var err error
			// With no subscription left (the adapters close before the
			// cluster on shutdown) Redis answers PING outside the
			// subscriber protocol, which the receive loop would take for
			// a broken connection.
			if len(c.adapters) > 0 {
				err = psc.Ping("")
			}
			c.mu.Unlock()
			if err != nil {
				psc.Close() // the receive loop reports the failure
				return
			}
		}
	}
}

// subscribeLocked subscribes the live connection to a's channels.
func (c *Cluster) subscribeLocked(a *Adapter) error {
	if c.psc == nil {
		return nil
	}
	c.pendingSub += 4
	if err := c.psc.Conn.Send("PSUBSCRIBE", a.pattern); err != nil {
		return err
	}
	return c.psc.Subscribe(a.requestChannel, a.responseChannel, a.specificResponseChannel)
}

// register adds a namespace's adapter and subscribes to its channels.
func (c *Cluster) register(a *Adapter) {
	c.routesMu.Lock()
	c.routes[a.pattern] = route{a, 'b'}
	c.routes[a.requestChannel] = route{a, 'q'}
	c.routes[a.responseChannel] = route{a, 's'}
	c.routes[a.specificResponseChannel] = route{a, 's'}
	c.routesMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adapters[a.nsp.Name()] = a
	if c.psc != nil {
		c.subscribed.Store(false)
		if err := c.subscribeLocked(a); err != nil {
			c.psc.Close() // resubscribes everything on reconnect
		}
	}
}

// unregister removes a namespace's adapter and its subscriptions.
func (c *Cluster) unregister(a *Adapter) {
	c.routesMu.Lock()
	delete(c.routes, a.pattern)
	delete(c.routes, a.requestChannel)
	delete(c.routes, a.responseChannel)
	delete(c.routes, a.specificResponseChannel)
	c.routesMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.adapters, a.nsp.Name())
	if c.psc != nil {
		c.psc.PUnsubscribe(a.pattern)
		c.psc.Unsubscribe(a.requestChannel, a.responseChannel, a.specificResponseChannel)
	}
}

// dispatch hands a message to its namespace's adapter. A message that
// cannot be handled is logged and skipped; nothing it contains can stop the
// subscriber.
func (c *Cluster) dispatch(m redis.Message) {
	key := m.Channel
	if m.Pattern != "" {
		key = m.Pattern
	}
	c.routesMu.RLock()
	r, ok := c.routes[key]
	c.routesMu.RUnlock()
	if !ok {
		return
	}
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("redisadapter: panic handling a message", "channel", m.Channel, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	var err error
	switch r.kind {
	case 'b':
		err = r.a.onBroadcast(m.Channel, m.Data)
	case 'q':
		err = r.a.onRequest(m.Data)
	case 's':
		err = r.a.onResponse(m.Data)
	}
	if err != nil {
		c.malformedMsg.Add(1)
		c.log.Warn("redisadapter: skipping message", "channel", m.Channel, "err", err, "size", len(m.Data))
	}
}

// serverCount returns how many nodes listen on a request channel, this one
// included.
func (c *Cluster) serverCount(ctx context.Context, channel string) (int, error) {
	var n int
	err := c.withConn(ctx, func(conn redis.Conn) error {
		vals, err := redis.Values(redis.DoContext(conn, ctx, "PUBSUB", "NUMSUB", channel))
		if err != nil {
			return err
		}
		if len(vals) != 2 {
			return fmt.Errorf("redisadapter: unexpected PUBSUB NUMSUB reply %v", vals)
		}
		n, err = redis.Int(vals[1], nil)
		return err
	})
	return n, err
}
