package main

import (
	"sync"
	"testing"
)

func TestProbeSetCountsItsLinesOnly(t *testing.T) {
	ps := newProbeSet(3, 2)
	ps.lines[0].want.Store(4)
	ps.lines[1].want.Store(4)
	for _, d := range []delivery{{sender: 4, seq: 0}, {sender: 3, seq: 2}, {sender: 3, seq: -1}} {
		if ps.receive(d, 10) {
			t.Errorf("%+v counted as a one-to-all line", d)
		}
	}
	// Four receivers take line 0 at once, from their own readers.
	var wg sync.WaitGroup
	for i, now := range []int64{50, 20, 90, 70} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if !ps.receive(delivery{sender: 3, seq: 0, sentNS: 5}, now) {
				t.Errorf("receipt %d not counted", i)
			}
		}()
	}
	wg.Wait()
	select {
	case <-ps.lines[0].done:
	default:
		t.Fatal("line 0 reached all four receivers but is not done")
	}
	if got := ps.lines[0].last.Load(); got != 90 {
		t.Errorf("last receipt at %d, want 90", got)
	}
	ps.receive(delivery{sender: 3, seq: 1}, 100)
	select {
	case <-ps.lines[1].done:
		t.Fatal("line 1 done after one receipt of four")
	default:
	}
	if got := ps.lines[1].got.Load(); got != 1 {
		t.Errorf("line 1 got %d receipts, want 1", got)
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0}, {[]float64{7}, 7}, {[]float64{9, 1, 5}, 5}, {[]float64{4, 1, 3, 2}, 2},
	} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestParseCheckpoints(t *testing.T) {
	cfg, err := parseFlags([]string{"-clients", "19000", "-checkpoints", "5000, 10000"})
	if err != nil || len(cfg.checkpoints) != 2 || cfg.checkpoints[0] != 5000 || cfg.checkpoints[1] != 10000 {
		t.Fatalf("checkpoints %v, %v", cfg.checkpoints, err)
	}
	for _, args := range [][]string{
		{"-clients", "100", "-checkpoints", "50,50"},
		{"-clients", "100", "-checkpoints", "60,50"},
		{"-clients", "100", "-checkpoints", "100"},
		{"-clients", "100", "-checkpoints", "0"},
		{"-clients", "100", "-checkpoints", "x"},
		{"-transport", "polling", "-deflate"},
		{"-one-to-all", "-1"},
		{"-idle-conns", "-1"},
	} {
		if _, err := parseFlags(args); err == nil {
			t.Errorf("%q: no error", args)
		}
	}
}
