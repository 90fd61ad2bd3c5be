package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"
)

// procSample is one reading of a process's resident memory and CPU time.
type procSample struct {
	RSSKB int64         // VmRSS from /proc/<pid>/status
	CPU   time.Duration // user + system time from /proc/<pid>/stat
}

// clockTick is USER_HZ, the unit of the times in /proc/<pid>/stat. It is 100
// on every Linux architecture Go supports.
const clockTick = 10 * time.Millisecond

// readProc samples process pid ("self" for the load generator itself).
func readProc(pid string) (procSample, error) {
	var s procSample
	status, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return s, err
	}
	if s.RSSKB, err = parseVmRSS(status); err != nil {
		return s, err
	}
	stat, err := os.ReadFile("/proc/" + pid + "/stat")
	if err != nil {
		return s, err
	}
	s.CPU, err = parseStatCPU(stat)
	return s, err
}

// readProcs samples several processes, such as a cluster's nodes, and adds
// up their memory and CPU time.
func readProcs(pids []string) (procSample, error) {
	var sum procSample
	for _, pid := range pids {
		s, err := readProc(pid)
		if err != nil {
			return sum, fmt.Errorf("process %s: %w", pid, err)
		}
		sum.RSSKB += s.RSSKB
		sum.CPU += s.CPU
	}
	return sum, nil
}

// countFDs returns how many files the processes pids hold open, added up:
// for a server, mostly its client connections.
func countFDs(pids []string) (int, error) {
	n := 0
	for _, pid := range pids {
		fds, err := os.ReadDir("/proc/" + pid + "/fd")
		if err != nil {
			return 0, fmt.Errorf("process %s: %w", pid, err)
		}
		n += len(fds)
	}
	return n, nil
}

// parseVmRSS finds "VmRSS:   1234 kB" in the contents of /proc/<pid>/status.
func parseVmRSS(status []byte) (int64, error) {
	key := []byte("VmRSS:")
	i := bytes.Index(status, key)
	if i < 0 {
		return 0, errors.New("VmRSS not found")
	}
	line := status[i+len(key):]
	if j := bytes.IndexByte(line, '\n'); j >= 0 {
		line = line[:j]
	}
	f := bytes.Fields(line)
	if len(f) != 2 || string(f[1]) != "kB" {
		return 0, fmt.Errorf("unexpected VmRSS line %q", line)
	}
	return strconv.ParseInt(string(f[0]), 10, 64)
}

// parseStatCPU returns utime+stime from the contents of /proc/<pid>/stat.
// The command name (field 2) may hold spaces and parentheses, so fields are
// counted from the last ')'.
func parseStatCPU(stat []byte) (time.Duration, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return 0, errors.New("malformed stat")
	}
	// After ")" come fields 3 (state) onwards; utime and stime are fields 14 and 15.
	f := bytes.Fields(stat[i+1:])
	if len(f) < 13 {
		return 0, errors.New("stat too short")
	}
	utime, err := strconv.ParseInt(string(f[11]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("utime: %w", err)
	}
	stime, err := strconv.ParseInt(string(f[12]), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("stime: %w", err)
	}
	return time.Duration(utime+stime) * clockTick, nil
}

// cpuTimes is one CPU's line of /proc/stat, in clock ticks.
type cpuTimes struct {
	busy, total int64
}

// readCPUStat returns the per-CPU times of /proc/stat, indexed by CPU number.
func readCPUStat() ([]cpuTimes, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUStat(b)
}

// parseCPUStat reads the "cpuN user nice system idle iowait irq softirq
// steal ..." lines. busy counts user, nice and system time only: time spent
// running tasks. Interrupt and softirq time is left out because most of it is
// the kernel moving the benchmark's own loopback packets, which is not
// charged to any process.
func parseCPUStat(stat []byte) ([]cpuTimes, error) {
	var cpus []cpuTimes
	for _, line := range bytes.Split(stat, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 5 || !bytes.HasPrefix(f[0], []byte("cpu")) || len(f[0]) == 3 {
			continue
		}
		n, err := strconv.Atoi(string(f[0][3:]))
		if err != nil || n < 0 || n > 4096 {
			return nil, fmt.Errorf("bad cpu line %q", line)
		}
		var t cpuTimes
		// Fields 9 and 10 (guest, guest_nice) are already part of user and nice.
		for i, v := range f[1:min(len(f), 9)] {
			x, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("bad cpu line %q", line)
			}
			t.total += x
			if i <= 2 { // user, nice, system
				t.busy += x
			}
		}
		for len(cpus) <= n {
			cpus = append(cpus, cpuTimes{})
		}
		cpus[n] = t
	}
	if len(cpus) == 0 {
		return nil, errors.New("no per-CPU lines in /proc/stat")
	}
	return cpus, nil
}

// busyFractions is the share of time each CPU ran tasks between two readings.
func busyFractions(a, b []cpuTimes) []float64 {
	if len(a) != len(b) {
		return nil
	}
	out := make([]float64, len(a))
	for i := range a {
		if dt := b[i].total - a[i].total; dt > 0 {
			out[i] = float64(b[i].busy-a[i].busy) / float64(dt)
		}
	}
	return out
}
