package main

import (
	"math"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	// Every value must land in a bucket whose reported value is within the
	// histogram's precision, and buckets must grow with the value.
	prev := -1
	for _, v := range []int64{0, 1, 127, 128, 129, 255, 256, 1000, 999_999, 1_000_000, 123_456_789, 1 << 39, 1<<40 - 1} {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d, below the previous bucket %d", v, b, prev)
		}
		prev = b
		got := bucketValue(b)
		if diff := math.Abs(float64(got - v)); diff > float64(v)/subBuckets+1 {
			t.Errorf("bucketValue(bucketOf(%d)) = %d, off by %.0f", v, got, diff)
		}
	}
	if b := bucketOf(1 << 50); b != numBuckets-1 {
		t.Errorf("huge value went to bucket %d, want the last (%d)", b, numBuckets-1)
	}
	if b := bucketOf(-5); b != 0 {
		t.Errorf("negative value went to bucket %d", b)
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram should report 0")
	}
	// 1..1000 ms, one sample each.
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0.5, 500 * time.Millisecond},
		{0.9, 900 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{1, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.quantile(tt.q)
		if rel := math.Abs(float64(got-tt.want)) / float64(tt.want); rel > 1.0/subBuckets {
			t.Errorf("quantile(%v) = %v, want %v within 0.8%%", tt.q, got, tt.want)
		}
	}
	if got := time.Duration(h.max.Load()); got != time.Second {
		t.Errorf("max = %v, want 1s", got)
	}
	if h.total.Load() != 1000 {
		t.Errorf("total = %d", h.total.Load())
	}
}
