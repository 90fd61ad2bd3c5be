package main

import (
	"strings"
	"testing"
	"time"
)

func acked(senders int, seqs map[int][]int64) []*ackLog {
	acks := make([]*ackLog, senders)
	for s := range acks {
		acks[s] = newAckLog()
		for _, q := range seqs[s] {
			acks[s].ack(q, 7)
		}
	}
	return acks
}

// TestMissingCountsOnlyAcknowledgedLines: a gap over lines the server never
// acknowledged is no loss; one over an acknowledged line is, and so are
// acknowledged lines before a long-lived client's first and after its last.
func TestMissingCountsOnlyAcknowledgedLines(t *testing.T) {
	acks := acked(2, map[int][]int64{0: {1, 2, 4, 5, 6}, 1: {1, 2, 3}})
	tr := newTracker(2)
	for _, q := range []int64{1, 2, 5} { // 3 was never acknowledged, 4 was
		tr.observe(0, q)
	}
	tr.observe(1, 2)
	tr.observe(1, 3)
	lost, unacked, first := tr.missing(acks, true)
	// Sender 0: 4 (in the gap) and 6 (after the last); sender 1: 1 (before the first).
	if lost != 3 || unacked != 1 {
		t.Errorf("lost %d, unacknowledged %d; want 3 and 1", lost, unacked)
	}
	if !strings.Contains(first, "sender 0's acknowledged line 4") {
		t.Errorf("first = %q", first)
	}
	// A short-lived client answers only for the lines between its first
	// and its last.
	if lost, unacked, _ := tr.missing(acks, false); lost != 1 || unacked != 1 {
		t.Errorf("short-lived: lost %d, unacknowledged %d; want 1 and 1", lost, unacked)
	}
	if tr.caughtUp(acks) {
		t.Error("caught up without sender 0's line 6")
	}
	tr.observe(0, 6)
	if !tr.caughtUp(acks) {
		t.Error("not caught up")
	}
}

func TestTrackerCountsRepeats(t *testing.T) {
	tr := newTracker(1)
	for _, q := range []int64{1, 2, 2, 1, 3} {
		tr.observe(0, q)
	}
	tr.observe(5, 1)
	if tr.twice != 3 || len(tr.gaps) != 0 || !strings.Contains(tr.sample, "line 2 after 2") {
		t.Errorf("twice %d, gaps %v, sample %q", tr.twice, tr.gaps, tr.sample)
	}
}

func TestAckLogNotesClientIDChanges(t *testing.T) {
	a := newAckLog()
	a.ack(1, 4)
	a.ack(3, 4)
	a.setSent(4)
	a.ack(4, 9)
	sent, n, changes, change := a.counts()
	if sent != 4 || n != 3 || changes != 1 || change != "clientID 4, then 9 from line 4 on" {
		t.Errorf("counts %d %d %d %q", sent, n, changes, change)
	}
	if a.isAcked(2) || !a.isAcked(3) || a.maxAcked() != 4 {
		t.Error("acked lines wrong")
	}
}

// TestSendersCoverKindsAndNodes: the senders are distinct long-lived
// clients and cover every kind on every node.
func TestSendersCoverKindsAndNodes(t *testing.T) {
	for _, tc := range []struct{ senders, clients, nodes int }{{40, 2000, 3}, {40, 300, 3}, {40, 2000, 1}, {12, 48, 3}} {
		seen := map[int]bool{}
		cover := map[[2]int]int{}
		for s := range tc.senders {
			k := senderMember(s, tc.senders, tc.clients, tc.nodes)
			if seen[k] {
				t.Errorf("%+v: client %d is two senders", tc, k)
			}
			seen[k] = true
			cover[[2]int{k % len(kinds), homeNode(k, tc.nodes)}]++
		}
		if len(cover) != len(kinds)*tc.nodes {
			t.Errorf("%+v: senders cover %d kind and node pairs, want %d", tc, len(cover), len(kinds)*tc.nodes)
		}
	}
}

