package db

import (
	"context"
	"fmt"
	"strings"
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

// Claim records a batch of events and returns the endpoints each is to go
// to (once for an id given more than once): one statement for the batch,
// and a second only for events recorded before (see the EventClaim and
// EventClaimKnown queries). An event being recorded by a transaction still
// running elsewhere counts as recorded before.
func (s *Store) Claim(ctx context.Context, events []*event.Event) ([]Claimed, error) {
	f := columnsOf(firstOfEachID(events))
	rows, err := s.q.EventClaim(ctx, s.claims, dbgen.EventClaimParams{
		Ids: f.ids, Types: f.types, OccurredAts: f.occurredAts, ProviderIds: f.providerIDs,
		ChannelIds: f.channelIDs, TemplateIds: f.templateIDs, MessageIds: f.messageIDs,
		OrganizationIds: f.organizationIDs, Bodies: f.bodies, Patterns: f.patterns,
	})
	if err != nil {
		return nil, fmt.Errorf("record events: %w", err)
	}
	fresh := make(map[string]bool, len(events))
	out := make([]Claimed, 0, len(rows))
	for _, r := range rows {
		fresh[r.EventID] = true
		if r.EndpointID != nil {
			out = append(out, Claimed{EventID: r.EventID, Fresh: true, EndpointID: *r.EndpointID,
				EndpointUpdatedAt: deref(r.EndpointUpdatedAt), EndpointActive: deref(r.EndpointActive)})
		}
	}
	var known, types, patterns []string
	for i, id := range f.ids {
		if !fresh[id] {
			known, types = append(known, id), append(types, f.types[i])
			patterns = append(patterns, f.patterns[i])
		}
	}
	if len(known) == 0 {
		return out, nil
	}
	krows, err := s.q.EventClaimKnown(ctx, s.pool, dbgen.EventClaimKnownParams{
		Ids: known, Types: types, Patterns: patterns,
	})
	if err != nil {
		return nil, fmt.Errorf("load deliveries of events recorded before: %w", err)
	}
	for _, r := range krows {
		c := Claimed{EventID: r.EventID, EndpointID: r.EndpointID,
			EndpointUpdatedAt: r.EndpointUpdatedAt, EndpointActive: r.EndpointActive}
		if r.DeliveryID != nil {
			c.Delivery = &ClaimedDelivery{
				ID: *r.DeliveryID, Status: deref(r.Status),
				AttemptCount: int(deref(r.AttemptCount)), NextAttempt: r.NextAttemptAt,
			}
		}
		out = append(out, c)
	}
	return out, nil
}

// firstOfEachID drops the events that repeat an id seen before in events.
func firstOfEachID(events []*event.Event) []*event.Event {
	seen := make(map[string]bool, len(events))
	out := make([]*event.Event, 0, len(events))
	for _, ev := range events {
		if !seen[ev.ID] {
			seen[ev.ID] = true
			out = append(out, ev)
		}
	}
	return out
}

// eventColumns are a batch of events as the claim's array parameters.
type eventColumns struct {
	ids, types, providerIDs, channelIDs, templateIDs, messageIDs, organizationIDs []string
	occurredAts                                                                   []time.Time
	bodies                                                                        [][]byte
	// patterns are the subscription patterns matching each type, joined
	// by spaces.
	patterns []string
}

func columnsOf(events []*event.Event) eventColumns {
	n := len(events)
	c := eventColumns{
		ids: make([]string, n), types: make([]string, n), occurredAts: make([]time.Time, n),
		providerIDs: make([]string, n), channelIDs: make([]string, n),
		templateIDs: make([]string, n), messageIDs: make([]string, n),
		organizationIDs: make([]string, n), bodies: make([][]byte, n),
		patterns: make([]string, n),
	}
	for i, ev := range events {
		c.ids[i], c.types[i], c.occurredAts[i] = ev.ID, ev.Type, ev.Timestamp
		md := ev.Metadata
		c.providerIDs[i], c.channelIDs[i], c.templateIDs[i] = md.ProviderID, md.ChannelID, md.TemplateID
		c.messageIDs[i], c.organizationIDs[i] = md.MessageID, md.OrganizationID
		c.bodies[i] = ev.Raw
		c.patterns[i] = strings.Join(event.Patterns(ev.Type), " ")
	}
	return c
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
	// NextAttempt is when the next attempt is due, for a pending delivery;
	// zero when it is due now.
	NextAttempt time.Time
	// Error is the delivery's last_error: the attempt's error, or why it
	// was skipped.
	Error string
	// Known is set when the event was recorded before the claim that gave
	// this delivery (Claimed.Fresh unset): it is then recorded only if the
	// event still exists, under a lock that retention waits for.
	Known bool
}

// RecordNew writes new deliveries and their first attempts in one round
// trip, and keeps endpoint health as RecordResults does. A delivery that
// already exists is left alone, unless it is pending with no attempt and ds
// brings its first attempt, and so is a Known one whose event is gone; the
// ids of those recorded are returned in the order of ds, zero where one was
// not recorded.
func (s *Store) RecordNew(ctx context.Context, ds []NewDelivery,
	disableAfter time.Duration) ([]int64, error) {
	// Two tries of one event in one batch: an upsert may not touch a row
	// twice, so one row per delivery is written, the one the rows would
	// have left in order: the first, or a first attempt following a
	// pending row without one.
	winner := make(map[[2]string]int, len(ds)) // key → index in ds
	var keys [][2]string
	for i, d := range ds {
		key := [2]string{d.EventID, d.EndpointID}
		w, dup := winner[key]
		switch {
		case !dup:
			winner[key] = i
			keys = append(keys, key)
		case ds[w].Attempt == nil && ds[w].Status == StatusPending && d.Attempt != nil:
			winner[key] = i
		}
	}
	unique := make([]NewDelivery, len(keys))
	for j, key := range keys {
		unique[j] = ds[winner[key]]
	}
	rows, err := s.q.DeliveryRecordNew(ctx, s.batch, recordNewParams(unique, disableAfter))
	if err != nil {
		return nil, fmt.Errorf("record deliveries: %w", err)
	}
	ids := make([]int64, len(ds))
	for _, r := range rows {
		ids[winner[[2]string{r.EventID, r.EndpointID}]] = r.ID
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
		NextAttemptAts: make([]time.Time, n), Known: make([]bool, n),
		DisableAfterSecs: disableAfter.Seconds(),
	}
	for i, d := range ds {
		p.EventIds[i], p.EndpointIds[i], p.EventTypes[i] = d.EventID, d.EndpointID, d.EventType
		p.Statuses[i], p.Errors[i], p.NextAttemptAts[i] = d.Status, d.Error, d.NextAttempt
		p.Known[i] = d.Known
		p.StartedAts[i] = d.NextAttempt
		if a := d.Attempt; a != nil {
			p.Attempted[i], p.StartedAts[i] = true, a.StartedAt
			p.DurationMs[i] = int32(a.Duration / time.Millisecond)
			p.StatusCodes[i], p.ResponseBodies[i] = int32(a.StatusCode), a.ResponseBody
		}
	}
	return p
}
