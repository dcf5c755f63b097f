package api_test

import (
	"context"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
)

// history is a delivery history of five deliveries made in two fan-outs:
// e1 (message.sent) to ep_a and ep_b, e2 (template.created) to ep_b, then
// e3 (message.failed) to ep_a and ep_b.
type history struct {
	*env
	// ids maps "event/endpoint" to the delivery id the API shows.
	ids map[string]string
	// second is when the second fan-out was recorded.
	second time.Time
}

func newHistory(t *testing.T) *history {
	t.Helper()
	h := &history{env: newEnv(t, options{}), ids: map[string]string{}}
	ctx := context.Background()
	h.storeEndpoint(ctx, "ep_a", "message.*")
	h.storeEndpoint(ctx, "ep_b", "*")
	h.fanOut(ctx, mustEvent(t, `{"id":"e1","type":"message.sent"}`),
		mustEvent(t, `{"id":"e2","type":"template.created"}`))
	h.fanOut(ctx, mustEvent(t, `{"id":"e3","type":"message.failed"}`))

	for _, key := range []string{"e1/ep_a", "e1/ep_b", "e2/ep_b", "e3/ep_a", "e3/ep_b"} {
		h.ids[key] = h.deliveryID(ctx, key)
	}
	d, err := h.store.GetDelivery(ctx, mustDeliveryID(t, h.ids["e3/ep_a"]))
	if err != nil {
		t.Fatalf("get delivery: %v", err)
	}
	h.second = d.CreatedAt
	return h
}

func (h *history) storeEndpoint(ctx context.Context, id, types string) {
	h.t.Helper()
	_, err := h.store.CreateEndpoint(ctx, db.Endpoint{
		ID: id, URL: "https://hooks.example.com/" + id, EventTypes: []string{types},
		SignatureScheme: "standard", Secrets: []string{"whsec_x"}, Active: true,
	})
	if err != nil {
		h.t.Fatalf("create endpoint %s: %v", id, err)
	}
}

func (h *history) fanOut(ctx context.Context, events ...*event.Event) {
	h.t.Helper()
	if _, err := dbtest.FanOut(ctx, h.store, events); err != nil {
		h.t.Fatalf("fan out: %v", err)
	}
}

func (h *history) deliveryID(ctx context.Context, key string) string {
	h.t.Helper()
	ev, ep := key[:2], key[3:]
	rows, err := h.store.ListDeliveries(ctx, db.DeliveryQuery{
		EventID: ev, EndpointID: ep, Limit: 2,
	})
	if err != nil || len(rows) != 1 {
		h.t.Fatalf("delivery %s: %v %v", key, rows, err)
	}
	return "dlv_" + strconv.FormatInt(rows[0].ID, 10)
}

func mustDeliveryID(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s[len("dlv_"):], 10, 64)
	if err != nil {
		t.Fatalf("delivery id %q: %v", s, err)
	}
	return n
}

// record adds attempts to deliveries through the store.
func (h *history) record(results ...db.Result) {
	h.t.Helper()
	done, err := h.store.RecordResults(context.Background(), results, 0)
	if err != nil || len(done) == 0 {
		h.t.Fatalf("record results: %v %v", done, err)
	}
}

// keys lists the deliveries the API answers to query, as "event/endpoint".
func (h *history) keys(query string) []string {
	h.t.Helper()
	ids, next := h.do(http.MethodGet, "/v1/deliveries?"+query, "").list(h.t)
	if next != "" {
		h.t.Fatalf("%s: unexpected next page", query)
	}
	byID := map[string]string{}
	for k, id := range h.ids {
		byID[id] = k
	}
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = byID[id]
	}
	sort.Strings(out)
	return out
}

func TestDeliveryListFilters(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	failed := h.ids["e3/ep_b"]
	h.record(db.Result{Status: db.StatusFailed, Attempt: db.Attempt{
		DeliveryID: mustDeliveryID(t, failed), Number: 1, StartedAt: time.Now(),
		StatusCode: 400, Error: "HTTP 400",
	}})
	at := url.QueryEscape(h.second.Format(time.RFC3339Nano))
	tests := map[string][]string{
		"":                                {"e1/ep_a", "e1/ep_b", "e2/ep_b", "e3/ep_a", "e3/ep_b"},
		"endpoint_id=ep_a":                {"e1/ep_a", "e3/ep_a"},
		"event_id=e1":                     {"e1/ep_a", "e1/ep_b"},
		"event_type=message.failed":       {"e3/ep_a", "e3/ep_b"},
		"status=failed":                   {"e3/ep_b"},
		"status=pending":                  {"e1/ep_a", "e1/ep_b", "e2/ep_b", "e3/ep_a"},
		"status=succeeded":                {},
		"endpoint_id=ep_b&status=pending": {"e1/ep_b", "e2/ep_b"},
		"since=" + at:                     {"e3/ep_a", "e3/ep_b"},
		"until=" + at:                     {"e1/ep_a", "e1/ep_b", "e2/ep_b"},
		"endpoint_id=ep_zzz":              {},
	}
	for query, want := range tests {
		if got := h.keys(query); !reflect.DeepEqual(got, want) {
			t.Errorf("%q: got %v, want %v", query, got, want)
		}
	}
}

func TestDeliveryListRefusesBadParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	bad := map[string]string{
		"status=done": "status", "since=yesterday": "since", "until=2026-01-01": "until",
		"event_type=Message": "event_type", "event_id=a%20b": "event_id",
		"endpoint_id=%FF": "endpoint_id", "limit=-1": "limit", "limit=1000": "limit",
		"cursor=%25%25": "cursor", "cursor=" + b64("dlv:x"): "cursor",
		"cursor=" + b64("dlv:-4"): "cursor", "cursor=" + b64("rej:4"): "cursor",
		"cursor=" + b64("dlv:99999999999999999999"): "cursor",
	}
	for q, field := range bad {
		e.do(http.MethodGet, "/v1/deliveries?"+q, "").
			wantError(t, http.StatusBadRequest, "invalid_request", field)
	}
}

// TestListsRefuseUnknownAndRepeatedParameters: a misspelt filter or a
// filter given twice would otherwise be ignored, and the list answered
// without it.
func TestListsRefuseUnknownAndRepeatedParameters(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	for _, tt := range []struct{ query, message string }{
		{"/v1/deliveries?stauts=failed",
			"stauts: unknown query parameter; this list takes endpoint_id, event_id, " +
				"event_type, status, since, until, limit, cursor"},
		{"/v1/deliveries?status=failed&status=pending", "status: given 2 times"},
		{"/v1/events?event_type=message.sent", "event_type: unknown query parameter"},
		{"/v1/events?type=message.sent&type=message.failed", "type: given 2 times"},
		{"/v1/endpoints?type=message.sent", "type: unknown query parameter"},
		{"/v1/endpoints?active=true&active=false", "active: given 2 times"},
		{"/v1/rejected?since=2026-01-01T00:00:00Z", "since: unknown query parameter"},
		{"/v1/rejected?limit=1&limit=2", "limit: given 2 times"},
		// A pair that does not parse was dropped by url.Values, and the
		// list answered without it.
		{"/v1/deliveries?status=failed;limit=5", "query: malformed"},
		{"/v1/deliveries?status=%zz", "query: malformed"},
		{"/v1/events?stauts=%zz&limit=5", "query: malformed"},
		{"/v1/endpoints?=x", "query: a parameter has no name"},
		{"/v1/deliveries?status=&limit=5", "status: is empty; leave it out"},
		{"/v1/events?limit=", "limit: is empty"},
		{"/v1/rejected?" + strings.Repeat("x", 200) + "=1", strings.Repeat("x", 80) + "…: unknown"},
	} {
		e.do(http.MethodGet, tt.query, "").
			wantError(t, http.StatusBadRequest, "invalid_request", tt.message)
	}
	for _, ok := range []string{
		"/v1/deliveries?status=failed&limit=5", "/v1/events?type=message.sent",
		"/v1/endpoints?active=true", "/v1/rejected?limit=1", "/v1/deliveries?cursor=",
	} {
		e.do(http.MethodGet, ok, "").wantStatus(t, http.StatusOK)
	}
}

func TestDeliveryPagination(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	var pages [][]string
	var all []string
	cursor := ""
	for {
		ids, next := h.do(http.MethodGet, "/v1/deliveries?limit=2&cursor="+cursor, "").list(t)
		pages, all = append(pages, ids), append(all, ids...)
		if next == "" || len(pages) > 5 {
			break
		}
		cursor = next
	}
	want := make([]string, 0, len(h.ids))
	for _, id := range h.ids {
		want = append(want, id)
	}
	checkPages(t, pages, []int{2, 2, 1}, want)
	for i := 1; i < len(all); i++ {
		if mustDeliveryID(t, all[i-1]) <= mustDeliveryID(t, all[i]) {
			t.Errorf("not newest first: %v", all)
		}
	}
}