func TestParseFlagsWindows(t *testing.T) {
	cfg, err := parseFlags([]string{"-chatserver", "x", "-nodes", "3", "-duration", "10m"})
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.restarts() || cfg.restartAt != 5*time.Minute || cfg.window != time.Minute {
		t.Errorf("restart %v at %v, window %v", cfg.restarts(), cfg.restartAt, cfg.window)
	}
	cfg, err = parseFlags([]string{"-chatserver", "x", "-nodes", "3", "-duration", "2m"})
	if err != nil || cfg.window != 15*time.Second {
		t.Errorf("2m run: window %v, %v", cfg.window, err)
	}
	if cfg, err := parseFlags([]string{"-duration", "2m"}); err != nil || cfg.restarts() || cfg.window != 30*time.Second {
		t.Errorf("one server: %+v, %v", cfg, err)
	}
	for _, args := range [][]string{
		{"-nodes", "3"}, // no -chatserver
		{"-chatserver", "x", "-nodes", "3", "-restart-node", "4"},
		{"-chatserver", "x", "-nodes", "3", "-restart-at", "10m"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}

// TestJudgePhases: with a restart, each node's memory is compared before
// the restart and after it, not across it.
func TestJudgePhases(t *testing.T) {
	cfg, err := parseFlags([]string{"-chatserver", "x", "-nodes", "2", "-duration", "8m", "-sample", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	s := &summary{LinesAcked: 1, Reconnect: reconnects{ByRestart: 5},
		Restart: &restartReport{Node: "node1", SIGTERMAt: 4 * time.Minute, ExitedAt: 4*time.Minute + time.Second, ReadyAt: 4*time.Minute + 2*time.Second}}
	for at := 10 * time.Second; at <= 8*time.Minute; at += 10 * time.Second {
		rss := 100.0
		if at > 4*time.Minute {
			rss = 130 // node2 took node1's clients
		}
		s.Samples = append(s.Samples, sample{Node: "node1", At: at, RSS: 100, Goroutines: 50},
			sample{Node: "node2", At: at, RSS: rss, Goroutines: 50})
	}
	s.judge(cfg, 8*time.Minute, 2)
	if !s.Pass || len(s.Flatness) != 8 {
		t.Fatalf("pass %v, %d checks, failures %v", s.Pass, len(s.Flatness), s.Failures)
	}
	// A leak after the restart fails.
	for i := range s.Samples {
		if s.Samples[i].Node == "node2" && s.Samples[i].At > 7*time.Minute {
			s.Samples[i].RSS = 150
		}
	}
	s.Failures, s.Flatness = nil, nil
	s.judge(cfg, 8*time.Minute, 2)
	if s.Pass || len(s.Failures) != 1 || !strings.Contains(s.Failures[0], "node2 RSS after the restart not flat") {
		t.Fatalf("pass %v, failures %v", s.Pass, s.Failures)
	}
}

// TestJudgeSingleNode: goroutines that come and go with the traffic pass
// as long as their floor holds, a raised floor fails; memory is compared
// from two minutes in, once the server holds what it keeps for clients that
// left.
func TestJudgeSingleNode(t *testing.T) {
	cfg, err := parseFlags([]string{"-chatserver", "x", "-duration", "10m", "-sample", "10s"})
	if err != nil {
		t.Fatal(err)
	}
	judge := func(leak float64) *summary {
		s := &summary{LinesAcked: 1}
		for at := 10 * time.Second; at <= 10*time.Minute; at += 10 * time.Second {
			rss := 100.0
			if at < 2*time.Minute {
				rss = 80 // filling up
			}
			g := 1000.0
			if at%(30*time.Second) != 0 {
				// Most readings catch a burst, larger later: their median
				// grows by a third, their floor holds.
				g = 1500 + float64(at/time.Minute)*100
			}
			if at >= 9*time.Minute {
				g += leak
			}
			s.Samples = append(s.Samples, sample{At: at, RSS: rss, Goroutines: g})
		}
		s.judge(cfg, 10*time.Minute, 1)
		return s
	}
	if s := judge(0); !s.Pass || len(s.Flatness) != 2 {
		t.Fatalf("bursts: pass %v, %d checks, failures %v", s.Pass, len(s.Flatness), s.Failures)
	}
	if s := judge(100); s.Pass || len(s.Failures) != 1 || !strings.Contains(s.Failures[0], "goroutines not flat: floor 1100") {
		t.Fatalf("a raised floor: pass %v, failures %v", s.Pass, s.Failures)
	}
}
