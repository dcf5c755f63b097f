package main

import (
	"maps"
	"slices"
)

// pathCounts are the counts of one endpoint path.
type pathCounts struct {
	requests      int64
	duplicates    int64
	badSignatures int64
	ids           map[string]struct{}
	latency       histogram // of first deliveries only
}

// firstSight notes a delivery of id and reports whether it is the first of
// that id on this path. A delivery without an id is always a first.
func (pc *pathCounts) firstSight(id string) bool {
	if id == "" {
		return true
	}
	if _, seen := pc.ids[id]; seen {
		pc.duplicates++
		return false
	}
	pc.ids[id] = struct{}{}
	return true
}

// sortedIDs are the unique ids seen, sorted; never nil, so JSON shows [].
func (pc *pathCounts) sortedIDs() []string {
	if pc == nil || len(pc.ids) == 0 {
		return []string{}
	}
	return slices.Sorted(maps.Keys(pc.ids))
}

// pathStats are the counts of a path, or of all, as /stats shows them.
type pathStats struct {
	Requests      int64        `json:"requests"`
	Unique        int64        `json:"unique"`
	Duplicates    int64        `json:"duplicates"`
	BadSignatures int64        `json:"bad_signatures"`
	Latency       latencyStats `json:"latency_ms"`
}

// statsDoc is the body of GET /stats.
type statsDoc struct {
	Paths map[string]pathStats `json:"paths"`
	Total pathStats            `json:"total"`
}

// stats makes the /stats document. rc.mu must be held.
func (rc *receiver) stats() statsDoc {
	doc := statsDoc{Paths: make(map[string]pathStats, len(rc.paths))}
	var all histogram
	for path, pc := range rc.paths {
		ps := pc.stats()
		doc.Paths[path] = ps
		doc.Total.add(ps)
		all.merge(&pc.latency)
	}
	doc.Total.Latency = all.summary()
	return doc
}

func (pc *pathCounts) stats() pathStats {
	return pathStats{
		Requests:      pc.requests,
		Unique:        int64(len(pc.ids)),
		Duplicates:    pc.duplicates,
		BadSignatures: pc.badSignatures,
		Latency:       pc.latency.summary(),
	}
}

// add adds the counts of o; latency is not added.
func (ps *pathStats) add(o pathStats) {
	ps.Requests += o.Requests
	ps.Unique += o.Unique
	ps.Duplicates += o.Duplicates
	ps.BadSignatures += o.BadSignatures
}
