package main

import (
	"context"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/hookrelay/hookrelay/internal/api"
	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

// requeuer stands in for the pipeline behind the retry route.
type requeuer struct{}

func (requeuer) Requeue(context.Context, []db.Due) error { return nil }

func (requeuer) Probe(context.Context, db.Endpoint) pipeline.ProbeResult {
	return pipeline.ProbeResult{}
}

// adminAPI is an admin API on a fresh database with two endpoints and the
// deliveries of two events: e1 to ep_a (failed after two attempts) and to
// ep_b (succeeded), e2 to ep_b (pending).
type adminAPI struct {
	url   string
	token string
	ids   map[string]string // "event/endpoint" → delivery id
}

func newAdminAPI(t *testing.T) *adminAPI {
	t.Helper()
	pool, _ := dbtest.Open(t)
	store := db.NewStore(pool)
	const token = "t0ken"
	srv := httptest.NewServer(api.New(api.Config{
		Store: store, Token: token, Log: zaptest.NewLogger(t), Operator: requeuer{},
	}))
	t.Cleanup(srv.Close)
	a := &adminAPI{url: srv.URL, token: token, ids: map[string]string{}}

	ctx := context.Background()
	for _, ep := range []db.Endpoint{
		{ID: "ep_a", URL: "https://a.example.com/hook", EventTypes: []string{"message.*"}},
		{ID: "ep_b", URL: "https://b.example.com/in\tbox", EventTypes: []string{"*", "x.y"},
			SignatureScheme: "kmsg"},
	} {
		ep.Secrets, ep.Active = []string{"whsec_x"}, true
		if ep.SignatureScheme == "" {
			ep.SignatureScheme = "standard"
		}
		if _, err := store.CreateEndpoint(ctx, ep); err != nil {
			t.Fatal(err)
		}
	}
	for _, raw := range []string{`{"id":"e1","type":"message.sent"}`,
		`{"id":"e2","type":"template.created"}`} {
		ev, err := event.Parse([]byte(raw), 0, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dbtest.FanOut(ctx, store, []*event.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := store.ListDeliveries(ctx, db.DeliveryQuery{Limit: 10})
	if err != nil || len(rows) != 3 {
		t.Fatalf("deliveries %v %v", rows, err)
	}
	for _, d := range rows {
		a.ids[d.EventID+"/"+d.EndpointID] = "dlv_" + strconv.FormatInt(d.ID, 10)
	}
	start := time.Date(2026, 5, 1, 10, 0, 0, 0, time.UTC)
	record := func(key string, n int, status string, code int, errText, body string) {
		t.Helper()
		id, _ := strconv.ParseInt(strings.TrimPrefix(a.ids[key], "dlv_"), 10, 64)
		_, err := store.RecordResults(ctx, []db.Result{{Status: status,
			EndpointID: strings.Split(key, "/")[1], NextAttempt: start.Add(time.Hour),
			Attempt: db.Attempt{DeliveryID: id, Number: n, StartedAt: start.Add(time.Duration(n) * time.Minute),
				Duration: 1500 * time.Millisecond, StatusCode: code, Error: errText, ResponseBody: body}}}, 0)
		if err != nil {
			t.Fatal(err)
		}
	}
	record("e1/ep_a", 1, db.StatusPending, 503, "HTTP 503", "busy\nretry later")
	record("e1/ep_a", 2, db.StatusFailed, 400, "HTTP 400", `{"error":"bad"}`)
	record("e1/ep_b", 1, db.StatusSucceeded, 200, "", "ok")
	return a
}

// admin runs an admin command against the API with its token.
func (a *adminAPI) admin(t *testing.T, args ...string) result {
	t.Helper()
	return runArgs(t, "", append(args, "--api-url", a.url, "--api-token", a.token)...)
}

// columns splits a table line on runs of two or more spaces.
func columns(line string) []string {
	return regexp.MustCompile(`\s{2,}`).Split(strings.TrimSpace(line), -1)
}

// checkAligned fails unless every cell of every row starts where its
// header does.
func checkAligned(t *testing.T, lines []string) {
	t.Helper()
	header := lines[0]
	starts := []int{}
	for _, h := range columns(header) {
		starts = append(starts, strings.Index(header, h))
	}
	for _, l := range lines[1:] {
		for i, cell := range columns(l) {
			if i < len(starts) && !strings.HasPrefix(l[starts[i]:], cell) {
				t.Errorf("cell %q of %q is not under its header %q", cell, l, header)
			}
		}
	}
}

func TestEndpointsList(t *testing.T) {
	t.Parallel()
	a := newAdminAPI(t)
	r := a.admin(t, "endpoints", "list")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 4 {
		t.Fatalf("output:\n%s", r.stdout)
	}
	want := [][]string{
		{"ID", "URL", "EVENT TYPES", "SCHEME", "ACTIVE", "CREATED"},
		{"ep_b", "https://b.example.com/in box", "*,x.y", "kmsg", "yes"},
		{"ep_a", "https://a.example.com/hook", "message.*", "standard", "yes"},
	}
	for i, w := range want {
		got := columns(lines[i])
		if len(got) < len(w) || strings.Join(got[:len(w)], "|") != strings.Join(w, "|") {
			t.Errorf("line %d = %q, want columns %q", i, lines[i], w)
		}
	}
	checkAligned(t, lines[:3])
	if lines[3] != "2 endpoints" {
		t.Errorf("last line %q", lines[3])
	}

	r = a.admin(t, "endpoints", "list", "--limit", "1")
	wantLines(t, r.stdout, "ep_b", "1 endpoint shown; next page: --cursor ")
	cursor := strings.TrimSpace(r.stdout[strings.LastIndex(r.stdout, "--cursor ")+9:])
	r = a.admin(t, "endpoints", "list", "--limit", "1", "--cursor", cursor)
	wantLines(t, r.stdout, "ep_a", "1 endpoint\n")
}

func TestDeliveriesList(t *testing.T) {
	t.Parallel()
	a := newAdminAPI(t)
	r := a.admin(t, "deliveries", "list")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimRight(r.stdout, "\n"), "\n")
	if len(lines) != 5 || lines[4] != "3 deliveries" {
		t.Fatalf("output:\n%s", r.stdout)
	}
	checkAligned(t, lines[:4])
	wantLines(t, lines[0], "ID", "EVENT", "ENDPOINT", "STATUS", "ATTEMPTS", "LAST CODE",
		"LAST ERROR")
	failed := columns(lines[len(lines)-2])
	if want := []string{a.ids["e1/ep_a"], "e1", "ep_a", "message.sent", "failed", "2", "400"}; strings.Join(failed[:7], "|") != strings.Join(want, "|") {
		t.Errorf("oldest delivery %q, want %q", failed, want)
	}

	r = a.admin(t, "deliveries", "list", "--status", "failed")
	if r.code != exitOK || !strings.Contains(r.stdout, a.ids["e1/ep_a"]) ||
		!strings.HasSuffix(r.stdout, "\n1 delivery\n") {
		t.Errorf("--status failed: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	r = a.admin(t, "deliveries", "list", "--endpoint-id", "ep_b", "--event-id", "e2")
	if !strings.Contains(r.stdout, a.ids["e2/ep_b"]) || !strings.HasSuffix(r.stdout, "\n1 delivery\n") {
		t.Errorf("--endpoint-id ep_b --event-id e2:\n%s", r.stdout)
	}
	r = a.admin(t, "deliveries", "list", "--limit", "2")
	wantLines(t, r.stdout, "2 deliveries shown; next page: --cursor ")

	// The API's refusal is printed with its code and message.
	r = a.admin(t, "deliveries", "list", "--since", "yesterday")
	if r.code != exitFailed {
		t.Errorf("bad since: exit %d", r.code)
	}
	wantLines(t, r.stderr, "publisher deliveries list: invalid_request: since: must be an RFC 3339 time")
}

func TestDeliveriesShow(t *testing.T) {
	t.Parallel()
	a := newAdminAPI(t)
	id := a.ids["e1/ep_a"]
	r := a.admin(t, "deliveries", "show", id)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	wantLines(t, r.stdout, "id:                "+id, "event:             e1",
		"status:            failed", "last status code:  400", "last error:        HTTP 400",
		"next attempt:      -")
	head, attempts, ok := strings.Cut(r.stdout, "\n\n")
	if !ok || !strings.Contains(head, "completed:") {
		t.Fatalf("output:\n%s", r.stdout)
	}
	lines := strings.Split(strings.TrimRight(attempts, "\n"), "\n")
	if len(lines) != 3 {
		t.Fatalf("attempts:\n%s", attempts)
	}
	checkAligned(t, lines)
	want := [][]string{
		{"#", "STARTED", "DURATION", "STATUS", "ERROR", "RESPONSE"},
		{"1", "2026-05-01 10:01:00Z", "1.5s", "503", "HTTP 503", "busy retry later"},
		{"2", "2026-05-01 10:02:00Z", "1.5s", "400", "HTTP 400", `{"error":"bad"}`},
	}
	for i, w := range want {
		if got := columns(lines[i]); strings.Join(got, "|") != strings.Join(w, "|") {
			t.Errorf("attempt line %q, want %q", lines[i], w)
		}
	}

	// Flags may follow the id, and a pending delivery has no attempts.
	r = runArgs(t, "", "deliveries", "show", "--api-url", a.url, a.ids["e2/ep_b"],
		"--api-token", a.token)
	wantLines(t, r.stdout, "status:            pending", "no attempts yet")

	r = a.admin(t, "deliveries", "show", "dlv_999999")
	if r.code != exitFailed {
		t.Errorf("unknown delivery: exit %d", r.code)
	}
	wantLines(t, r.stderr, `not_found: delivery "dlv_999999" not found (HTTP 404)`)
}

func TestDeliveriesRetry(t *testing.T) {
	t.Parallel()
	a := newAdminAPI(t)
	id := a.ids["e1/ep_a"]
	r := a.admin(t, "deliveries", "retry", id)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	wantLines(t, r.stdout, "requeued "+id+": status pending, attempt 3 next, due ")
	r = a.admin(t, "deliveries", "show", id)
	wantLines(t, r.stdout, "status:            pending")

	r = a.admin(t, "deliveries", "retry", a.ids["e1/ep_b"])
	if r.code != exitFailed {
		t.Errorf("retry of a succeeded delivery: exit %d", r.code)
	}
	wantLines(t, r.stderr, "publisher deliveries retry: conflict: the delivery succeeded")
}

func TestAdminErrors(t *testing.T) {
	t.Parallel()
	a := newAdminAPI(t)
	r := runArgs(t, "", "endpoints", "list", "--api-url", a.url, "--api-token", "wrong")
	if r.code != exitFailed {
		t.Errorf("wrong token: exit %d", r.code)
	}
	wantLines(t, r.stderr, "unauthorized: a valid bearer token is required (HTTP 401)")

	r = runArgs(t, "", "endpoints", "list", "--api-url", "http://127.0.0.1:1")
	if r.code != exitFailed {
		t.Errorf("no API: exit %d", r.code)
	}
	wantLines(t, r.stderr, "admin API at http://127.0.0.1:1 (--api-url): ")

	usage := []struct {
		args []string
		want string
	}{
		{[]string{"endpoints"}, "publisher endpoints: no subcommand given"},
		{[]string{"deliveries", "purge"}, `unknown subcommand "purge"`},
		{[]string{"deliveries", "show"}, "publisher deliveries show: an id is required"},
		{[]string{"deliveries", "retry", "a", "b"}, `unexpected argument "b"`},
		{[]string{"endpoints", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"endpoints", "list", "--nope"}, "flag provided but not defined: -nope"},
		{[]string{"endpoints", "list", "--api-url", "127.0.0.1:8080"},
			`--api-url (HOOKRELAY_API_URL): "127.0.0.1:8080" is not an http:// or https:// URL`},
	}
	for _, u := range usage {
		r := runArgs(t, "", u.args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", u.args, r.code, exitUsage)
		}
		wantLines(t, r.stderr, u.want)
	}
	for _, args := range [][]string{{"deliveries", "-h"}, {"endpoints", "help"},
		{"deliveries", "list", "-h"}} {
		r := runArgs(t, "", args...)
		if r.code != exitOK {
			t.Errorf("%v: exit %d", args, r.code)
		}
		wantLines(t, r.stdout, "publisher deliveries show ID", "HOOKRELAY_API_URL")
	}
}

// TestAdminSettingsFromEnvironment cannot run in parallel: it sets the
// environment.
func TestAdminSettingsFromEnvironment(t *testing.T) {
	a := newAdminAPI(t)
	t.Setenv("HOOKRELAY_API_URL", a.url+"/")
	t.Setenv("HOOKRELAY_API_TOKEN", a.token)
	r := runArgs(t, "", "endpoints", "list")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	wantLines(t, r.stdout, "ep_a", "ep_b")
}

func TestAdminFlagValuesTheAPIWouldRefuseAreUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"endpoints", "list", "--active", "maybe"},
		{"deliveries", "list", "--limit", "0"},
		{"deliveries", "list", "--limit", "x"},
		{"deliveries", "list", "--status", ""},
		{"deliveries", "list", "--status", "FAILED"},
		{"deliveries", "list", "--cursor="},
	} {
		// The API is never reached: the URL's port has nothing behind it.
		r := runArgs(t, "", append(args, "--api-url", "http://127.0.0.1:1")...)
		if r.code != exitUsage || !strings.Contains(r.stderr, "invalid value") {
			t.Errorf("%v: exit %d, stderr %q; want a usage error", args, r.code, r.stderr)
		}
	}
}
