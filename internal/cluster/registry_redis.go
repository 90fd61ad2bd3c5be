package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Registry maps node ids to the addresses nodes reach each other at.
type Registry interface {
	// Register claims nodeID for addr, or refreshes the claim, for ttl. It
	// fails with ErrNodeIDInUse when another address holds the id.
	Register(ctx context.Context, nodeID, addr string, ttl time.Duration) error
	// Lookup returns the address of a registered node, or ErrUnknownNode.
	Lookup(ctx context.Context, nodeID string) (string, error)
	// Deregister removes the claim if addr still holds it.
	Deregister(ctx context.Context, nodeID, addr string) error
}

// ErrUnknownNode is returned by Lookup for a node that is not registered.
var ErrUnknownNode = errors.New("cluster: unknown node")

// ErrNodeIDInUse is returned by Register when another node holds the id.
var ErrNodeIDInUse = errors.New("cluster: node id in use")

// RedisRegistry keeps each registration as a Redis string with an expiry:
// key KeyPrefix+nodeID, value the node's address.
type RedisRegistry struct {
	Pool *redis.Pool
	// KeyPrefix defaults to "siogo:cluster:node:".
	KeyPrefix string
}

// NewRedisRegistry returns a registry on pool.
func NewRedisRegistry(pool *redis.Pool) *RedisRegistry { return &RedisRegistry{Pool: pool} }

// NewPool returns a redigo pool for a redis:// URL, with the timeouts a
// registry needs: a dead Redis must fail a lookup fast, not hang a request.
func NewPool(url string) *redis.Pool {
	return &redis.Pool{
		DialContext: func(ctx context.Context) (redis.Conn, error) {
			return redis.DialURLContext(ctx, url,
				redis.DialConnectTimeout(2*time.Second),
				redis.DialReadTimeout(2*time.Second),
				redis.DialWriteTimeout(2*time.Second))
		},
		// A connection idle across a Redis restart is dead; check it
		// before use rather than failing the request that gets it.
		TestOnBorrowContext: func(ctx context.Context, c redis.Conn, lastUsed time.Time) error {
			if time.Since(lastUsed) < time.Second {
				return nil
			}
			_, err := redis.DoContext(c, ctx, "PING")
			return err
		},
		MaxIdle:     8,
		IdleTimeout: 4 * time.Minute,
	}
}

func (r *RedisRegistry) key(nodeID string) string {
	if r.KeyPrefix == "" {
		return "siogo:cluster:node:" + nodeID
	}
	return r.KeyPrefix + nodeID
}

// claimScript sets the address unless another address holds the key, in
// one step, so two nodes configured with the same id cannot both win.
var claimScript = redis.NewScript(1, `
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then
  return cur
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 0
`)

// releaseScript deletes the key only if it still holds this address.
var releaseScript = redis.NewScript(1, `
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Register implements Registry.
func (r *RedisRegistry) Register(ctx context.Context, nodeID, addr string, ttl time.Duration) error {
	c, err := r.Pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("cluster: register %s: %w", nodeID, err)
	}
	defer c.Close()
	reply, err := claimScript.DoContext(ctx, c, r.key(nodeID), addr, ttl.Milliseconds())
	if err != nil {
		return fmt.Errorf("cluster: register %s: %w", nodeID, err)
	}
	if holder, ok := reply.([]byte); ok {
		return fmt.Errorf("%w: %q is registered at %s", ErrNodeIDInUse, nodeID, holder)
	}
	return nil
}

// Lookup implements Registry.
func (r *RedisRegistry) Lookup(ctx context.Context, nodeID string) (string, error) {
	c, err := r.Pool.GetContext(ctx)
	if err != nil {
		return "", fmt.Errorf("cluster: lookup %s: %w", nodeID, err)
	}
	defer c.Close()
	addr, err := redis.String(redis.DoContext(c, ctx, "GET", r.key(nodeID)))
	if errors.Is(err, redis.ErrNil) {
		return "", ErrUnknownNode
	}
	if err != nil {
		return "", fmt.Errorf("cluster: lookup %s: %w", nodeID, err)
	}
	return addr, nil
}

// Deregister implements Registry.
func (r *RedisRegistry) Deregister(ctx context.Context, nodeID, addr string) error {
	c, err := r.Pool.GetContext(ctx)
	if err != nil {
		return fmt.Errorf("cluster: deregister %s: %w", nodeID, err)
	}
	defer c.Close()
	if _, err := releaseScript.DoContext(ctx, c, r.key(nodeID), addr); err != nil {
		return fmt.Errorf("cluster: deregister %s: %w", nodeID, err)
	}
	return nil
}
