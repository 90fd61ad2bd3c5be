package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Registry is where the nodes of a cluster find each other: each node keeps
// its address under its id, as a Redis string with an expiry (key
// "siogo:cluster:node:<id>").
type Registry struct {
	c      *Client
	prefix string
}

// Registry returns the node registry.
func (c *Client) Registry() *Registry {
	return &Registry{c: c, prefix: "siogo:cluster:node:"}
}

func (r *Registry) key(nodeID string) string { return r.prefix + nodeID }

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

// Register claims nodeID for addr, or refreshes the claim, for ttl. When
// another address holds the id, it claims nothing and returns that address.
func (r *Registry) Register(ctx context.Context, nodeID, addr string, ttl time.Duration) (holder string, err error) {
	var reply any
	err = r.c.do(ctx, func(conn redis.Conn) error {
		var err error
		reply, err = claimScript.DoContext(ctx, conn, r.key(nodeID), addr, ttl.Milliseconds())
		return err
	})
	if err != nil {
		return "", fmt.Errorf("redisbroker: register %s: %w", nodeID, err)
	}
	if b, ok := reply.([]byte); ok {
		return string(b), nil
	}
	return "", nil
}

// Lookup returns the address of a node, "" when it is not registered.
func (r *Registry) Lookup(ctx context.Context, nodeID string) (string, error) {
	var addr string
	err := r.c.do(ctx, func(conn redis.Conn) error {
		var err error
		addr, err = redis.String(redis.DoContext(conn, ctx, "GET", r.key(nodeID)))
		return err
	})
	if errors.Is(err, redis.ErrNil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redisbroker: lookup %s: %w", nodeID, err)
	}
	return addr, nil
}

// Deregister removes the claim if addr still holds it.
func (r *Registry) Deregister(ctx context.Context, nodeID, addr string) error {
	err := r.c.do(ctx, func(conn redis.Conn) error {
		_, err := releaseScript.DoContext(ctx, conn, r.key(nodeID), addr)
		return err
	})
	if err != nil {
		return fmt.Errorf("redisbroker: deregister %s: %w", nodeID, err)
	}
	return nil
}
