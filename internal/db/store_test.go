package db_test

import (
	"context"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/event"
)

type bundle struct {
	store *db.Store
	ctx   context.Context
}

func setup(t *testing.T) bundle {
	t.Helper()
	pool, _ := dbtest.Open(t)
	return bundle{store: db.NewStore(pool), ctx: context.Background()}
}

func (b bundle) endpoint(t *testing.T, id string, types []string, f db.Filters, active bool) {
	t.Helper()
	_, err := b.store.CreateEndpoint(b.ctx, db.Endpoint{
		ID: id, URL: "https://example.com/" + id, EventTypes: types, Filters: f,
		SignatureScheme: "standard", Secrets: []string{"whsec_x"}, Active: active,
	})
	if err != nil {
		t.Fatalf("create endpoint %s: %v", id, err)
	}
}

func mustEvent(t *testing.T, raw string) *event.Event {
	t.Helper()
	ev, err := event.Parse([]byte(raw), 0, time.Now())
	if err != nil {
		t.Fatalf("parse %s: %v", raw, err)
	}
	return ev
}

func TestFanOutMatchesEndpoints(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.endpoint(t, "ep_all", []string{"*"}, db.Filters{}, true)
	b.endpoint(t, "ep_exact", []string{"message.sent"}, db.Filters{}, true)
	b.endpoint(t, "ep_prefix", []string{"message.*"}, db.Filters{}, true)
	b.endpoint(t, "ep_solapi", []string{"*"}, db.Filters{ProviderID: []string{"solapi"}}, true)
	b.endpoint(t, "ep_off", []string{"*"}, db.Filters{}, false)

	events := []*event.Event{
		mustEvent(t, `{"id":"e1","type":"message.sent","metadata":{"providerId":"solapi"}}`),
		mustEvent(t, `{"id":"e2","type":"message.failed"}`),
		mustEvent(t, `{"id":"e3","type":"template.created"}`),
		mustEvent(t, `{"id":"e4","type":"messages.sent"}`),
	}
	pending, err := dbtest.FanOut(b.ctx, b.store, events)
	if err != nil {
		t.Fatal(err)
	}

	got := map[string][]string{}
	for _, p := range pending {
		d, err := b.store.GetDelivery(b.ctx, p.DeliveryID)
		if err != nil {
			t.Fatal(err)
		}
		got[p.EventID] = append(got[p.EventID], d.EndpointID)
	}
	want := map[string]int{"e1": 4, "e2": 2, "e3": 1, "e4": 1}
	for id, n := range want {
		if len(got[id]) != n {
			t.Errorf("event %s: pending deliveries to %v, want %d", id, got[id], n)
		}
	}

	t.Run("a disabled endpoint gets a skipped delivery", func(t *testing.T) {
		ds, err := b.store.ListDeliveries(b.ctx, db.DeliveryQuery{
			EndpointID: "ep_off", Limit: 10,
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(ds) != 4 || ds[0].Status != db.StatusSkipped {
			t.Fatalf("deliveries to ep_off = %+v, want 4 skipped", ds)
		}
	})

	t.Run("a repeated fan-out returns only deliveries without attempts", func(t *testing.T) {
		again, err := dbtest.FanOut(b.ctx, b.store, events)
		if err != nil {
			t.Fatal(err)
		}
		if len(again) != len(pending) {
			t.Fatalf("repeat returned %d pending, want %d", len(again), len(pending))
		}
	})
}
