package redisbroker

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

const (
	// outboxSize bounds the messages waiting to be published. Beyond it
	// (Redis unreachable or too slow) messages to other nodes are dropped,
	// and counted, so that local delivery never waits for Redis.
	outboxSize = 16384
	// maxBatch is how many PUBLISH commands share one round trip.
	maxBatch = 512
)

type outgoing struct {
	channel string
	payload []byte
}

// publisher sends PUBLISH commands from a bounded queue, pipelining
// whatever has piled up into one round trip. It takes a pooled connection
// per batch, so no connection is ever shared between goroutines.
type publisher struct {
	c      *Client
	log    *slog.Logger
	outbox chan outgoing
	// closing asks the publisher to send what is queued and stop; done is
	// closed when it has.
	closing chan struct{}
	done    chan struct{}
	stop    context.CancelFunc
	ctx     context.Context

	dropped    atomic.Uint64
	dropLogMu  sync.Mutex
	dropLogged time.Time
}

func newPublisher(c *Client) *publisher {
	ctx, stop := context.WithCancel(context.Background())
	p := &publisher{
		c:       c,
		log:     c.log,
		outbox:  make(chan outgoing, outboxSize),
		closing: make(chan struct{}),
		done:    make(chan struct{}),
		ctx:     ctx,
		stop:    stop,
	}
	go p.run()
	return p
}

// publish queues a message without ever blocking the caller.
func (p *publisher) publish(channel string, payload []byte) {
	select {
	case p.outbox <- outgoing{channel, payload}:
	default:
		p.drop(1, errors.New("outbox full"))
	}
}

// drop counts lost messages and logs at most once every few seconds.
func (p *publisher) drop(n int, err error) {
	total := p.dropped.Add(uint64(n))
	p.dropLogMu.Lock()
	defer p.dropLogMu.Unlock()
	if time.Since(p.dropLogged) >= 5*time.Second {
		p.dropLogged = time.Now()
		p.log.Warn("redisbroker: dropping messages for other nodes", "err", err, "dropped", n, "dropped_total", total)
	}
}

// close sends what is queued, waiting until ctx ends at most, and stops.
func (p *publisher) close(ctx context.Context) {
	select {
	case <-p.closing:
	default:
		close(p.closing)
	}
	select {
	case <-p.done:
	case <-ctx.Done():
		p.stop()
		<-p.done
	}
	p.stop()
}

func (p *publisher) run() {
	defer close(p.done)
	batch := make([]outgoing, 0, maxBatch)
	for {
		select {
		case <-p.ctx.Done():
			return
		case <-p.closing:
			for p.ctx.Err() == nil {
				if batch = p.fill(batch[:0]); len(batch) == 0 {
					return
				}
				p.send(batch)
			}
			return
		case m := <-p.outbox:
			batch = p.fill(append(batch[:0], m))
		}
		p.send(batch)
		clear(batch)
	}
}

// fill appends what is queued to batch, up to maxBatch, without waiting.
func (p *publisher) fill(batch []outgoing) []outgoing {
	for len(batch) < maxBatch {
		select {
		case m := <-p.outbox:
			batch = append(batch, m)
		default:
			return batch
		}
	}
	return batch
}

func (p *publisher) send(batch []outgoing) {
	var err error
	// A connection that broke under us (Redis restarted) fails the batch
	// part that got no reply; that part is retried on a fresh connection.
	for attempt := 0; attempt < 3 && len(batch) > 0; attempt++ {
		var done int
		done, err = p.pipeline(batch)
		batch = batch[done:]
		if err == nil || p.ctx.Err() != nil {
			break
		}
	}
	if len(batch) > 0 && p.ctx.Err() == nil {
		p.drop(len(batch), err)
	}
}

func (p *publisher) pipeline(batch []outgoing) (int, error) {
	return p.c.pipeline(p.ctx, len(batch), func(conn redis.Conn, i int) error {
		return conn.Send("PUBLISH", batch[i].channel, batch[i].payload)
	}, func(err error) { p.drop(1, err) })
}
