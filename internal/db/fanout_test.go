package db_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
)

// Tests of the fan-out stage's statements: Claim (EventClaim), RecordNew
// (DeliveryRecordNew) and EndpointsByID.

// foBundle is a store with the pool under it, for checks in SQL.
type foBundle struct {
	store *db.Store
	pool  *pgxpool.Pool
	ctx   context.Context
}

func foSetup(t *testing.T) foBundle {
	t.Helper()
	pool, _ := dbtest.Open(t)
	return foBundle{store: db.NewStore(pool), pool: pool, ctx: context.Background()}
}

func (b foBundle) endpoint(t *testing.T, id string, types []string, f db.Filters, active bool) db.Endpoint {
	t.Helper()
	e, err := b.store.CreateEndpoint(b.ctx, db.Endpoint{
		ID: id, URL: "https://example.com/" + id, EventTypes: types, Filters: f,
		SignatureScheme: "standard", Secrets: []string{"whsec_" + id}, Active: active,
	})
	if err != nil {
		t.Fatalf("create endpoint %s: %v", id, err)
	}
	return e
}

func (b foBundle) claim(t *testing.T, evs ...*event.Event) []db.Claimed {
	t.Helper()
	c, err := b.store.Claim(b.ctx, evs)
	if err != nil {
		t.Fatalf("claim: %v", err)
	}
	return c
}

func (b foBundle) recordNew(t *testing.T, ds ...db.NewDelivery) []int64 {
	t.Helper()
	ids, err := b.store.RecordNew(b.ctx, ds, 0)
	if err != nil {
		t.Fatalf("record new: %v", err)
	}
	if len(ids) != len(ds) {
		t.Fatalf("RecordNew returned %d ids for %d deliveries", len(ids), len(ds))
	}
	return ids
}

