package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

var (
	secretA = "whsec_" + base64.StdEncoding.EncodeToString([]byte("secret-a-0123456789abcdef"))
	secretB = "whsec_" + base64.StdEncoding.EncodeToString([]byte("secret-b-0123456789abcdef"))
	epoch   = time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
)

// keysOf decodes whsec_ secrets.
func keysOf(t *testing.T, secrets ...string) [][]byte {
	t.Helper()
	list := secretList{raw: secrets}
	if err := list.decode(); err != nil {
		t.Fatal(err)
	}
	return list.keys
}

// signedHeaders are the headers of a delivery signed with secret by the
// Standard Webhooks reference library.
func signedHeaders(t *testing.T, secret, id, body string) http.Header {
	t.Helper()
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	sig, err := wh.Sign(id, epoch, []byte(body))
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{}
	h.Set(headerID, id)
	h.Set(headerTimestamp, strconv.FormatInt(epoch.Unix(), 10))
	h.Set(headerSignature, sig)
	return h
}

func post(rc *receiver, path string, h http.Header, body string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	w := httptest.NewRecorder()
	rc.routes().ServeHTTP(w, req)
	return w
}

func get(rc *receiver, target string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	rc.routes().ServeHTTP(w, httptest.NewRequest(http.MethodGet, target, nil))
	return w
}

func statsOf(t *testing.T, rc *receiver) statsDoc {
	t.Helper()
	var doc statsDoc
	if err := json.Unmarshal(get(rc, "/stats").Body.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	return doc
}

func idHeader(id string) http.Header {
	h := http.Header{}
	h.Set(headerID, id)
	return h
}

func TestVerified(t *testing.T) {
	t.Parallel()
	body := `{"id":"evt_1","type":"message.sent"}`
	good := signedHeaders(t, secretA, "evt_1", body)
	withOthers := good.Clone()
	withOthers.Set(headerSignature, "v1a,xyz v1,bm90IGl0 "+good.Get(headerSignature))
	noID := good.Clone()
	noID.Del(headerID)
	cases := []struct {
		name   string
		keys   [][]byte
		header http.Header
		body   string
		want   bool
	}{
		{"good", keysOf(t, secretA), good, body, true},
		{"other secret", keysOf(t, secretB), good, body, false},
		{"either of two secrets", keysOf(t, secretB, secretA), good, body, true},
		{"one of several signatures", keysOf(t, secretA), withOthers, body, true},
		{"changed body", keysOf(t, secretA), good, body + " ", false},
		{"no id", keysOf(t, secretA), noID, body, false},
		{"no signature", keysOf(t, secretA), idHeader("evt_1"), body, false},
	}
	for _, c := range cases {
		if got := verified(c.keys, c.header, []byte(c.body)); got != c.want {
			t.Errorf("%s: verified %v, want %v", c.name, got, c.want)
		}
	}
}

func TestBadSignatureIsRefusedAndCounted(t *testing.T) {
	t.Parallel()
	rc := newReceiver(keysOf(t, secretA, secretB), http.StatusOK, 0)
	body := `{"id":"evt_1"}`
	if w := post(rc, "/a", signedHeaders(t, secretB, "evt_1", body), body); w.Code != 200 {
		t.Errorf("good signature answered %d", w.Code)
	}
	bad := signedHeaders(t, "whsec_"+base64.StdEncoding.EncodeToString([]byte("x")), "evt_2", body)
	if w := post(rc, "/a", bad, body); w.Code != http.StatusUnauthorized {
		t.Errorf("bad signature answered %d", w.Code)
	}
	got := statsOf(t, rc).Paths["/a"]
	want := pathStats{Requests: 2, Unique: 1, BadSignatures: 1}
	if got.Requests != want.Requests || got.Unique != want.Unique ||
		got.BadSignatures != want.BadSignatures || got.Duplicates != 0 {
		t.Errorf("stats %+v, want %+v", got, want)
	}
}

func TestDuplicatesAreCountedPerPath(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusOK, 0)
	for _, d := range []struct{ path, id string }{
		{"/a", "e1"}, {"/a", "e2"}, {"/a", "e1"}, {"/a", "e1"}, {"/b", "e1"},
	} {
		if w := post(rc, d.path, idHeader(d.id), "{}"); w.Code != http.StatusOK {
			t.Fatalf("%s %s: %d", d.path, d.id, w.Code)
		}
	}
	doc := statsOf(t, rc)
	check := func(name string, got pathStats, requests, unique, dups int64) {
		t.Helper()
		if got.Requests != requests || got.Unique != unique || got.Duplicates != dups {
			t.Errorf("%s: %+v, want requests %d unique %d duplicates %d",
				name, got, requests, unique, dups)
		}
	}
	check("/a", doc.Paths["/a"], 4, 2, 2)
	check("/b", doc.Paths["/b"], 1, 1, 0)
	check("total", doc.Total, 5, 3, 2)
}

