package main

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// line is the text of a chat line: "<sender> <seq> <sent, ns since start>".
func formatLine(sender int, seq int64, sent time.Duration) string {
	return strconv.Itoa(sender) + " " + strconv.FormatInt(seq, 10) + " " + strconv.FormatInt(int64(sent), 10)
}

func parseLine(s string) (sender int, seq int64, sent time.Duration, ok bool) {
	a, rest, ok1 := strings.Cut(s, " ")
	b, c, ok2 := strings.Cut(rest, " ")
	if !ok1 || !ok2 {
		return 0, 0, 0, false
	}
	n, err1 := strconv.Atoi(a)
	q, err2 := strconv.ParseInt(b, 10, 64)
	t, err3 := strconv.ParseInt(c, 10, 64)
	return n, q, time.Duration(t), err1 == nil && err2 == nil && err3 == nil
}

// tracker checks the lines one client receives: from each sender, sequence
// numbers must rise one by one. It notes each gap, to be judged at the end
// against what the server acknowledged: a line that was never acknowledged
// may be missing, since its sender's connection may have gone before the
// server took it.
type tracker struct {
	mu     sync.Mutex
	last   []int64 // by sender: last sequence number seen, 0 for none
	first  []int64 // by sender: first sequence number seen
	lines  int64
	twice  int64 // lines at or below the last one seen from their sender: repeated or out of order
	gaps   []gap
	sample string // the first repeated line, for the report
}

// gap is a run of lines a client did not receive: sender's from..to.
type gap struct {
	sender   int
	from, to int64
}

func newTracker(senders int) *tracker {
	return &tracker{last: make([]int64, senders), first: make([]int64, senders)}
}

func (tr *tracker) observe(sender int, seq int64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.lines++
	if sender < 0 || sender >= len(tr.last) {
		tr.repeat(fmt.Sprintf("line from unknown sender %d", sender))
		return
	}
	switch last := tr.last[sender]; {
	case last == 0:
		tr.first[sender] = seq
	case seq <= last:
		tr.repeat(fmt.Sprintf("sender %d: line %d after %d", sender, seq, last))
		return
	case seq > last+1:
		tr.gaps = append(tr.gaps, gap{sender: sender, from: last + 1, to: seq - 1})
	}
	tr.last[sender] = seq
}

func (tr *tracker) repeat(what string) {
	if tr.twice == 0 {
		tr.sample = what
	}
	tr.twice++
}

// caughtUp reports whether the client has seen every sender's last
// acknowledged line.
func (tr *tracker) caughtUp(acks []*ackLog) bool {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for s, a := range acks {
		if tr.last[s] < a.maxAcked() {
			return false
		}
	}
	return true
}

// missing counts the lines this client never received, by whether the
// server had acknowledged them. A long-lived client (whole: there for the
// whole run) must have every line from the first to the last; a
// short-lived one those between its first and its last from each sender.
// The first missing acknowledged line is described in first.
func (tr *tracker) missing(acks []*ackLog, whole bool) (acked, unacked int64, first string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	count := func(g gap) {
		a := acks[g.sender]
		for q := g.from; q <= min(g.to, a.maxAcked()); q++ {
			if a.isAcked(q) {
				if acked == 0 {
					first = fmt.Sprintf("sender %d's acknowledged line %d never arrived", g.sender, q)
				}
				acked++
			} else {
				unacked++
			}
		}
	}
	for _, g := range tr.gaps {
		count(g)
	}
	if !whole {
		return acked, unacked, first
	}
	for s, a := range acks {
		if tr.last[s] == 0 {
			count(gap{sender: s, from: 1, to: a.maxAcked()})
			continue
		}
		count(gap{sender: s, from: 1, to: tr.first[s] - 1})
		count(gap{sender: s, from: tr.last[s] + 1, to: a.maxAcked()})
	}
	return acked, unacked, first
}

// ackLog is what the server acknowledged of one sender's lines, and the
// clientID it acknowledged them with.
type ackLog struct {
	mu       sync.Mutex
	acked    []bool // by sequence number
	max      int64
	sent     int64 // the last sequence number handed to the connection
	clientID int64 // of the last ack, -1 before the first
	changes  int   // acks whose clientID differed from the one before
	change   string
}

func newAckLog() *ackLog { return &ackLog{clientID: -1} }

func (a *ackLog) ack(seq, clientID int64) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for int64(len(a.acked)) <= seq {
		a.acked = append(a.acked, false)
	}
	a.acked[seq] = true
	a.max = max(a.max, seq)
	if a.clientID >= 0 && clientID != a.clientID {
		if a.changes == 0 {
			a.change = fmt.Sprintf("clientID %d, then %d from line %d on", a.clientID, clientID, seq)
		}
		a.changes++
	}
	a.clientID = clientID
}

func (a *ackLog) isAcked(seq int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return seq < int64(len(a.acked)) && a.acked[seq]
}

func (a *ackLog) maxAcked() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.max
}

func (a *ackLog) setSent(seq int64) {
	a.mu.Lock()
	a.sent = seq
	a.mu.Unlock()
}

// counts returns how many lines were sent and acknowledged, and the
// clientID changes seen in the acks.
func (a *ackLog) counts() (sent, acked int64, changes int, change string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, ok := range a.acked {
		if ok {
			acked++
		}
	}
	return a.sent, acked, a.changes, a.change
}
