// Package ratelimit holds the packet-rate limit that every client connection
// is held to, whatever its transport: a token bucket refilled at the
// configured rate that holds at most one second's worth.
package ratelimit

import "time"

// Bucket is the packet rate limit of one connection. The zero value is full.
// It is not safe for concurrent use.
type Bucket struct {
	tokens float64
	last   time.Time
}

// Allow spends a token and reports whether there was one; limit is the rate
// per second, 0 or less for none.
func (b *Bucket) Allow(limit int) bool {
	if limit <= 0 {
		return true
	}
	now := time.Now()
	if b.last.IsZero() {
		b.tokens = float64(limit)
	} else {
		b.tokens = min(float64(limit), b.tokens+now.Sub(b.last).Seconds()*float64(limit))
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
