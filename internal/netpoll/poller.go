package netpoll

import (
	"errors"
	"runtime"
	"time"
)

// ErrUnsupported is returned by New where there is no poller.
var ErrUnsupported = errors.New("netpoll: not supported on this system")

// ErrClosed is returned for a connection, or a Poller, that is closed.
var ErrClosed = errors.New("netpoll: closed")

// Options configures a Poller.
type Options struct {
	// MaxWorkers bounds the goroutines that run handlers (default 64 per
	// CPU). A handler that blocks holds one; when all are busy, readable
	// connections wait.
	MaxWorkers int
	// IdleTime is how long a worker waits for more work before it exits
	// (default 10s).
	IdleTime time.Duration
}

func (o *Options) defaults() {
	if o.MaxWorkers <= 0 {
		o.MaxWorkers = 64 * runtime.GOMAXPROCS(0)
	}
	if o.IdleTime <= 0 {
		o.IdleTime = 10 * time.Second
	}
}
