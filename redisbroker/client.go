package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Timeouts of the connections.
const (
	connectTimeout = 2 * time.Second
	ioTimeout      = 5 * time.Second
)

// Client is one node's connection to Redis, shared by everything that node
// does there: its broker, its registry entry and its counters. Every
// connection comes from one redigo pool, but for the long-lived ones a
// broker dials for its subscriptions, with the same settings.
type Client struct {
	url  string
	pool *redis.Pool
	log  *slog.Logger

	// lostAt is when a broker last lost Redis (Unix nanoseconds): pooled
	// connections idle since before then are suspect.
	lostAt atomic.Int64

	mu          sync.Mutex
	onReconnect []func()
}

// NewClient returns a client for a Redis URL,
// redis://[user:password@]host[:port][/db]. It connects lazily: only a
// malformed URL is an error.
func NewClient(rawURL string, log *slog.Logger) (*Client, error) {
	if err := checkURL(rawURL); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	c := &Client{url: rawURL, log: log}
	c.pool = &redis.Pool{
		DialContext: c.dial,
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
	return c, nil
}

// checkURL rejects what the dialer would reject on every attempt, so that
// a typo fails at start instead of looking like Redis being down.
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("redisbroker: bad Redis URL: %w", err)
	}
	switch u.Scheme {
	case "redis", "rediss", "valkey", "valkeys":
	default:
		return fmt.Errorf("redisbroker: bad Redis URL %q: want redis://host:port[/db]", raw)
	}
	if u.Opaque != "" {
		return fmt.Errorf("redisbroker: bad Redis URL %q: want redis://host:port[/db]", raw)
	}
	return nil
}

// dial opens a connection: the pool's, and the dedicated ones of the
// brokers' subscribers, which set no read timeout because they wait.
func (c *Client) dial(ctx context.Context) (redis.Conn, error) {
	return redis.DialURLContext(ctx, c.url,
		redis.DialConnectTimeout(connectTimeout),
		redis.DialReadTimeout(ioTimeout),
		redis.DialWriteTimeout(ioTimeout))
}

func (c *Client) dialWaiting(ctx context.Context) (redis.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, connectTimeout)
	defer cancel()
	return redis.DialURLContext(ctx, c.url, redis.DialConnectTimeout(connectTimeout), redis.DialWriteTimeout(ioTimeout))
}

// Ping checks that Redis answers.
func (c *Client) Ping(ctx context.Context) error {
	return c.do(ctx, func(conn redis.Conn) error {
		_, err := redis.DoContext(conn, ctx, "PING")
		return err
	})
}

// Close closes the pooled connections.
func (c *Client) Close() error { return c.pool.Close() }

// do runs f on a pooled connection. When the connection turns out to be
// broken (Redis restarted since it was opened), f runs again on another
// one, so callers see an error only when Redis is really unreachable.
func (c *Client) do(ctx context.Context, f func(redis.Conn) error) error {
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

// pipeline sends n commands in one round trip on a pooled connection and
// reads their replies. It returns how many were answered before the
// connection failed; a command that Redis refuses counts as answered and is
// handed to refused.
func (c *Client) pipeline(ctx context.Context, n int, send func(conn redis.Conn, i int) error, refused func(error)) (int, error) {
	gctx, cancel := context.WithTimeout(ctx, connectTimeout)
	conn, err := c.pool.GetContext(gctx)
	cancel()
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	for i := range n {
		if err := send(conn, i); err != nil {
			return 0, err
		}
	}
	if err := conn.Flush(); err != nil {
		return 0, err
	}
	for i := range n {
		if _, err := conn.Receive(); err != nil {
			var re redis.Error
			if errors.As(err, &re) {
				refused(err) // the connection itself is fine
				continue
			}
			return i, err
		}
	}
	return n, nil
}

// lost records that a long-lived connection lost Redis.
func (c *Client) lost() { c.lostAt.Store(time.Now().UnixNano()) }

// reconnected tells those who keep state in Redis that Redis is back,
// possibly restarted without its data.
func (c *Client) reconnected() {
	c.mu.Lock()
	hooks := append([]func(){}, c.onReconnect...)
	c.mu.Unlock()
	for _, f := range hooks {
		f()
	}
}

func (c *Client) whenReconnected(f func()) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.onReconnect = append(c.onReconnect, f)
}

var errMalformed = errors.New("redisbroker: malformed message")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errMalformed, fmt.Sprintf(format, args...))
}