// kmsg deliveries carry their id in X-Webhook-ID.
func TestKMsgDeliveriesAreCountedByTheirID(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusOK, 0)
	for _, id := range []string{"e1", "e2", "e1"} {
		h := http.Header{}
		h.Set("X-Webhook-ID", id)
		if w := post(rc, "/k", h, "{}"); w.Code != http.StatusOK {
			t.Fatalf("%s: %d", id, w.Code)
		}
	}
	got := statsOf(t, rc).Paths["/k"]
	if got.Requests != 3 || got.Unique != 2 || got.Duplicates != 1 {
		t.Errorf("stats %+v, want requests 3 unique 2 duplicates 1", got)
	}
}

func TestStatsJSONShape(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusOK, 0)
	post(rc, "/a", idHeader("e1"), "{}")
	w := get(rc, "/stats")
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("content type %q", ct)
	}
	var doc map[string]map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &doc); err != nil {
		t.Fatalf("%v: %s", err, w.Body)
	}
	counts := []string{"bad_signatures", "duplicates", "latency_ms", "requests", "unique"}
	wantKeys(t, "top", doc, "paths", "total")
	wantKeys(t, "paths", doc["paths"], "/a")
	wantKeys(t, "/a", doc["paths"]["/a"].(map[string]any), counts...)
	wantKeys(t, "total", doc["total"], counts...)
	wantKeys(t, "latency_ms", doc["total"]["latency_ms"].(map[string]any), "max", "p50", "p99")
}

func wantKeys[V any](t *testing.T, name string, m map[string]V, keys ...string) {
	t.Helper()
	if got := slices.Sorted(maps.Keys(m)); !reflect.DeepEqual(got, keys) {
		t.Errorf("%s has keys %v, want %v", name, got, keys)
	}
}

func TestLatencyIsMeasuredFromTheEventTimestamp(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusOK, 0)
	now := epoch.Add(time.Hour)
	rc.now = func() time.Time { return now }
	for i := 1; i <= 100; i++ {
		ts := now.Add(-time.Duration(i) * time.Millisecond)
		body := `{"timestamp":"` + ts.Format(time.RFC3339Nano) + `"}`
		if i%2 == 0 {
			body = `{"timestamp":` + strconv.FormatInt(ts.UnixMilli(), 10) + `}`
		}
		post(rc, "/a", idHeader("e"+strconv.Itoa(i)), body)
	}
	post(rc, "/a", idHeader("e1"), `{"timestamp":1}`) // a duplicate: not measured
	post(rc, "/a", idHeader("e0"), `{"timestamp":"soon"}`)
	lat := statsOf(t, rc).Paths["/a"].Latency
	near(t, "p50", lat.P50, 50)
	near(t, "p99", lat.P99, 99)
	near(t, "max", lat.Max, 100)
}

