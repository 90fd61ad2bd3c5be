package server

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
)

// fdListener keeps a node serving when it runs out of file descriptors.
// Go's HTTP server would retry a failing Accept at once and log each time;
// instead, when Accept fails for want of descriptors, fdListener frees a
// descriptor it keeps in reserve, accepts the waiting connection, answers
// it 503 and closes it, takes its reserve again, and logs once per interval.
type fdListener struct {
	net.Listener
	log     *slog.Logger
	refused func()

	mu      sync.Mutex
	spare   *os.File
	logged  time.Time
	skipped int
}

// fdLogInterval bounds how often running out of descriptors is logged.
const fdLogInterval = 10 * time.Second

func newFDListener(ln net.Listener, log *slog.Logger, refused func()) *fdListener {
	l := &fdListener{Listener: ln, log: log, refused: refused}
	l.spare, _ = os.Open(os.DevNull)
	return l
}

// outOfDescriptors reports whether err says the process, or the system,
// has no file descriptor left.
func outOfDescriptors(err error) bool {
	return errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE)
}

// refusal is the whole answer a connection gets when the node has no
// descriptor left for it.
const refusal = "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: 55\r\nConnection: close\r\n\r\n" +
	`{"code":3,"message":"server out of file descriptors"}` + "\r\n"

// Accept implements net.Listener.
func (l *fdListener) Accept() (net.Conn, error) {
	backoff := 5 * time.Millisecond
	for {
		c, err := l.Listener.Accept()
		if err == nil || !outOfDescriptors(err) {
			return c, err
		}
		l.refused()
		l.note(err)
		if !l.shed() {
			// No reserve to give up: wait for descriptors to come back
			// rather than spin.
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
		}
	}
}

// shed accepts one waiting connection with the reserve descriptor and
// refuses it, so that clients are told rather than left waiting.
func (l *fdListener) shed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.spare == nil {
		l.spare, _ = os.Open(os.DevNull)
		return false
	}
	l.spare.Close()
	l.spare = nil
	c, err := l.Listener.Accept()
	if err == nil {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		c.Write([]byte(refusal))
		c.Close()
	}
	l.spare, _ = os.Open(os.DevNull)
	return err == nil
}

// note logs running out of descriptors, at most once per interval.
func (l *fdListener) note(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if time.Since(l.logged) < fdLogInterval {
		l.skipped++
		return
	}
	l.log.Warn("out of file descriptors: refusing new connections", "err", err, "refused_since_last_report", l.skipped+1)
	l.logged = time.Now()
	l.skipped = 0
}

// Close implements net.Listener.
func (l *fdListener) Close() error {
	l.mu.Lock()
	if l.spare != nil {
		l.spare.Close()
		l.spare = nil
	}
	l.mu.Unlock()
	return l.Listener.Close()
}
