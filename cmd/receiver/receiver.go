package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// maxBody is the largest webhook body read; larger ones are refused.
const maxBody = 64 << 20

// receiver is the webhook endpoint and its counts.
type receiver struct {
	keys   [][]byte // HMAC keys; none means signatures are not checked
	status int
	delay  time.Duration
	now    func() time.Time

	mu    sync.Mutex
	paths map[string]*pathCounts
}

func newReceiver(keys [][]byte, status int, delay time.Duration) *receiver {
	return &receiver{keys: keys, status: status, delay: delay, now: time.Now,
		paths: map[string]*pathCounts{}}
}

// routes is the receiver's handler: its own three paths, and every other
// path a webhook endpoint.
func (rc *receiver) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/stats", only(http.MethodGet, rc.serveStats))
	mux.HandleFunc("/ids", only(http.MethodGet, rc.serveIDs))
	mux.HandleFunc("/reset", only(http.MethodPost, rc.serveReset))
	mux.HandleFunc("/", only(http.MethodPost, rc.serveWebhook))
	return mux
}

// only answers 405 to requests of any method but method.
func only(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.Method != method {
			w.Header().Set("Allow", method)
			http.Error(w, r.URL.Path+" takes "+method, http.StatusMethodNotAllowed)
			return
		}
		h(w, r)
	}
}

// serveWebhook counts one delivery and answers it with the --status, after
// the --delay.
func (rc *receiver) serveWebhook(w http.ResponseWriter, r *http.Request) {
	received := rc.now()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
	if err != nil {
		http.Error(w, "read body: "+err.Error(), bodyErrorStatus(err))
		return
	}
	if !rc.record(r.URL.Path, r.Header, body, received) {
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	if !wait(r.Context(), rc.delay) {
		panic(http.ErrAbortHandler) // the client left or the receiver stops
	}
	w.WriteHeader(rc.status)
}

func bodyErrorStatus(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// wait waits for d, or less if ctx ends first; it reports whether d passed.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// record counts a delivery to path; it reports whether its signature held.
func (rc *receiver) record(path string, h http.Header, body []byte, at time.Time) bool {
	good := len(rc.keys) == 0 || verified(rc.keys, h, body)
	latency, hasLatency := eventLatency(body, at)
	rc.mu.Lock()
	defer rc.mu.Unlock()
	pc := rc.path(path)
	pc.requests++
	if !good {
		pc.badSignatures++
		return false
	}
	if pc.firstSight(deliveryID(h)) && hasLatency {
		pc.latency.record(latency)
	}
	return true
}

// deliveryID is the id a delivery carries: webhook-id (Standard Webhooks)
// or X-Webhook-ID (the kmsg scheme).
func deliveryID(h http.Header) string {
	if id := h.Get(headerID); id != "" {
		return id
	}
	return h.Get("X-Webhook-ID")
}

// path is the counts of path, made if new. rc.mu must be held.
func (rc *receiver) path(path string) *pathCounts {
	pc := rc.paths[path]
	if pc == nil {
		pc = &pathCounts{ids: map[string]struct{}{}}
		rc.paths[path] = pc
	}
	return pc
}

// eventLatency is the time from the event's "timestamp" field, RFC 3339 or
// epoch milliseconds, to at.
func eventLatency(body []byte, at time.Time) (time.Duration, bool) {
	var ev struct {
		Timestamp json.RawMessage `json:"timestamp"`
	}
	if json.Unmarshal(body, &ev) != nil {
		return 0, false
	}
	t, ok := parseTime(ev.Timestamp)
	return at.Sub(t), ok
}

// parseTime parses a JSON RFC 3339 string or integer of epoch milliseconds.
func parseTime(raw json.RawMessage) (time.Time, bool) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		t, err := time.Parse(time.RFC3339Nano, s)
		return t, err == nil
	}
	ms, err := strconv.ParseInt(string(raw), 10, 64)
	return time.UnixMilli(ms), err == nil
}

func (rc *receiver) serveStats(w http.ResponseWriter, _ *http.Request) {
	rc.mu.Lock()
	doc := rc.stats()
	rc.mu.Unlock()
	writeJSON(w, doc)
}

func (rc *receiver) serveIDs(w http.ResponseWriter, r *http.Request) {
	path := r.URL.Query().Get("path")
	if path == "" {
		http.Error(w, "give the path of an endpoint: /ids?path=/a", http.StatusBadRequest)
		return
	}
	writeJSON(w, rc.idsOf(path))
}

func (rc *receiver) idsOf(path string) []string {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return rc.paths[path].sortedIDs()
}

func (rc *receiver) serveReset(w http.ResponseWriter, _ *http.Request) {
	rc.mu.Lock()
	rc.paths = map[string]*pathCounts{}
	rc.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
