package netpoll

import (
	"errors"
	"io"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// Poller runs a handler each time a registered connection is readable.
type Poller struct {
	epfd int
	stop int // eventfd that ends the wait loop
	pool *pool
	done chan struct{}

	mu     sync.Mutex
	descs  []*Desc // by slot
	free   []int32 // free slots
	closed bool
}

// Desc is one connection's registration.
type Desc struct {
	p    *Poller
	rc   syscall.RawConn
	fn   func(*Desc)
	slot int32
	gen  int32
}

// events is what a registration waits for: input, or the peer closing,
// once per arming.
const events = unix.EPOLLIN | unix.EPOLLRDHUP | unix.EPOLLONESHOT

// New starts a Poller.
func New(opts Options) (*Poller, error) {
	opts.defaults()
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	stop, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		unix.Close(epfd)
		return nil, err
	}
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: -1}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, stop, &ev); err != nil {
		unix.Close(epfd)
		unix.Close(stop)
		return nil, err
	}
	p := &Poller{epfd: epfd, stop: stop, pool: newPool(opts.MaxWorkers, opts.IdleTime), done: make(chan struct{})}
	go p.wait()
	return p, nil
}

// Add registers conn and arms it: fn runs on a worker, with the
// registration, once conn is readable (or its peer has closed), and again
// after each Resume. Nothing reads conn meanwhile but fn.
func (p *Poller) Add(conn syscall.Conn, fn func(*Desc)) (*Desc, error) {
	rc, err := conn.SyscallConn()
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	d := &Desc{p: p, rc: rc, fn: fn}
	if n := len(p.free); n > 0 {
		d.slot = p.free[n-1]
		p.free = p.free[:n-1]
	} else {
		d.slot = int32(len(p.descs))
		p.descs = append(p.descs, nil)
	}
	// The generation tells this registration's events from those of the
	// slot's earlier tenants.
	if old := p.descs[d.slot]; old != nil {
		d.gen = old.gen + 1
	}
	p.descs[d.slot] = d
	p.mu.Unlock()
	if err := d.ctl(unix.EPOLL_CTL_ADD); err != nil {
		d.release()
		return nil, err
	}
	return d, nil
}

// Resume arms the registration again, once fn has read what it wanted.
func (d *Desc) Resume() error { return d.ctl(unix.EPOLL_CTL_MOD) }

// Remove ends the registration. Call it before closing the connection, or
// after, when the connection was closed elsewhere; fn is not called again,
// unless it was running already.
func (d *Desc) Remove() {
	d.ctl(unix.EPOLL_CTL_DEL)
	d.release()
}

// release frees the slot, once.
func (d *Desc) release() {
	p := d.p
	p.mu.Lock()
	if p.descs[d.slot] == d {
		// Keep the entry's generation for the next tenant; drop the
		// registration so that it can be collected.
		p.descs[d.slot] = &Desc{gen: d.gen}
		p.free = append(p.free, d.slot)
	}
	p.mu.Unlock()
}

// ctl runs one epoll operation on the connection's descriptor, which
// Control keeps open meanwhile.
func (d *Desc) ctl(op int) error {
	var err error
	cerr := d.rc.Control(func(fd uintptr) {
		ev := unix.EpollEvent{Events: events, Fd: d.slot, Pad: d.gen}
		err = unix.EpollCtl(d.p.epfd, op, int(fd), &ev)
	})
	if cerr != nil {
		return ErrClosed
	}
	return err
}

// TryRead reads what the connection has ready into b, without waiting: 0
// and a nil error when nothing is ready, io.EOF once the peer has closed
// its side.
func (d *Desc) TryRead(b []byte) (int, error) {
	var n int
	var err error
	cerr := d.rc.Read(func(fd uintptr) bool {
		n, err = unix.Read(int(fd), b)
		return true // never wait for more
	})
	switch {
	case cerr != nil:
		return 0, cerr
	case errors.Is(err, unix.EAGAIN):
		return 0, nil
	case err != nil:
		return 0, err
	case n == 0 && len(b) > 0:
		return 0, io.EOF
	}
	return n, nil
}

func (p *Poller) wait() {
	defer close(p.done)
	evs := make([]unix.EpollEvent, 256)
	for {
		n, err := unix.EpollWait(p.epfd, evs, -1)
		if err != nil {
			if errors.Is(err, unix.EINTR) {
				continue
			}
			return
		}
		for i := range evs[:n] {
			ev := &evs[i]
			if ev.Fd < 0 {
				return // stopped
			}
			p.mu.Lock()
			var d *Desc
			if int(ev.Fd) < len(p.descs) {
				d = p.descs[ev.Fd]
			}
			p.mu.Unlock()
			if d == nil || d.gen != ev.Pad || d.fn == nil {
				continue // a closed connection's event
			}
			p.pool.run(d.run)
		}
	}
}

// run calls the handler.
func (d *Desc) run() { d.fn(d) }

// Workers returns the number of worker goroutines alive.
func (p *Poller) Workers() int { return p.pool.size() }

// Close stops the Poller. Registered connections are not closed; their
// handlers are no longer called.
func (p *Poller) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	var one [8]byte
	one[0] = 1
	unix.Write(p.stop, one[:])
	<-p.done
	unix.Close(p.stop)
	return unix.Close(p.epfd)
}
