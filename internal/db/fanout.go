package db

import (
	"context"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
	"github.com/hookrelay/hookrelay/internal/event"
)

// Claimed is one endpoint an event of a claimed batch goes to.
type Claimed struct {
	EventID string
	// Fresh is true when the claim recorded the event; false when it was
	// recorded before (an earlier try, or the same id published again).
	Fresh             bool
	EndpointID        string
	EndpointUpdatedAt time.Time
	EndpointActive    bool
	// Delivery is the delivery the event already has for the endpoint; nil
	// when it has none (always so for a fresh event).
	Delivery *ClaimedDelivery
}

// ClaimedDelivery is the state of a delivery recorded before the claim.
type ClaimedDelivery struct {
	ID           int64
	Status       string
	AttemptCount int
	NextAttempt  *time.Time
}

// Claim records a batch of events in one statement and returns the
// endpoints each is to go to (see the EventClaim query). An event recorded
// by a transaction still running elsewhere returns nothing: it is that
// transaction's to deliver.
func (s *Store) Claim(ctx context.Context, events []*event.Event) ([]Claimed, error) {
	f := fanOutParams(events)
	rows, err := s.q.EventClaim(ctx, s.pool, dbgen.EventClaimParams{
		Ids: f.Ids, Types: f.Types, OccurredAts: f.OccurredAts, ProviderIds: f.ProviderIds,
		ChannelIds: f.ChannelIds, TemplateIds: f.TemplateIds, MessageIds: f.MessageIds,
		OrganizationIds: f.OrganizationIds, Bodies: f.Bodies, Patterns: f.Patterns,
	})
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	out := make([]Claimed, len(rows))
	for i, r := range rows {
		out[i] = Claimed{
			EventID: r.EventID, Fresh: r.Fresh, EndpointID: r.EndpointID,
			EndpointUpdatedAt: r.EndpointUpdatedAt, EndpointActive: r.EndpointActive,
		}
		if r.DeliveryID != nil {
			out[i].Delivery = &ClaimedDelivery{
				ID: *r.DeliveryID, Status: deref(r.Status),
				AttemptCount: int(deref(r.AttemptCount)), NextAttempt: r.NextAttemptAt,
			}
		}
	}
	return out, nil
}

// EndpointsByID returns the endpoints ids that exist, with their secrets
// decrypted. An endpoint whose secrets cannot be decrypted is returned with
// the error in secretErrs and no secrets, so it holds back only itself.
func (s *Store) EndpointsByID(ctx context.Context, ids []string) (
	endpoints map[string]*Endpoint, secretErrs map[string]error, err error) {
	rows, err := s.q.EndpointListByIDs(ctx, s.pool, ids)
	if err != nil {
		return nil, nil, fmt.Errorf("load endpoints: %w", err)
	}
	endpoints = make(map[string]*Endpoint, len(rows))
	secretErrs = map[string]error{}
	for _, r := range rows {
		e := endpointFromRow(r)
		e.Secrets, err = s.openAll(r.Secrets)
		if err != nil {
			secretErrs[r.ID] = err
		}
		endpoints[r.ID] = &e
	}
	return endpoints, secretErrs, nil
}

// NewDelivery is a delivery of a fanned-out event as its first attempt left
// it, or pending without an attempt when the delivery stage makes it.
type NewDelivery struct {
	EventID    string
	EndpointID string
	EventType  string
	Status     string
	// Attempt is the first attempt; nil when none was made. Its
	// DeliveryID is not used: the delivery's id is assigned on insert.
	Attempt *Attempt
	// NextAttempt is when the next attempt is due, for a pending delivery.
	NextAttempt time.Time
	// Error is the delivery's last_error: the attempt's error, or why it
	// was skipped.
	Error string
}

// RecordNew writes new deliveries and their first attempts in one round
// trip, and keeps endpoint health as RecordResults does. A delivery that
// already exists is left alone, unless it is pending with no attempt and ds
// brings its first attempt; the ids of those recorded are returned in the
// order of ds, zero where one was not recorded.
func (s *Store) RecordNew(ctx context.Context, ds []NewDelivery,
	disableAfter time.Duration) ([]int64, error) {
	// Two tries of one event in one batch: the first is recorded, as if it
	// had committed first (an upsert may not touch a row twice).
	index := make(map[[2]string]int, len(ds))
	unique := make([]NewDelivery, 0, len(ds))
	for _, d := range ds {
		key := [2]string{d.EventID, d.EndpointID}
		if _, dup := index[key]; !dup {
			index[key] = len(unique)
			unique = append(unique, d)
		}
	}
	rows, err := s.q.DeliveryRecordNew(ctx, s.pool, recordNewParams(unique, disableAfter))
	if err != nil {
		return nil, fmt.Errorf("record deliveries: %w", err)
	}
	recorded := make(map[[2]string]int64, len(rows))
	for _, r := range rows {
		recorded[[2]string{r.EventID, r.EndpointID}] = r.ID
	}
	ids := make([]int64, len(ds))
	for i, d := range ds {
		key := [2]string{d.EventID, d.EndpointID}
		if index[key] >= 0 {
			ids[i] = recorded[key]
			index[key] = -1 // a later duplicate gets zero
		}
	}
	return ids, nil
}

func recordNewParams(ds []NewDelivery, disableAfter time.Duration) dbgen.DeliveryRecordNewParams {
	n := len(ds)
	p := dbgen.DeliveryRecordNewParams{
		EventIds: make([]string, n), EndpointIds: make([]string, n),
		EventTypes: make([]string, n), Statuses: make([]string, n),
		Attempted: make([]bool, n), StartedAts: make([]time.Time, n),
		DurationMs: make([]int32, n), StatusCodes: make([]int32, n),
		ResponseBodies: make([]string, n), Errors: make([]string, n),
		NextAttemptAts: make([]time.Time, n), DisableAfterSecs: disableAfter.Seconds(),
	}
	for i, d := range ds {
		p.EventIds[i], p.EndpointIds[i], p.EventTypes[i] = d.EventID, d.EndpointID, d.EventType
		p.Statuses[i], p.Errors[i], p.NextAttemptAts[i] = d.Status, d.Error, d.NextAttempt
		p.StartedAts[i] = d.NextAttempt
		if a := d.Attempt; a != nil {
			p.Attempted[i], p.StartedAts[i] = true, a.StartedAt
			p.DurationMs[i] = int32(a.Duration / time.Millisecond)
			p.StatusCodes[i], p.ResponseBodies[i] = int32(a.StatusCode), a.ResponseBody
		}
	}
	return p
}
