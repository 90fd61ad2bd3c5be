package server

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"siogo/engineio"
)

// Limits bounds what clients may open. Zero fields mean no limit.
type Limits struct {
	// MaxConnections bounds the open sessions of this node; handshakes
	// beyond it get 503.
	MaxConnections int
	// HandshakesPerSecond bounds new sessions and upgrades per client
	// address (with a burst of twice that); beyond it they get 429.
	HandshakesPerSecond float64
	// TrustForwardedFor takes the client address from the last
	// X-Forwarded-For entry, for nodes that only a proxy can reach.
	TrustForwardedFor bool
}

// admission enforces Limits on handshake and upgrade requests.
type admission struct {
	limits   Limits
	sessions func() int

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newAdmission(l Limits, sessions func() int) *admission {
	return &admission{limits: l, sessions: sessions, buckets: make(map[string]*bucket)}
}

// chain returns an AllowRequest that applies the limits, then next when
// there is one.
func (a *admission) chain(next func(*http.Request) error) func(*http.Request) error {
	if next == nil {
		return a.allow
	}
	return func(r *http.Request) error {
		if err := a.allow(r); err != nil {
			return err
		}
		return next(r)
	}
}

func (a *admission) allow(r *http.Request) error {
	if max := a.limits.MaxConnections; max > 0 && r.URL.Query().Get("sid") == "" && a.sessions() >= max {
		return &engineio.RequestError{Status: http.StatusServiceUnavailable, Message: fmt.Sprintf("connection limit reached (%d)", max)}
	}
	rate := a.limits.HandshakesPerSecond
	if rate <= 0 {
		return nil
	}
	addr := clientAddress(r, a.limits.TrustForwardedFor)
	now := time.Now()
	burst := 2 * rate
	a.mu.Lock()
	defer a.mu.Unlock()
	a.sweepLocked(now, burst/rate)
	b := a.buckets[addr]
	if b == nil {
		b = &bucket{tokens: burst, last: now}
		a.buckets[addr] = b
	}
	b.tokens = min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens < 1 {
		return &engineio.RequestError{Status: http.StatusTooManyRequests, Message: "too many handshakes from this address"}
	}
	b.tokens--
	return nil
}

// sweepLocked drops buckets that have refilled, so the map holds only
// addresses seen within the last refill period.
func (a *admission) sweepLocked(now time.Time, refill float64) {
	if now.Sub(a.swept) < 10*time.Second {
		return
	}
	a.swept = now
	for addr, b := range a.buckets {
		if now.Sub(b.last).Seconds() > refill {
			delete(a.buckets, addr)
		}
	}
}

func clientAddress(r *http.Request, trustForwarded bool) string {
	if trustForwarded {
		if xff := r.Header.Get("X-Forwarded-For"); xff != "" {
			parts := strings.Split(xff, ",")
			return strings.TrimSpace(parts[len(parts)-1])
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
