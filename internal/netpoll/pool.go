package netpoll

import (
	"sync"
	"time"
)

// pool runs functions on at most max goroutines. A function waits for a
// free goroutine when all max are busy; a goroutine idle for idleTime
// exits, so an idle pool holds none.
type pool struct {
	tasks    chan func()
	max      int
	idleTime time.Duration

	mu sync.Mutex
	n  int // goroutines alive
}

func newPool(max int, idleTime time.Duration) *pool {
	return &pool{tasks: make(chan func()), max: max, idleTime: idleTime}
}

// run runs f on a pool goroutine.
func (p *pool) run(f func()) {
	select {
	case p.tasks <- f: // an idle goroutine took it
		return
	default:
	}
	p.mu.Lock()
	if p.n < p.max {
		p.n++
		p.mu.Unlock()
		go p.worker(f)
		return
	}
	p.mu.Unlock()
	p.tasks <- f
}

func (p *pool) worker(f func()) {
	idle := time.NewTimer(p.idleTime)
	defer idle.Stop()
	for {
		f()
		idle.Reset(p.idleTime)
		select {
		case f = <-p.tasks:
		case <-idle.C:
			p.mu.Lock()
			p.n--
			p.mu.Unlock()
			return
		}
	}
}

// size returns the number of goroutines alive.
func (p *pool) size() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}
