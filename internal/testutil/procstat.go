package testutil

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// RaceEnabled reports whether the tests, and the binaries Binary builds for
// them, run under the race detector, whose shadow memory multiplies a
// process's resident memory (5 to 10 times by the Go documentation).
func RaceEnabled() bool { return raceEnabled }

// ProcRSS returns the resident memory of process pid in bytes, from the
// VmRSS line of /proc/<pid>/status.
func ProcRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if v, ok := bytes.CutPrefix(sc.Bytes(), []byte("VmRSS:")); ok {
			f := bytes.Fields(v)
			if len(f) != 2 || string(f[1]) != "kB" {
				break
			}
			kb, err := strconv.ParseInt(string(f[0]), 10, 64)
			if err != nil {
				break
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("testutil: no VmRSS in /proc/%d/status", pid)
}
