package main

import (
	"testing"
	"time"
)

func TestBucketsCoverValuesWithinPrecision(t *testing.T) {
	t.Parallel()
	prev := -1
	for v := uint64(0); v < 1<<22; v += 1 + v/97 {
		i := bucketOf(v)
		if i < prev {
			t.Fatalf("bucket of %d is %d, below %d", v, i, prev)
		}
		prev = i
		hi := highest(i)
		if hi < v || float64(hi-v) > float64(v)/subBuckets {
			t.Fatalf("%d is in bucket %d up to %d", v, i, hi)
		}
	}
	if got := bucketOf(maxMicros); got != numBuckets-1 {
		t.Errorf("largest value in bucket %d of %d", got, numBuckets)
	}
}

func TestQuantiles(t *testing.T) {
	t.Parallel()
	var h, empty histogram
	if s := h.summary(); s != (latencyStats{}) {
		t.Errorf("empty summary %+v", s)
	}
	for ms := 1; ms <= 1000; ms++ {
		h.record(time.Duration(ms) * time.Millisecond)
	}
	h.record(-time.Second) // clock skew counts as 0
	var all histogram
	all.merge(&h)
	all.merge(&empty)
	s := all.summary()
	near(t, "p50", s.P50, 500)
	near(t, "p99", s.P99, 990)
	if s.Max != 1000 {
		t.Errorf("max %v, want 1000", s.Max)
	}
	h.record(1000 * time.Hour * 24)
	if got := h.summary().Max; got != float64(maxMicros)/1000 {
		t.Errorf("max %v, want the cap", got)
	}
}
