package redisbroker

import (
	"context"
	"crypto/rand"
	"log/slog"
	"math/big"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gomodule/redigo/redis"
)

// subscriber keeps one dedicated connection subscribed to a set of channels
// and patterns, reconnecting with backoff whenever Redis goes away, and
// hands every message to onMessage from its one goroutine.
type subscriber struct {
	c         *Client
	log       *slog.Logger
	cfg       Backoff
	onMessage func(redis.Message)

	// mu guards the subscriptions and the live connection. redigo allows
	// one reader and one writer on a connection at a time: the receive
	// loop is its only reader, and every write to it (subscriptions,
	// health pings) happens under mu.
	mu      sync.Mutex
	subs    map[string]bool // channel or pattern -> is a pattern
	psc     *redis.PubSubConn
	pending int // subscriptions sent but not yet confirmed

	subscribed atomic.Bool
	reconnects atomic.Uint64
}

// Backoff bounds the waits of a broker's reconnections, and how often it
// checks an idle subscription.
type Backoff struct {
	// MinBackoff and MaxBackoff bound the wait between reconnection
	// attempts (defaults 100ms and 2s).
	MinBackoff, MaxBackoff time.Duration
	// HealthInterval is how often an idle subscriber connection is
	// pinged; a connection silent for three intervals is dropped (default
	// 5s).
	HealthInterval time.Duration
}

func (b *Backoff) setDefaults() {
	if b.MinBackoff <= 0 {
		b.MinBackoff = 100 * time.Millisecond
	}
	if b.MaxBackoff < b.MinBackoff {
		b.MaxBackoff = max(2*time.Second, b.MinBackoff)
	}
	if b.HealthInterval <= 0 {
		b.HealthInterval = 5 * time.Second
	}
}

func newSubscriber(c *Client, cfg Backoff, onMessage func(redis.Message)) *subscriber {
	cfg.setDefaults()
	return &subscriber{c: c, log: c.log, cfg: cfg, onMessage: onMessage, subs: make(map[string]bool)}
}

// add subscribes to channels and patterns, now if connected, and on every
// reconnection.
func (s *subscriber) add(channels, patterns []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, ch := range channels {
		s.subs[ch] = false
	}
	for _, p := range patterns {
		s.subs[p] = true
	}
	if s.psc != nil {
		s.subscribed.Store(false)
		if err := s.sendLocked(channels, patterns); err != nil {
			s.psc.Close() // resubscribes everything on reconnect
		}
	}
}

func (s *subscriber) sendLocked(channels, patterns []string) error {
	if len(patterns) > 0 {
		s.pending += len(patterns)
		if err := s.psc.PSubscribe(redis.Args{}.AddFlat(patterns)...); err != nil {
			return err
		}
	}
	if len(channels) > 0 {
		s.pending += len(channels)
		return s.psc.Subscribe(redis.Args{}.AddFlat(channels)...)
	}
	return nil
}

// run keeps the connection up until ctx ends.
func (s *subscriber) run(ctx context.Context, name string) {
	backoff := s.cfg.MinBackoff
	everUp := false
	var lostAt time.Time
	failures := 0
	for ctx.Err() == nil {
		wasUp := false
		err := s.once(ctx, func() {
			wasUp = true
			backoff = s.cfg.MinBackoff
			failures = 0
			if everUp {
				s.reconnects.Add(1)
				s.log.Info("redisbroker: subscriber reconnected", "broker", name, "down_for", time.Since(lostAt).Round(time.Millisecond), "reconnects", s.reconnects.Load())
				s.c.reconnected()
			} else {
				s.log.Info("redisbroker: subscribed", "broker", name)
			}
			everUp = true
		})
		if ctx.Err() != nil {
			return
		}
		wait := jitter(backoff)
		if wasUp {
			lostAt = time.Now()
			s.c.lost()
			s.log.Warn("redisbroker: subscriber connection lost; reconnecting", "broker", name, "err", err, "retry_in", wait.Round(time.Millisecond))
		} else {
			failures++
			s.log.Warn("redisbroker: cannot reach Redis; retrying", "broker", name, "err", err, "attempt", failures, "retry_in", wait.Round(time.Millisecond))
		}
		if !sleep(ctx, wait) {
			return
		}
		backoff = min(2*backoff, s.cfg.MaxBackoff)
	}
}

// sleep waits for d, or until ctx ends, when it returns false.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// jitter spreads reconnections of many nodes over [d/2, d).
func jitter(d time.Duration) time.Duration {
	n, _ := rand.Int(rand.Reader, big.NewInt(int64(d/2)+1))
	return d/2 + time.Duration(n.Int64())
}

// once runs one connection until it fails. onUp is called once every
// subscription is confirmed.
func (s *subscriber) once(ctx context.Context, onUp func()) error {
	conn, err := s.c.dialWaiting(ctx)
	if err != nil {
		return err
	}
	psc := &redis.PubSubConn{Conn: conn}
	s.mu.Lock()
	if ctx.Err() != nil {
		s.mu.Unlock()
		conn.Close()
		return ctx.Err()
	}
	s.psc = psc
	s.pending = 0
	var channels, patterns []string
	for name, pattern := range s.subs {
		if pattern {
			patterns = append(patterns, name)
		} else {
			channels = append(channels, name)
		}
	}
	err = s.sendLocked(channels, patterns)
	nothingToConfirm := s.pending == 0
	s.mu.Unlock()

	stopPing := make(chan struct{})
	defer func() {
		close(stopPing)
		s.subscribed.Store(false)
		s.mu.Lock()
		s.psc = nil
		s.mu.Unlock()
		conn.Close()
	}()
	if err != nil {
		return err
	}
	go s.pingLoop(psc, stopPing)

	up := false
	if nothingToConfirm { // no namespace yet
		up = true
		s.subscribed.Store(true)
		onUp()
	}
	go func() {
		select {
		case <-ctx.Done():
			psc.Close() // unblocks the receive below
		case <-stopPing:
		}
	}()
	readTimeout := 3 * s.cfg.HealthInterval
	for {
		switch m := psc.ReceiveWithTimeout(readTimeout).(type) {
		case redis.Message:
			s.dispatch(m)
		case redis.Subscription:
			if m.Kind != "subscribe" && m.Kind != "psubscribe" {
				continue
			}
			s.mu.Lock()
			s.pending--
			ready := s.pending == 0
			s.mu.Unlock()
			if ready {
				s.subscribed.Store(true)
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

func (s *subscriber) pingLoop(psc *redis.PubSubConn, stop <-chan struct{}) {
	t := time.NewTicker(s.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.mu.Lock()
			var err error
			// With no subscription Redis answers PING outside the
			// subscriber protocol, which the receive loop would take
			// for a broken connection.
			if len(s.subs) > 0 {
				err = psc.Ping("")
			}
			s.mu.Unlock()
			if err != nil {
				psc.Close() // the receive loop reports the failure
				return
			}
		}
	}
}

// dispatch hands a message on; nothing it contains can stop the
// subscriber.
func (s *subscriber) dispatch(m redis.Message) {
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("redisbroker: panic handling a message", "channel", m.Channel, "panic", p, "stack", string(debug.Stack()))
		}
	}()
	s.onMessage(m)
}
