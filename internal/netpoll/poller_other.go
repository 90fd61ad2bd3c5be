//go:build !linux

package netpoll

import "syscall"

// Poller runs a handler each time a registered connection is readable.
type Poller struct{}

// Desc is one connection's registration.
type Desc struct{}

// New returns ErrUnsupported: there is no poller on this system.
func New(Options) (*Poller, error) { return nil, ErrUnsupported }

// Add registers conn.
func (p *Poller) Add(conn syscall.Conn, fn func(*Desc)) (*Desc, error) { return nil, ErrUnsupported }

// Resume arms the registration again.
func (d *Desc) Resume() error { return ErrUnsupported }

// Remove ends the registration.
func (d *Desc) Remove() {}

// TryRead reads what the connection has ready, without waiting.
func (d *Desc) TryRead(b []byte) (int, error) { return 0, ErrUnsupported }

// Workers returns the number of worker goroutines alive.
func (p *Poller) Workers() int { return 0 }

// Close stops the Poller.
func (p *Poller) Close() error { return nil }
