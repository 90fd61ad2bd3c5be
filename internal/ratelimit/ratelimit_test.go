package ratelimit

import (
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	var b Bucket
	for i := range 10 {
		if !b.Allow(10) {
			t.Fatalf("packet %d of a one-second burst of 10 refused", i)
		}
	}
	if b.Allow(10) {
		t.Fatal("11th packet within the burst allowed")
	}
	// Half a second later, half a second's worth is back.
	b.last = b.last.Add(-500 * time.Millisecond)
	for i := range 5 {
		if !b.Allow(10) {
			t.Fatalf("packet %d after half a second refused", i)
		}
	}
	if b.Allow(10) {
		t.Fatal("more than half a second's worth after half a second")
	}
	// A long pause refills one second's worth, no more.
	b.last = b.last.Add(-time.Hour)
	n := 0
	for b.Allow(10) {
		n++
	}
	if n != 10 {
		t.Errorf("%d packets after an hour, want the burst of 10", n)
	}
	var none Bucket
	for range 1000 {
		if !none.Allow(0) {
			t.Fatal("limit 0 refused a packet")
		}
	}
}