// delivery returns the delivery of (event, endpoint); it must exist.
func (b foBundle) delivery(t *testing.T, eventID, endpointID string) db.Delivery {
	t.Helper()
	ds, err := b.store.ListDeliveries(b.ctx, db.DeliveryQuery{
		EventID: eventID, EndpointID: endpointID, Limit: 10,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(ds) != 1 {
		t.Fatalf("deliveries of %s to %s: %+v, want one", eventID, endpointID, ds)
	}
	return ds[0]
}

func (b foBundle) attempts(t *testing.T, id int64) []db.Attempt {
	t.Helper()
	as, err := b.store.ListAttempts(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	return as
}

func (b foBundle) failingSince(t *testing.T, endpointID string) *time.Time {
	t.Helper()
	var at *time.Time
	if err := b.pool.QueryRow(b.ctx, `SELECT failing_since FROM endpoints WHERE id = $1`,
		endpointID).Scan(&at); err != nil {
		t.Fatal(err)
	}
	return at
}

// byEvent groups claimed rows: event id → endpoint id → row.
func byEvent(t *testing.T, rows []db.Claimed) map[string]map[string]db.Claimed {
	t.Helper()
	out := map[string]map[string]db.Claimed{}
	for _, r := range rows {
		if out[r.EventID] == nil {
			out[r.EventID] = map[string]db.Claimed{}
		}
		if _, dup := out[r.EventID][r.EndpointID]; dup {
			t.Errorf("claim returned %s → %s twice", r.EventID, r.EndpointID)
		}
		out[r.EventID][r.EndpointID] = r
	}
	return out
}

func endpointIDs(m map[string]db.Claimed) []string {
	var ids []string
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func TestClaimMatchesEndpointsOfFreshEvents(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	eps := map[string]db.Endpoint{}
	for _, e := range []struct {
		id     string
		types  []string
		f      db.Filters
		active bool
	}{
		{"ep_all", []string{"*"}, db.Filters{}, true},
		{"ep_exact", []string{"message.sent"}, db.Filters{}, true},
		{"ep_prefix", []string{"message.*"}, db.Filters{}, true},
		{"ep_provider", []string{"*"}, db.Filters{ProviderID: []string{"solapi"}}, true},
		{"ep_channel", []string{"message.*"}, db.Filters{ChannelID: []string{"ch1", "ch2"}}, true},
		{"ep_template", []string{"*"}, db.Filters{TemplateID: []string{"tpl1"}}, true},
		{"ep_off", []string{"*"}, db.Filters{}, false},
	} {
		eps[e.id] = b.endpoint(t, e.id, e.types, e.f, e.active)
	}

	evs := []*event.Event{
		mustEvent(t, `{"id":"e1","type":"message.sent","metadata":`+
			`{"providerId":"solapi","channelId":"ch2","templateId":"tpl1"}}`),
		mustEvent(t, `{"id":"e2","type":"message.failed","metadata":{"providerId":"aligo","channelId":"ch3"}}`),
		mustEvent(t, `{"id":"e3","type":"template.created","metadata":{"templateId":"tpl1"}}`),
		mustEvent(t, `{"id":"e4","type":"messages.sent","metadata":{"providerId":"solapi"}}`),
	}
	want := map[string][]string{
		"e1": {"ep_all", "ep_channel", "ep_exact", "ep_off", "ep_prefix", "ep_provider", "ep_template"},
		"e2": {"ep_all", "ep_off", "ep_prefix"},
		"e3": {"ep_all", "ep_off", "ep_template"},
		"e4": {"ep_all", "ep_off", "ep_provider"},
	}
	first := byEvent(t, b.claim(t, evs...))
	for id, w := range want {
		if got := endpointIDs(first[id]); !slices.Equal(got, w) {
			t.Errorf("event %s claimed for %v, want %v", id, got, w)
		}
		for epID, c := range first[id] {
			if !c.Fresh || c.Delivery != nil {
				t.Errorf("%s → %s: fresh=%v delivery=%+v, want fresh without delivery",
					id, epID, c.Fresh, c.Delivery)
			}
			if c.EndpointActive != eps[epID].Active {
				t.Errorf("%s → %s: active=%v, want %v", id, epID, c.EndpointActive, eps[epID].Active)
			}
			if !c.EndpointUpdatedAt.Equal(eps[epID].UpdatedAt) {
				t.Errorf("%s → %s: updated_at %v, want the endpoint's %v", id, epID,
					c.EndpointUpdatedAt, eps[epID].UpdatedAt)
			}
		}
	}
	for _, ev := range evs {
		got, err := b.store.GetEvent(b.ctx, ev.ID)
		if err != nil || string(got.Body) != string(ev.Raw) {
			t.Errorf("event %s recorded as %+v, %v", ev.ID, got, err)
		}
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM deliveries`).Scan(&n); err != nil || n != 0 {
		t.Errorf("claim wrote %d deliveries (%v), want none: RecordNew writes them", n, err)
	}

	t.Run("claimed again: not fresh, with their deliveries, without later endpoints", func(t *testing.T) {
		ids := b.recordNew(t,
			db.NewDelivery{EventID: "e1", EndpointID: "ep_all", EventType: "message.sent",
				Status: db.StatusSucceeded, Attempt: &db.Attempt{Number: 1,
					StartedAt: time.Now(), Duration: time.Millisecond, StatusCode: 200}},
			db.NewDelivery{EventID: "e1", EndpointID: "ep_prefix", EventType: "message.sent",
				Status: db.StatusPending, NextAttempt: time.Now().Add(time.Minute)},
			db.NewDelivery{EventID: "e2", EndpointID: "ep_off", EventType: "message.failed",
				Status: db.StatusSkipped, Error: "endpoint disabled"},
		)
		b.endpoint(t, "ep_late", []string{"*"}, db.Filters{}, true)

		again := byEvent(t, b.claim(t, evs...))
		for id, w := range want {
			if got := endpointIDs(again[id]); !slices.Equal(got, w) {
				t.Errorf("event %s claimed again for %v, want %v (no ep_late)", id, got, w)
			}
			for epID, c := range again[id] {
				if c.Fresh {
					t.Errorf("%s → %s claimed again as fresh", id, epID)
				}
			}
		}
		check := func(evID, epID string, id int64, status string, attempts int) {
			t.Helper()
			d := again[evID][epID].Delivery
			if d == nil || d.ID != id || d.Status != status || d.AttemptCount != attempts {
				t.Errorf("%s → %s: delivery %+v, want id %d %s with %d attempts",
					evID, epID, d, id, status, attempts)
			}
		}
		check("e1", "ep_all", ids[0], db.StatusSucceeded, 1)
		check("e1", "ep_prefix", ids[1], db.StatusPending, 0)
		check("e2", "ep_off", ids[2], db.StatusSkipped, 0)
		if d := again["e1"]["ep_prefix"].Delivery; d != nil && d.NextAttempt == nil {
			t.Errorf("pending delivery claimed without its next attempt time")
		}
		if d := again["e1"]["ep_exact"].Delivery; d != nil {
			t.Errorf("e1 → ep_exact has no delivery, claim returned %+v", d)
		}

		// A new event of the same batch still goes to the later endpoint.
		fresh := byEvent(t, b.claim(t, evs[0],
			mustEvent(t, `{"id":"e5","type":"template.deleted"}`)))
		if got := endpointIDs(fresh["e5"]); !slices.Equal(got, []string{"ep_all", "ep_late", "ep_off"}) {
			t.Errorf("new event e5 claimed for %v, want ep_all, ep_late, ep_off", got)
		}
		if fresh["e5"]["ep_late"].Fresh != true || fresh["e1"]["ep_all"].Fresh != false {
			t.Errorf("mixed batch: fresh flags %+v", fresh)
		}
	})
}

func TestClaimWithoutMatchStillRecordsTheEvent(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	b.endpoint(t, "ep_msg", []string{"message.*"}, db.Filters{}, true)
	b.endpoint(t, "ep_solapi", []string{"*"}, db.Filters{ProviderID: []string{"solapi"}}, true)

	rows := b.claim(t, mustEvent(t, `{"id":"lonely","type":"template.created","metadata":{"providerId":"aligo"}}`))
	if len(rows) != 0 {
		t.Errorf("claim returned %+v for an event no endpoint wants", rows)
	}
	if _, err := b.store.GetEvent(b.ctx, "lonely"); err != nil {
		t.Errorf("event without a match not recorded: %v", err)
	}
	if rows := b.claim(t, mustEvent(t, `{"id":"lonely","type":"template.created"}`)); len(rows) != 0 {
		t.Errorf("claimed again: %+v, want nothing", rows)
	}
}

func TestClaimSameIDTwiceInOneCall(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	b.endpoint(t, "ep_all", []string{"*"}, db.Filters{}, true)
	b.endpoint(t, "ep_msg", []string{"message.*"}, db.Filters{}, true)
	ev := mustEvent(t, `{"id":"twice","type":"message.sent"}`)

	for _, round := range []string{"new", "known"} {
		rows, err := b.store.Claim(b.ctx, []*event.Event{ev, ev})
		if err != nil {
			t.Fatalf("%s event twice in one claim: %v", round, err)
		}
		seen := map[string]int{}
		for _, r := range rows {
			if r.EventID != "twice" {
				t.Errorf("%s: claimed row for %q", round, r.EventID)
			}
			seen[r.EndpointID]++
		}
		if seen["ep_all"] == 0 || seen["ep_msg"] == 0 || len(seen) != 2 {
			t.Errorf("%s: claimed endpoints %v, want ep_all and ep_msg", round, seen)
		}
		// The pipeline drops repeated ids before it claims (acking their
		// messages); Claim takes each id once whatever it is given.
		t.Logf("%s: rows per endpoint %v", round, seen)
	}
	var n int
	if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM events WHERE id = 'twice'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("event recorded %d times (%v), want once", n, err)
	}
}

func TestRecordNewWritesFinalStateWithFirstAttempt(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	for _, id := range []string{"ep_ok", "ep_bad", "ep_retry", "ep_later", "ep_off"} {
		b.endpoint(t, id, []string{"*"}, db.Filters{}, id != "ep_off")
	}
	b.claim(t, mustEvent(t, `{"id":"e1","type":"message.sent"}`),
		mustEvent(t, `{"id":"e2","type":"message.sent"}`))

	started := time.Now().Add(-time.Second).Truncate(time.Microsecond)
	retryAt := time.Now().Add(5 * time.Minute).Truncate(time.Microsecond)
	laterAt := time.Now().Add(time.Minute).Truncate(time.Microsecond)
	attempt := func(code int, errText string) *db.Attempt {
		return &db.Attempt{Number: 1, StartedAt: started, Duration: 42 * time.Millisecond,
			StatusCode: code, ResponseBody: fmt.Sprintf("body %d", code), Error: errText}
	}
	row := func(ep, status string, a *db.Attempt) db.NewDelivery {
		d := db.NewDelivery{EventID: "e1", EndpointID: ep, EventType: "message.sent",
			Status: status, Attempt: a}
		if a != nil {
			d.Error = a.Error
		}
		return d
	}
	ok := row("ep_ok", db.StatusSucceeded, attempt(200, ""))
	bad := row("ep_bad", db.StatusFailed, attempt(400, "HTTP 400"))
	retry := row("ep_retry", db.StatusPending, attempt(503, "HTTP 503"))
	retry.NextAttempt = retryAt
	later := row("ep_later", db.StatusPending, nil)
	later.NextAttempt = laterAt
	off := row("ep_off", db.StatusSkipped, nil)
	off.Error = "endpoint disabled"

	ids := b.recordNew(t, ok, bad, retry, later, off)
	for i, id := range ids {
		if id == 0 {
			t.Fatalf("delivery %d not recorded: ids %v", i, ids)
		}
	}

	t.Run("attempted deliveries are in their final state with attempt 1", func(t *testing.T) {
		for _, c := range []struct {
			ep, status string
			code       int
			errText    string
			completed  bool
		}{
			{"ep_ok", db.StatusSucceeded, 200, "", true},
			{"ep_bad", db.StatusFailed, 400, "HTTP 400", true},
			{"ep_retry", db.StatusPending, 503, "HTTP 503", false},
		} {
			d := b.delivery(t, "e1", c.ep)
			if d.Status != c.status || d.AttemptCount != 1 || d.LastStatusCode == nil ||
				*d.LastStatusCode != c.code || d.LastError != c.errText ||
				(d.CompletedAt != nil) != c.completed || d.EventType != "message.sent" {
				t.Errorf("%s: delivery %+v", c.ep, d)
			}
			if c.status == db.StatusPending {
				if d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(retryAt) {
					t.Errorf("%s: next attempt %v, want %v", c.ep, d.NextAttemptAt, retryAt)
				}
			} else if d.NextAttemptAt != nil {
				t.Errorf("%s: ended delivery has next attempt %v", c.ep, d.NextAttemptAt)
			}
			as := b.attempts(t, d.ID)
			if len(as) != 1 {
				t.Fatalf("%s: attempts %+v, want one", c.ep, as)
			}
			a := as[0]
			if a.Number != 1 || !a.StartedAt.Equal(started) || a.Duration != 42*time.Millisecond ||
				a.StatusCode != c.code || a.ResponseBody != fmt.Sprintf("body %d", c.code) ||
				a.Error != c.errText {
				t.Errorf("%s: attempt %+v", c.ep, a)
			}
		}
	})
	t.Run("a delivery without attempt is pending with none", func(t *testing.T) {
		d := b.delivery(t, "e1", "ep_later")
		if d.Status != db.StatusPending || d.AttemptCount != 0 || d.CompletedAt != nil ||
			d.NextAttemptAt == nil || !d.NextAttemptAt.Equal(laterAt) || d.LastStatusCode != nil {
			t.Errorf("delivery %+v", d)
		}
		if as := b.attempts(t, d.ID); len(as) != 0 {
			t.Errorf("attempts %+v, want none", as)
		}
		s := b.delivery(t, "e1", "ep_off")
		if s.Status != db.StatusSkipped || s.AttemptCount != 0 || s.CompletedAt == nil ||
			s.LastError != "endpoint disabled" || s.NextAttemptAt != nil {
			t.Errorf("skipped delivery %+v", s)
		}
		if as := b.attempts(t, s.ID); len(as) != 0 {
			t.Errorf("attempts of skipped %+v, want none", as)
		}
	})

	t.Run("a second record of the same delivery changes nothing", func(t *testing.T) {
		before := map[string]db.Delivery{}
		for _, ep := range []string{"ep_ok", "ep_bad", "ep_retry", "ep_later", "ep_off"} {
			before[ep] = b.delivery(t, "e1", ep)
		}
		other := attempt(500, "HTTP 500")
		other.StartedAt = started.Add(time.Second)
		again := b.recordNew(t,
			row("ep_ok", db.StatusFailed, other),                  // ended: kept
			row("ep_bad", db.StatusSucceeded, attempt(200, "")),   // ended: kept
			row("ep_retry", db.StatusSucceeded, attempt(200, "")), // attempted: kept
			row("ep_later", db.StatusPending, nil),                // no attempt: kept
			row("ep_off", db.StatusSucceeded, attempt(200, "")),   // skipped: kept
		)
		if !slices.Equal(again, []int64{0, 0, 0, 0, 0}) {
			t.Errorf("ids %v, want all zero", again)
		}
		for ep, d := range before {
			now := b.delivery(t, "e1", ep)
			if !sameDelivery(now, d) {
				t.Errorf("%s changed:\n was %+v\n now %+v", ep, d, now)
			}
			if n := len(b.attempts(t, d.ID)); n != d.AttemptCount {
				t.Errorf("%s: %d attempt rows, want %d", ep, n, d.AttemptCount)
			}
		}
	})

	t.Run("a pending delivery without attempt takes a first attempt", func(t *testing.T) {
		d := b.delivery(t, "e1", "ep_later")
		ids := b.recordNew(t, row("ep_later", db.StatusSucceeded, attempt(204, "")))
		if ids[0] != d.ID {
			t.Fatalf("id %d, want the existing delivery's %d", ids[0], d.ID)
		}
		now := b.delivery(t, "e1", "ep_later")
		if now.Status != db.StatusSucceeded || now.AttemptCount != 1 || now.CompletedAt == nil ||
			now.NextAttemptAt != nil || now.LastStatusCode == nil || *now.LastStatusCode != 204 {
			t.Errorf("delivery %+v", now)
		}
		as := b.attempts(t, d.ID)
		if len(as) != 1 || as[0].Number != 1 || as[0].StatusCode != 204 {
			t.Errorf("attempts %+v, want attempt 1 with 204", as)
		}
		// Now attempted: a further first attempt is refused.
		if ids := b.recordNew(t, row("ep_later", db.StatusFailed, attempt(400, "HTTP 400"))); ids[0] != 0 {
			t.Errorf("recorded a second first attempt over an attempted delivery: id %d", ids[0])
		}
		if n := len(b.attempts(t, d.ID)); n != 1 {
			t.Errorf("%d attempt rows, want 1", n)
		}
	})

	t.Run("a pending-without-attempt record over one changes nothing", func(t *testing.T) {
		b.recordNew(t, db.NewDelivery{EventID: "e2", EndpointID: "ep_later",
			EventType: "message.sent", Status: db.StatusPending, NextAttempt: laterAt})
		d := b.delivery(t, "e2", "ep_later")
		ids := b.recordNew(t, db.NewDelivery{EventID: "e2", EndpointID: "ep_later",
			EventType: "message.sent", Status: db.StatusPending, NextAttempt: retryAt})
		if ids[0] != 0 {
			t.Errorf("id %d, want 0", ids[0])
		}
		if now := b.delivery(t, "e2", "ep_later"); !sameDelivery(now, d) {
			t.Errorf("changed:\n was %+v\n now %+v", d, now)
		}
	})
}

// sameDelivery compares deliveries field by field (pointers by value).
func sameDelivery(a, b db.Delivery) bool {
	eqTime := func(x, y *time.Time) bool {
		return (x == nil) == (y == nil) && (x == nil || x.Equal(*y))
	}
	eqInt := func(x, y *int) bool { return (x == nil) == (y == nil) && (x == nil || *x == *y) }
	return a.ID == b.ID && a.EventID == b.EventID && a.EndpointID == b.EndpointID &&
		a.EventType == b.EventType && a.Status == b.Status && a.AttemptCount == b.AttemptCount &&
		eqTime(a.NextAttemptAt, b.NextAttemptAt) && eqInt(a.LastStatusCode, b.LastStatusCode) &&
		a.LastError == b.LastError && a.CreatedAt.Equal(b.CreatedAt) &&
		a.UpdatedAt.Equal(b.UpdatedAt) && eqTime(a.CompletedAt, b.CompletedAt)
}

func TestRecordNewDuplicatesInOneCall(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	b.endpoint(t, "ep_a", []string{"*"}, db.Filters{}, true)
	b.endpoint(t, "ep_b", []string{"*"}, db.Filters{}, true)
	b.claim(t, mustEvent(t, `{"id":"e1","type":"message.sent"}`))
	at := time.Now()
	mk := func(ep, status string, code int) db.NewDelivery {
		d := db.NewDelivery{EventID: "e1", EndpointID: ep, EventType: "message.sent",
			Status: status, NextAttempt: at}
		if code != 0 {
			d.Attempt = &db.Attempt{Number: 1, StartedAt: at, StatusCode: code}
		}
		return d
	}
	ids, err := b.store.RecordNew(b.ctx, []db.NewDelivery{
		mk("ep_a", db.StatusSucceeded, 200),
		mk("ep_b", db.StatusPending, 0),
		mk("ep_a", db.StatusFailed, 400),
		mk("ep_b", db.StatusPending, 0),
		mk("ep_a", db.StatusPending, 0),
	}, 0)
	if err != nil {
		t.Fatalf("duplicates in one call: %v", err)
	}
	if ids[0] == 0 || ids[1] == 0 || ids[2] != 0 || ids[3] != 0 || ids[4] != 0 {
		t.Fatalf("ids %v, want the first of each key recorded and zero for the rest", ids)
	}
	a, bd := b.delivery(t, "e1", "ep_a"), b.delivery(t, "e1", "ep_b")
	if a.ID != ids[0] || a.Status != db.StatusSucceeded || a.AttemptCount != 1 {
		t.Errorf("ep_a: %+v", a)
	}
	if bd.ID != ids[1] || bd.Status != db.StatusPending || bd.AttemptCount != 0 {
		t.Errorf("ep_b: %+v", bd)
	}
	if n := len(b.attempts(t, a.ID)); n != 1 {
		t.Errorf("ep_a: %d attempts, want 1", n)
	}
	if n := len(b.attempts(t, bd.ID)); n != 0 {
		t.Errorf("ep_b: %d attempts, want 0", n)
	}
}

func TestRecordNewKeepsEndpointHealth(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	b.endpoint(t, "ep_h", []string{"*"}, db.Filters{}, true)
	b.endpoint(t, "ep_quiet", []string{"*"}, db.Filters{}, true)
	for i := 1; i <= 4; i++ {
		b.claim(t, mustEvent(t, fmt.Sprintf(`{"id":"h%d","type":"message.sent"}`, i)))
	}
	rec := func(evID, ep, status string, code int) {
		t.Helper()
		d := db.NewDelivery{EventID: evID, EndpointID: ep, EventType: "message.sent",
			Status: status, NextAttempt: time.Now().Add(time.Minute)}
		if code != 0 {
			d.Attempt = &db.Attempt{Number: 1, StartedAt: time.Now(), StatusCode: code}
		}
		if ids := b.recordNew(t, d); ids[0] == 0 {
			t.Fatalf("%s → %s not recorded", evID, ep)
		}
	}

	rec("h1", "ep_h", db.StatusFailed, 400)
	first := b.failingSince(t, "ep_h")
	if first == nil {
		t.Fatal("failing_since not set by a failed first attempt")
	}
	rec("h2", "ep_h", db.StatusPending, 503) // a retry to come: still failing
	if now := b.failingSince(t, "ep_h"); now == nil || !now.Equal(*first) {
		t.Errorf("failing_since %v after a second failure, want it kept at %v", now, first)
	}
	rec("h3", "ep_h", db.StatusSucceeded, 200)
	if now := b.failingSince(t, "ep_h"); now != nil {
		t.Errorf("failing_since %v after a success, want cleared", now)
	}

	// Deliveries without an attempt say nothing of the endpoint's health.
	rec("h1", "ep_quiet", db.StatusPending, 0)
	rec("h2", "ep_quiet", db.StatusSkipped, 0)
	if now := b.failingSince(t, "ep_quiet"); now != nil {
		t.Errorf("failing_since %v set without an attempt", now)
	}
	rec("h4", "ep_h", db.StatusFailed, 500)
	if b.failingSince(t, "ep_h") == nil {
		t.Error("failing_since not set again by a failure after the success")
	}
}

func TestEndpointsByIDDecryptsAndIsolatesUnreadableSecrets(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := context.Background()
	store := db.NewStore(pool)
	if err := store.UseSecretKey(testKey); err != nil {
		t.Fatal(err)
	}
	other := db.NewStore(pool)
	if err := other.UseSecretKey(otherKey); err != nil {
		t.Fatal(err)
	}
	plain := db.NewStore(pool)
	create := func(s *db.Store, id, secret string) {
		t.Helper()
		if _, err := s.CreateEndpoint(ctx, db.Endpoint{
			ID: id, URL: "https://example.com/" + id, EventTypes: []string{"*"},
			SignatureScheme: "standard", Secrets: []string{secret}, Active: true,
		}); err != nil {
			t.Fatal(err)
		}
	}
	create(store, "ep_enc", "whsec_enc")
	create(store, "ep_rot", "whsec_old")
	if _, err := store.RotateSecret(ctx, "ep_rot", "whsec_new", time.Hour); err != nil {
		t.Fatal(err)
	}
	create(plain, "ep_plain", "whsec_plain")
	create(other, "ep_foreign", "whsec_foreign")

	eps, secretErrs, err := store.EndpointsByID(ctx,
		[]string{"ep_enc", "ep_foreign", "ep_rot", "ep_plain", "ep_missing"})
	if err != nil {
		t.Fatalf("one unreadable secret failed the whole load: %v", err)
	}
	want := map[string][]string{
		"ep_enc": {"whsec_enc"}, "ep_rot": {"whsec_new", "whsec_old"}, "ep_plain": {"whsec_plain"},
	}
	for id, secrets := range want {
		e := eps[id]
		if e == nil {
			t.Errorf("%s missing", id)
			continue
		}
		if !slices.Equal(e.Secrets, secrets) || e.ID != id || e.URL != "https://example.com/"+id {
			t.Errorf("%s: %+v, want secrets %v", id, e, secrets)
		}
		if secretErrs[id] != nil {
			t.Errorf("%s: secret error %v", id, secretErrs[id])
		}
	}
	if e := eps["ep_foreign"]; e == nil {
		t.Error("endpoint with an unreadable secret not returned")
	} else if len(e.Secrets) != 0 {
		t.Errorf("unreadable endpoint returned with secrets %v", e.Secrets)
	}
	if !errors.Is(secretErrs["ep_foreign"], db.ErrSecretKey) {
		t.Errorf("ep_foreign: secret error %v, want ErrSecretKey", secretErrs["ep_foreign"])
	}
	if _, ok := eps["ep_missing"]; ok || len(eps) != 4 || len(secretErrs) != 1 {
		t.Errorf("returned %d endpoints and %d errors (%v), want 4 and 1", len(eps),
			len(secretErrs), secretErrs)
	}
}

// TestRecordNewAttemptAfterPendingInOneCall records, in one call, a pending
// delivery without attempt (a redelivered try of the event handing it to the
// delivery stage) and then the first attempt of the same delivery (the try
// that made it): the attempt must be recorded over the pending row, as it is
// when the two come in separate calls. RecordNew's "first wins" de-duplication
// drops the attempt instead: the attempt made is never recorded, its try is
// told another try recorded it, and the delivery stage makes attempt 1 again.
func TestRecordNewAttemptAfterPendingInOneCall(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	b.endpoint(t, "ep_a", []string{"*"}, db.Filters{}, true)
	b.claim(t, mustEvent(t, `{"id":"sep","type":"message.sent"}`),
		mustEvent(t, `{"id":"one","type":"message.sent"}`))
	pending := func(ev string) db.NewDelivery {
		return db.NewDelivery{EventID: ev, EndpointID: "ep_a", EventType: "message.sent",
			Status: db.StatusPending, NextAttempt: time.Now().Add(time.Minute)}
	}
	attempted := func(ev string) db.NewDelivery {
		return db.NewDelivery{EventID: ev, EndpointID: "ep_a", EventType: "message.sent",
			Status: db.StatusSucceeded, Attempt: &db.Attempt{Number: 1, StartedAt: time.Now(),
				StatusCode: 200}}
	}

	// Two calls: the attempt is written over the pending row.
	first := b.recordNew(t, pending("sep"))
	second := b.recordNew(t, attempted("sep"))
	if first[0] == 0 || second[0] != first[0] {
		t.Fatalf("separate calls: ids %v then %v, want the same delivery twice", first, second)
	}
	if d := b.delivery(t, "sep", "ep_a"); d.Status != db.StatusSucceeded || d.AttemptCount != 1 {
		t.Fatalf("separate calls: delivery %+v, want succeeded after 1 attempt", d)
	}

	// One call, same order: the outcome must be the same.
	ids, err := b.store.RecordNew(b.ctx, []db.NewDelivery{pending("one"), attempted("one")}, 0)
	if err != nil {
		t.Fatal(err)
	}
	d := b.delivery(t, "one", "ep_a")
	if ids[1] == 0 || ids[1] != d.ID {
		t.Errorf("one call: ids %v, want the attempt recorded on delivery %d", ids, d.ID)
	}
	if d.Status != db.StatusSucceeded || d.AttemptCount != 1 {
		t.Errorf("one call: delivery %+v, want succeeded after 1 attempt, as with two calls", d)
	}
	if n := len(b.attempts(t, d.ID)); n != 1 {
		t.Errorf("one call: %d attempt rows, want the attempt made", n)
	}
}

// TestClaimOfAnIDUsedAgainForAnotherType claims an id recorded before for
// one type in a message of another type: no endpoint matches, neither those
// of the new type (they would get the recorded event, which is not of their
// type) nor the recorded type's (its own message went to them).
func TestClaimOfAnIDUsedAgainForAnotherType(t *testing.T) {
	t.Parallel()
	b := foSetup(t)
	b.endpoint(t, "ep_x", []string{"zz.typex"}, db.Filters{}, true)
	b.endpoint(t, "ep_y", []string{"zz.typey"}, db.Filters{}, true)

	first := byEvent(t, b.claim(t, mustEvent(t, `{"id":"retyped","type":"zz.typey"}`)))
	if got := endpointIDs(first["retyped"]); !slices.Equal(got, []string{"ep_y"}) {
		t.Fatalf("first claim for %v, want ep_y", got)
	}
	if rows := b.claim(t, mustEvent(t, `{"id":"retyped","type":"zz.typex"}`)); len(rows) != 0 {
		t.Errorf("claim of the id as another type: %+v, want nothing", rows)
	}
	again := byEvent(t, b.claim(t, mustEvent(t, `{"id":"retyped","type":"zz.typey"}`)))
	if got := endpointIDs(again["retyped"]); !slices.Equal(got, []string{"ep_y"}) {
		t.Errorf("claim of the same message again for %v, want ep_y", got)
	}
}