func TestDeliveryDetail(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	id := h.ids["e1/ep_a"]
	n := mustDeliveryID(t, id)
	start := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	h.record(db.Result{Status: db.StatusPending, NextAttempt: start.Add(5 * time.Second),
		Attempt: db.Attempt{DeliveryID: n, Number: 1, StartedAt: start,
			Duration: 1500 * time.Millisecond, Error: "connection refused"}})
	h.record(db.Result{Status: db.StatusSucceeded, Attempt: db.Attempt{
		DeliveryID: n, Number: 2, StartedAt: start.Add(6 * time.Second),
		Duration: 20 * time.Millisecond, StatusCode: 200, ResponseBody: "ok"}})

	d := h.do(http.MethodGet, "/v1/deliveries/"+id, "").wantStatus(t, http.StatusOK).body
	want := map[string]string{
		"id": id, "event_id": "e1", "endpoint_id": "ep_a", "event_type": "message.sent",
		"status": "succeeded", "attempt_count": "2", "last_status_code": "200",
		"last_error": "", "next_attempt_at": "",
	}
	for k, v := range want {
		if got := str(d[k]); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
	if _, err := time.Parse(time.RFC3339Nano, str(d["completed_at"])); err != nil {
		t.Errorf("completed_at %v: %v", d["completed_at"], err)
	}
	attempts, _ := d["attempts"].([]any)
	if len(attempts) != 2 {
		t.Fatalf("attempts %v", d["attempts"])
	}
	checkAttempt(t, attempts[0], map[string]string{"number": "1",
		"started_at": "2026-03-01T09:00:00Z", "duration_ms": "1500", "status_code": "",
		"response_body": "", "error": "connection refused"})
	checkAttempt(t, attempts[1], map[string]string{"number": "2",
		"started_at": "2026-03-01T09:00:06Z", "duration_ms": "20", "status_code": "200",
		"response_body": "ok", "error": ""})
}

func checkAttempt(t *testing.T, v any, want map[string]string) {
	t.Helper()
	a, _ := v.(map[string]any)
	for k, w := range want {
		if _, present := a[k]; !present {
			t.Errorf("attempt has no %s: %v", k, a)
		}
		if got := str(a[k]); got != w {
			t.Errorf("attempt %s = %q, want %q", k, got, w)
		}
	}
}

func TestPendingDeliveryShowsNulls(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	d := h.do(http.MethodGet, "/v1/deliveries/"+h.ids["e2/ep_b"], "").
		wantStatus(t, http.StatusOK).body
	for _, k := range []string{"next_attempt_at", "last_status_code", "last_error",
		"completed_at"} {
		if v, present := d[k]; !present || v != nil {
			t.Errorf("%s = %v, want null", k, v)
		}
	}
	if a, ok := d["attempts"].([]any); !ok || len(a) != 0 {
		t.Errorf("attempts = %v, want []", d["attempts"])
	}
}

func TestUnknownDelivery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	for _, id := range []string{"dlv_999999", "dlv_0", "dlv_-1", "dlv_abc", "123", "dlv_",
		"dlv_+5", "dlv_99999999999999999999", "evt_1"} {
		e.do(http.MethodGet, "/v1/deliveries/"+id, "").
			wantError(t, http.StatusNotFound, "not_found", "")
	}
}

func TestRejectedList(t *testing.T) {
	t.Parallel()
	e := newEnv(t, options{})
	ctx := context.Background()
	for i := range 5 {
		err := e.store.RecordRejected(ctx, db.Rejected{
			Subject: "hookrelay.events.x", StreamSeq: uint64(i + 1), Reason: "type: missing",
			Head: `{"id":"x"}`, Size: 10,
		})
		if err != nil {
			t.Fatalf("record rejected: %v", err)
		}
	}
	var pages [][]string
	cursor := ""
	for {
		ids, next := e.do(http.MethodGet, "/v1/rejected?limit=2&cursor="+cursor, "").list(t)
		pages = append(pages, ids)
		if next == "" || len(pages) > 5 {
			break
		}
		cursor = next
	}
	checkPages(t, pages, []int{2, 2, 1}, nil)
	first := e.do(http.MethodGet, "/v1/rejected?limit=1", "").body["data"].([]any)[0]
	if m := first.(map[string]any); m["reason"] != "type: missing" || m["stream_seq"] != 5.0 {
		t.Errorf("newest rejected message %v", m)
	}
	e.do(http.MethodGet, "/v1/rejected?cursor="+b64("dlv:3"), "").
		wantError(t, http.StatusBadRequest, "invalid_request", "cursor")
}

// TestDeliveryPaginationWhileRowsArrive adds deliveries between pages: the
// pages already begun neither repeat nor skip a row, and the new rows are on
// a fresh first page.
func TestDeliveryPaginationWhileRowsArrive(t *testing.T) {
	t.Parallel()
	h := newHistory(t)
	ctx := context.Background()
	first, next := h.do(http.MethodGet, "/v1/deliveries?limit=2", "").list(t)
	h.fanOut(ctx, mustEvent(t, `{"id":"e4","type":"message.read"}`),
		mustEvent(t, `{"id":"e5","type":"message.read"}`))

	seen := append([]string{}, first...)
	for next != "" {
		var ids []string
		ids, next = h.do(http.MethodGet, "/v1/deliveries?limit=2&cursor="+next, "").list(t)
		seen = append(seen, ids...)
	}
	want := make([]string, 0, len(h.ids))
	for _, id := range h.ids {
		want = append(want, id)
	}
	sort.Strings(want)
	got := append([]string{}, seen...)
	sort.Strings(got)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("pages begun before the new rows listed %v, want exactly %v", seen, want)
	}
	fresh, _ := h.do(http.MethodGet, "/v1/deliveries?limit=4", "").list(t)
	if len(fresh) != 4 || mustDeliveryID(t, fresh[0]) <= mustDeliveryID(t, seen[0]) {
		t.Errorf("a fresh first page %v does not start with the new rows", fresh)
	}
}