// near fails unless got is within the histogram's precision of want.
func near(t *testing.T, name string, got, want float64) {
	t.Helper()
	if math.Abs(got-want) > want/subBuckets+0.001 {
		t.Errorf("%s = %v, want about %v", name, got, want)
	}
}

func TestIDsAreSorted(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusOK, 0)
	for _, id := range []string{"evt_c", "evt_a", "evt_b", "evt_a"} {
		post(rc, "/a", idHeader(id), "{}")
	}
	post(rc, "/b", idHeader("evt_z"), "{}")
	cases := map[string]string{
		"/ids?path=/a":       `["evt_a","evt_b","evt_c"]`,
		"/ids?path=%2Fb":     `["evt_z"]`,
		"/ids?path=/nowhere": `[]`,
	}
	for target, want := range cases {
		w := get(rc, target)
		var got, wantIDs []string
		_ = json.Unmarshal([]byte(want), &wantIDs)
		err := json.Unmarshal(w.Body.Bytes(), &got)
		if err != nil || !reflect.DeepEqual(got, wantIDs) {
			t.Errorf("%s: %s (%v), want %s", target, w.Body, err, want)
		}
	}
	if w := get(rc, "/ids"); w.Code != http.StatusBadRequest {
		t.Errorf("/ids without a path answered %d", w.Code)
	}
	if _, ok := statsOf(t, rc).Paths["/nowhere"]; ok {
		t.Error("/ids made a path appear in /stats")
	}
}

func TestResetAndOwnPathsAreNotCounted(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusOK, 0)
	post(rc, "/a", idHeader("e1"), "{}")
	for _, w := range []*httptest.ResponseRecorder{
		post(rc, "/stats", idHeader("e2"), "{}"),
		post(rc, "/ids", idHeader("e3"), "{}"),
		get(rc, "/reset"),
		get(rc, "/a"),
	} {
		if w.Code != http.StatusMethodNotAllowed {
			t.Errorf("answered %d, want 405", w.Code)
		}
	}
	if doc := statsOf(t, rc); len(doc.Paths) != 1 || doc.Total.Requests != 1 {
		t.Errorf("stats %+v", doc)
	}
	if w := post(rc, "/reset", nil, ""); w.Code != http.StatusNoContent {
		t.Errorf("reset answered %d", w.Code)
	}
	if doc := statsOf(t, rc); len(doc.Paths) != 0 || doc.Total.Requests != 0 {
		t.Errorf("stats after reset %+v", doc)
	}
}

func TestStatusFlagIsTheAnswer(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusServiceUnavailable, 0)
	if w := post(rc, "/a", idHeader("e1"), "{}"); w.Code != http.StatusServiceUnavailable {
		t.Errorf("answered %d, want 503", w.Code)
	}
	if got := statsOf(t, rc).Paths["/a"].Requests; got != 1 {
		t.Errorf("%d requests counted, want 1", got)
	}
}

func TestWait(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if !wait(t.Context(), time.Millisecond) || !wait(t.Context(), 0) || wait(ctx, time.Hour) {
		t.Error("wait did not wait out its delay, or ignored its context")
	}
}

func TestDelayedAnswerIsAbortedWhenTheRequestEnds(t *testing.T) {
	t.Parallel()
	rc := newReceiver(nil, http.StatusOK, time.Hour)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	req := httptest.NewRequest(http.MethodPost, "/a", strings.NewReader("{}")).WithContext(ctx)
	defer func() {
		if r := recover(); r != http.ErrAbortHandler {
			t.Errorf("recovered %v, want http.ErrAbortHandler", r)
		}
	}()
	rc.routes().ServeHTTP(httptest.NewRecorder(), req)
	t.Error("the handler answered")
}

func TestBodyErrors(t *testing.T) {
	t.Parallel()
	if bodyErrorStatus(&http.MaxBytesError{Limit: 1}) != http.StatusRequestEntityTooLarge ||
		bodyErrorStatus(errors.New("reset")) != http.StatusBadRequest {
		t.Error("wrong statuses for body errors")
	}
}
