package main

import (
	"math"
	"math/bits"
	"time"
)

// The histogram keeps latencies in microseconds in fixed buckets, as HDR
// histograms do: values below 2*subBuckets exactly, larger ones in
// subBuckets buckets per power of two, within 1/subBuckets (about 3%).
const (
	subBits    = 5
	subBuckets = 1 << subBits
	maxMicros  = 1<<40 - 1 // about 12.7 days; longer latencies count as this
)

// numBuckets is the bucket count needed for values up to maxMicros.
var numBuckets = bucketOf(maxMicros) + 1

// histogram counts latencies. Its zero value is empty and ready to use.
type histogram struct {
	counts []uint64 // made on the first record
	n      uint64
	max    uint64
}

// bucketOf is the bucket index of v microseconds.
func bucketOf(v uint64) int {
	if v < 2*subBuckets {
		return int(v)
	}
	shift := bits.Len64(v) - subBits - 1
	return shift*subBuckets + int(v>>shift)
}

// highest is the largest value in bucket i.
func highest(i int) uint64 {
	if i < 2*subBuckets {
		return uint64(i)
	}
	shift := i/subBuckets - 1
	mantissa := uint64(i - shift*subBuckets)
	return (mantissa+1)<<shift - 1
}

func (h *histogram) record(d time.Duration) {
	v := min(uint64(max(d.Microseconds(), 0)), maxMicros)
	h.ensure()
	h.counts[bucketOf(v)]++
	h.n++
	h.max = max(h.max, v)
}

// ensure makes the buckets of a new histogram.
func (h *histogram) ensure() {
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
}

// merge adds the counts of o.
func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	h.ensure()
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
	h.max = max(h.max, o.max)
}

// quantile is the value in microseconds below which a fraction q of the
// values lie, as the highest value of its bucket (never above the maximum).
func (h *histogram) quantile(q float64) uint64 {
	if h.n == 0 {
		return 0
	}
	rank := max(uint64(math.Ceil(q*float64(h.n))), 1)
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			return min(highest(i), h.max)
		}
	}
	return h.max
}

// latencyStats is the latency summary of /stats, in milliseconds.
type latencyStats struct {
	P50 float64 `json:"p50"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func (h *histogram) summary() latencyStats {
	return latencyStats{
		P50: millis(h.quantile(0.50)),
		P99: millis(h.quantile(0.99)),
		Max: millis(h.max),
	}
}

func millis(micros uint64) float64 { return float64(micros) / 1000 }
