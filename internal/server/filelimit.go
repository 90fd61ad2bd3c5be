package server

import (
	"fmt"
	"syscall"
)

// FileLimit is the process's limit on open files (RLIMIT_NOFILE).
type FileLimit struct {
	Soft, Hard uint64
}

// RaiseFileLimit raises the soft limit on open files to the hard limit, the
// most the process may hold, and returns the limit as it then stands.
func RaiseFileLimit() (FileLimit, error) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return FileLimit{}, fmt.Errorf("open-file limit: %w", err)
	}
	if r.Cur < r.Max {
		r.Cur = r.Max
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
			return FileLimit{}, fmt.Errorf("raising the open-file limit to %d: %w", r.Max, err)
		}
	}
	return FileLimit{Soft: r.Cur, Hard: r.Max}, nil
}

// MaxConnections is how many sessions a node can hold within the limit: one
// descriptor each, less a reserve for everything else the node has open
// (Redis, connections to other nodes, the listener, its own files): a tenth
// of the limit, a thousand at most.
func (l FileLimit) MaxConnections() int {
	reserve := min(l.Soft/10, 1000)
	return int(l.Soft - reserve)
}
