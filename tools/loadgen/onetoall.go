package main

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"time"
)

// probeSet is the one-to-all lines of a run: lines one client sends, one at
// a time, each to every client. They are the sender's first messages, so
// its sequence numbers tell them from any other traffic.
type probeSet struct {
	sender int
	lines  []probeLine // by sequence number
}

// probeLine counts the receipts of one line.
type probeLine struct {
	want atomic.Int64 // receipts expected: the clients connected when it was sent
	got  atomic.Int64
	last atomic.Int64 // when the latest receipt came, in run time
	done chan struct{}
}

func newProbeSet(sender, lines int) *probeSet {
	ps := &probeSet{sender: sender, lines: make([]probeLine, lines)}
	for i := range ps.lines {
		ps.lines[i].done = make(chan struct{})
	}
	return ps
}

// receive counts d, received at now, when it is one of the set's lines,
// and reports whether it was.
func (ps *probeSet) receive(d delivery, now int64) bool {
	if d.sender != ps.sender || d.seq < 0 || d.seq >= len(ps.lines) {
		return false
	}
	l := &ps.lines[d.seq]
	for {
		m := l.last.Load()
		if now <= m || l.last.CompareAndSwap(m, now) {
			break
		}
	}
	if l.got.Add(1) == l.want.Load() {
		close(l.done)
	}
	return true
}

// oneToAll is what the one-to-all lines measured.
type oneToAll struct {
	Lines     int   `json:"lines"`
	Receivers int64 `json:"receivers"` // clients connected when the first line was sent
	Received  int64 `json:"received"`
	Missing   int64 `json:"missing"`
	// LastMs is, for each line, the time from its emit to its receipt at
	// the last client.
	LastMs       []float64 `json:"last_ms"`
	LastMedianMs float64   `json:"last_median_ms"`
	// The emit to receipt latency over every receipt of every line.
	P50Ms float64 `json:"p50_ms"`
	P99Ms float64 `json:"p99_ms"`
	MaxMs float64 `json:"max_ms"`
}

// oneToAllStall is how long a line may go without a new receipt before
// the clients still waiting for it count as missing it.
const oneToAllStall = 2 * time.Second

// sendOneToAll sends r.cfg.oneToAll lines from the first connected client
// to all of them, one at a time: each once the previous one has reached
// every client (or no receipt came for oneToAllStall, or -drain passed).
func sendOneToAll(ctx context.Context, r *run, clients []*client, connected int) *oneToAll {
	out := &oneToAll{}
	i := slices.IndexFunc(clients, func(c *client) bool { return c.cc != nil })
	if i < 0 {
		return out
	}
	sender := clients[i]
	if sender.seq != 0 {
		r.fail(fmt.Errorf("one-to-all: client %d has sent before", sender.id))
		return out
	}
	ps := newProbeSet(sender.id, r.cfg.oneToAll)
	r.probes.Store(ps)
	for seq := range ps.lines {
		if ctx.Err() != nil {
			break
		}
		l := &ps.lines[seq]
		want := int64(connected) - r.disconnect.Load()
		l.want.Store(want)
		if seq == 0 {
			out.Receivers = want
		}
		sent := r.now()
		sender.scratch = appendEmit(sender.scratch[:0], sender.id, sender.seq, sent, r.cfg.size)
		sender.seq++
		if err := sender.cc.SendPacket(sender.scratch); err != nil {
			r.fail(fmt.Errorf("one-to-all: client %d emit: %w", sender.id, err))
			break
		}
		waitLine(ctx, l, r.cfg.drain)
		got := min(l.got.Load(), want)
		out.Lines++
		out.Received += got
		out.Missing += want - got
		if got > 0 {
			out.LastMs = append(out.LastMs, ms(time.Duration(l.last.Load()-sent)))
		}
	}
	out.LastMedianMs = median(out.LastMs)
	out.P50Ms = ms(r.probeHist.quantile(0.50))
	out.P99Ms = ms(r.probeHist.quantile(0.99))
	out.MaxMs = ms(time.Duration(r.probeHist.max.Load()))
	return out
}

// waitLine returns once every receipt l expects came, no receipt came for
// oneToAllStall, limit passed or ctx ended.
func waitLine(ctx context.Context, l *probeLine, limit time.Duration) {
	deadline := time.NewTimer(limit)
	defer deadline.Stop()
	tick := time.NewTicker(oneToAllStall / 4)
	defer tick.Stop()
	last, since := l.got.Load(), time.Now()
	for {
		select {
		case <-l.done:
			return
		case <-ctx.Done():
			return
		case <-deadline.C:
			return
		case <-tick.C:
			if n := l.got.Load(); n != last {
				last, since = n, time.Now()
			} else if time.Since(since) >= oneToAllStall {
				return
			}
		}
	}
}

// median is the middle value of xs (the lower one of an even count), 0 for
// none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[(len(s)-1)/2]
}
