package main

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// The histogram is log-linear: values below 2^subBits nanoseconds get their
// own bucket, and every power of two above is split into 2^subBits buckets,
// so any recorded value is off by less than 1/128 (0.8%). Buckets are atomic
// counters, so every reader goroutine records into the same histogram without
// a lock and without a per-connection copy (which would cost tens of
// kilobytes per client at 10k clients).
const (
	subBits    = 7
	subBuckets = 1 << subBits
	maxBits    = 40 // values are capped at 2^40 ns, about 18 minutes
	numBuckets = (maxBits - subBits + 1) * subBuckets
)

type histogram struct {
	counts [numBuckets]atomic.Uint64
	total  atomic.Uint64
	max    atomic.Int64
}

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v >= 1<<maxBits {
		v = 1<<maxBits - 1
	}
	if v < subBuckets {
		return int(v)
	}
	shift := bits.Len64(uint64(v)) - subBits - 1
	return (shift+1)<<subBits + int(uint64(v)>>shift) - subBuckets
}

// bucketValue is the midpoint of bucket i, the value reported for it.
func bucketValue(i int) int64 {
	block := i >> subBits
	if block == 0 {
		return int64(i)
	}
	shift := block - 1
	low := int64(i&(subBuckets-1)+subBuckets) << shift
	return low + (int64(1)<<shift)/2
}

func (h *histogram) record(d time.Duration) {
	v := int64(d)
	h.counts[bucketOf(v)].Add(1)
	h.total.Add(1)
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// quantile returns the value at quantile q (0 < q <= 1), or 0 when empty.
func (h *histogram) quantile(q float64) time.Duration {
	total := h.total.Load()
	if total == 0 {
		return 0
	}
	rank := uint64(q*float64(total) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := bucketValue(i)
			if m := h.max.Load(); v > m {
				v = m
			}
			return time.Duration(v)
		}
	}
	return time.Duration(h.max.Load())
}
