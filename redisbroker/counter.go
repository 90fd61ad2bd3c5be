package redisbroker

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// Counter is a sequence shared by a cluster, held in one Redis key: Next
// returns 1, 2, 3 and so on, each value once across all nodes.
//
// A Redis restarted without persistence comes back with the key gone. So
// that the sequence never repeats a value, each node remembers the highest
// value it has seen and raises the key back to it, both with every Next and
// as soon as the node's broker finds Redis back.
type Counter struct {
	c     *Client
	key   string
	floor atomic.Int64 // highest value this node has seen
}

// Counter returns the counter held in key.
func (c *Client) Counter(key string) *Counter {
	ctr := &Counter{c: c, key: key}
	c.whenReconnected(ctr.restoreFloor)
	return ctr
}

// counterScript raises the counter to ARGV[1] when it is below, then
// increments it when ARGV[2] is "1". It returns the counter's value.
var counterScript = redis.NewScript(1, `
local cur = tonumber(redis.call('GET', KEYS[1]) or '0')
local floor = tonumber(ARGV[1])
if cur < floor then
	redis.call('SET', KEYS[1], ARGV[1])
	cur = floor
end
if ARGV[2] == '1' then
	return redis.call('INCR', KEYS[1])
end
return cur
`)

// Next returns the next value. It fails when Redis cannot be reached
// before ctx is done; no value is handed out then.
func (ctr *Counter) Next(ctx context.Context) (int64, error) {
	v, err := ctr.run(ctx, true)
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	return v, nil
}

func (ctr *Counter) run(ctx context.Context, incr bool) (int64, error) {
	flag := "0"
	if incr {
		flag = "1"
	}
	// Retrying on a broken connection can skip a value (when the first
	// try ran but its reply was lost) but never repeats one.
	var v int64
	err := ctr.c.do(ctx, func(conn redis.Conn) error {
		var err error
		v, err = redis.Int64(counterScript.DoContext(ctx, conn, ctr.key, ctr.floor.Load(), flag))
		return err
	})
	if err != nil {
		return 0, err
	}
	for {
		f := ctr.floor.Load()
		if v <= f || ctr.floor.CompareAndSwap(f, v) {
			break
		}
	}
	return v, nil
}

// restoreFloor raises the key to what this node has seen, after Redis came
// back, possibly without it.
func (ctr *Counter) restoreFloor() {
	floor := ctr.floor.Load()
	if floor == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := ctr.run(ctx, false); err != nil {
		ctr.c.log.Warn("redisbroker: cannot restore a counter", "key", ctr.key, "floor", floor, "err", err)
	}
}
