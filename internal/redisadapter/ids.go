package redisadapter

import (
	"context"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// IDAllocator hands out clientIDs shared by the whole cluster from one Redis
// counter: the first INCR returns 1, which is id 0. It implements
// chat.IDAllocator.
//
// A Redis restarted without persistence comes back with the counter gone. So
// that it never hands out an id again, each node remembers the highest
// counter value it has seen and raises the counter back to it, both with
// every allocation and as soon as its subscriber reconnects.
type IDAllocator struct {
	c     *Cluster
	key   string
	floor atomic.Int64 // highest counter value this node has seen
}

// idScript raises the counter to ARGV[1] when it is below, then increments
// it when ARGV[2] is "1". It returns the counter's value.
var idScript = redis.NewScript(1, `
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

// Next implements chat.IDAllocator. It fails when Redis cannot be reached
// before ctx is done; no id is handed out then.
func (a *IDAllocator) Next(ctx context.Context) (int64, error) {
	v, err := a.run(ctx, true)
	if err != nil {
		return 0, fmt.Errorf("redis: %w", err)
	}
	return v - 1, nil
}

func (a *IDAllocator) run(ctx context.Context, incr bool) (int64, error) {
	flag := "0"
	if incr {
		flag = "1"
	}
	// Retrying on a broken connection can skip an id (when the first try
	// ran but its reply was lost) but never repeats one.
	var v int64
	err := a.c.withConn(ctx, func(conn redis.Conn) error {
		var err error
		v, err = redis.Int64(idScript.DoContext(ctx, conn, a.key, a.floor.Load(), flag))
		return err
	})
	if err != nil {
		return 0, err
	}
	for {
		f := a.floor.Load()
		if v <= f || a.floor.CompareAndSwap(f, v) {
			break
		}
	}
	return v, nil
}

// restoreFloor raises the counter to what this node has seen, after a
// reconnection to a Redis that may have lost it.
func (a *IDAllocator) restoreFloor() {
	floor := a.floor.Load()
	if floor == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(a.c.ctx, 2*time.Second)
	defer cancel()
	if _, err := a.run(ctx, false); err != nil {
		a.c.log.Warn("redisadapter: cannot restore the clientID counter", "key", a.key, "floor", floor, "err", err)
	}
}
