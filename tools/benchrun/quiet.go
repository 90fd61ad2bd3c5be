package main

import (
	"bytes"
	"os"
	"strconv"
	"time"
)

// quietBelow is the share of a benchmark CPU other programs may use for it
// to count as quiet before a run starts.
const quietBelow = 0.10

// quietWaiter holds runs back while other programs are busy on the
// benchmark's CPUs, within a per-run and a total allowance, so that a
// burst of other work on a shared machine hits fewer runs. Both servers
// get the same treatment.
type quietWaiter struct {
	cpus   []int
	perRun time.Duration
	left   time.Duration // total allowance still available
}

// wait returns once the CPUs were quiet for half a second, or the allowance
// is spent; it reports how long it waited and the last busy share seen.
func (q *quietWaiter) wait() (time.Duration, float64) {
	start := time.Now()
	limit := min(q.perRun, q.left)
	busy := 0.0
	for {
		a, errA := readCPUTimes()
		time.Sleep(500 * time.Millisecond)
		b, errB := readCPUTimes()
		if errA != nil || errB != nil {
			break
		}
		busy = 0
		for _, c := range q.cpus {
			busy = max(busy, busyShare(a, b, c))
		}
		if busy < quietBelow || time.Since(start) >= limit {
			break
		}
	}
	waited := time.Since(start)
	q.left = max(0, q.left-waited)
	return waited, busy
}

// cpuTime is one CPU's task time (user, nice, system) and total time from
// /proc/stat, in clock ticks.
type cpuTime struct{ task, total int64 }

func readCPUTimes() (map[int]cpuTime, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	return parseCPUTimes(b), nil
}

func parseCPUTimes(stat []byte) map[int]cpuTime {
	out := map[int]cpuTime{}
	for _, line := range bytes.Split(stat, []byte("\n")) {
		f := bytes.Fields(line)
		if len(f) < 5 || len(f[0]) <= 3 || !bytes.HasPrefix(f[0], []byte("cpu")) {
			continue
		}
		n, err := strconv.Atoi(string(f[0][3:]))
		if err != nil {
			continue
		}
		var t cpuTime
		for i, v := range f[1:min(len(f), 9)] {
			x, err := strconv.ParseInt(string(v), 10, 64)
			if err != nil {
				break
			}
			t.total += x
			if i <= 2 {
				t.task += x
			}
		}
		out[n] = t
	}
	return out
}

// busyShare is the share of time CPU c ran tasks between readings a and b.
func busyShare(a, b map[int]cpuTime, c int) float64 {
	x, okA := a[c]
	y, okB := b[c]
	if !okA || !okB || y.total <= x.total {
		return 0
	}
	return float64(y.task-x.task) / float64(y.total-x.total)
}
