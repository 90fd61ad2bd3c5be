//go:build unix

package main

import "syscall"

// raiseFileLimit raises this process's soft open-file limit to the hard
// one, which the servers and load generators it starts inherit, and
// returns it.
func raiseFileLimit() (uint64, error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	// The Go runtime raised its own soft limit at start, but hands its
	// children the limit the process started with unless Setrlimit is
	// called, so it is called whatever the limits look like.
	l.Cur = l.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, err
	}
	return l.Cur, nil
}
