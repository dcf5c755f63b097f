package db

import (
	"context"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
)

// Delivery statuses.
const (
	StatusPending   = "pending"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusSkipped   = "skipped"
)

// Delivery is one event's delivery to one endpoint.
type Delivery struct {
	ID             int64
	EventID        string
	EndpointID     string
	EventType      string
	Status         string
	AttemptCount   int
	NextAttemptAt  *time.Time
	LastStatusCode *int
	LastError      string
	CreatedAt      time.Time
	UpdatedAt      time.Time
	CompletedAt    *time.Time
}

// Attempt is one HTTP attempt of a delivery.
type Attempt struct {
	DeliveryID   int64
	Number       int
	StartedAt    time.Time
	Duration     time.Duration
	StatusCode   int // 0 when no response came
	ResponseBody string
	Error        string
}

// Target is what the delivery stage needs to make the next attempt of a
// delivery. Endpoint is nil when the endpoint was deleted.
type Target struct {
	DeliveryID   int64
	EventID      string
	EventType    string
	Status       string
	AttemptCount int
	NextAttempt  *time.Time
	Body         []byte
	Endpoint     *Endpoint
	// SecretErr is set when the endpoint's secrets cannot be decrypted.
	SecretErr error
}

// LoadTargets returns the targets of the deliveries ids, in one query.
func (s *Store) LoadTargets(ctx context.Context, ids []int64) (map[int64]*Target, error) {
	rows, err := s.q.DeliveryListForAttempt(ctx, s.pool, ids)
	if err != nil {
		return nil, fmt.Errorf("load deliveries: %w", err)
	}
	out := make(map[int64]*Target, len(rows))
	for _, r := range rows {
		t := targetFromRow(r)
		if t.Endpoint != nil {
			// One unreadable secret holds back its own endpoint, not the batch.
			t.Endpoint.Secrets, t.SecretErr = s.openAll(r.Secrets)
		}
		out[r.ID] = t
	}
	return out, nil
}

func targetFromRow(r dbgen.DeliveryListForAttemptRow) *Target {
	t := &Target{
		DeliveryID: r.ID, EventID: r.EventID, EventType: r.EventType, Status: r.Status,
		AttemptCount: int(r.AttemptCount), NextAttempt: r.NextAttemptAt, Body: r.Body,
	}
	if r.Url == nil {
		return t
	}
	t.Endpoint = &Endpoint{
		ID: r.EndpointID, URL: *r.Url, Headers: decodeJSON[map[string]string](r.Headers),
		SignatureScheme: deref(r.SignatureScheme), Secrets: r.Secrets,
		SecretsExpireAt: r.SecretsExpireAt, Active: deref(r.Active),
		RetryPolicy: r.RetryPolicy, Timeout: msDuration(r.TimeoutMs),
		RateLimit: intPtr(r.RateLimit),
	}
	return t
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// Result is the record of an attempt and the delivery state it leads to.
type Result struct {
	Attempt    Attempt
	EndpointID string
	// Status is the delivery's status after the attempt: pending when a
	// retry follows at NextAttempt.
	Status      string
	NextAttempt time.Time
}

// RecordResults writes a batch of attempts and their deliveries' new state
// in one round trip. Only an attempt that is its delivery's next one is
// recorded; the set of delivery ids recorded is returned. It also keeps each
// endpoint's failing streak, and disables an endpoint failing for longer
// than disableAfter (zero: never).
func (s *Store) RecordResults(ctx context.Context, results []Result,
	disableAfter time.Duration) (map[int64]bool, error) {
	p := recordParams(results)
	p.DisableAfterSecs = disableAfter.Seconds()
	ids, err := s.q.DeliveryRecordAttempts(ctx, s.pool, p)
	if err != nil {
		return nil, fmt.Errorf("record attempts: %w", err)
	}
	done := make(map[int64]bool, len(ids))
	for _, id := range ids {
		done[id] = true
	}
	return done, nil
}

func recordParams(results []Result) dbgen.DeliveryRecordAttemptsParams {
	n := len(results)
	p := dbgen.DeliveryRecordAttemptsParams{
		DeliveryIds: make([]int64, n), Numbers: make([]int32, n),
		StartedAts: make([]time.Time, n), DurationMs: make([]int32, n),
		StatusCodes: make([]int32, n), ResponseBodies: make([]string, n),
		Errors: make([]string, n), Statuses: make([]string, n),
		NextAttemptAts: make([]time.Time, n), EndpointIds: make([]string, n),
	}
	for i, r := range results {
		a := r.Attempt
		p.DeliveryIds[i], p.Numbers[i], p.StartedAts[i] = a.DeliveryID, int32(a.Number), a.StartedAt
		p.DurationMs[i] = int32(a.Duration / time.Millisecond)
		p.StatusCodes[i], p.ResponseBodies[i], p.Errors[i] = int32(a.StatusCode), a.ResponseBody, a.Error
		p.Statuses[i], p.NextAttemptAts[i] = r.Status, r.NextAttempt
		p.EndpointIds[i] = r.EndpointID
	}
	return p
}

// MarkSkipped ends pending deliveries without sending them, with the reason.
func (s *Store) MarkSkipped(ctx context.Context, ids []int64, reason string) error {
	err := s.q.DeliveryMarkSkipped(ctx, s.pool, dbgen.DeliveryMarkSkippedParams{
		Ids: ids, Reason: reason,
	})
	if err != nil {
		return fmt.Errorf("mark deliveries skipped: %w", err)
	}
	return nil
}

// GetDelivery returns one delivery, or ErrNotFound.
func (s *Store) GetDelivery(ctx context.Context, id int64) (Delivery, error) {
	row, err := s.q.DeliveryGet(ctx, s.pool, id)
	if err != nil {
		return Delivery{}, fmt.Errorf("get delivery %d: %w", id, notFound(err))
	}
	return deliveryFromRow(row), nil
}

// ListAttempts returns a delivery's attempts in order.
func (s *Store) ListAttempts(ctx context.Context, deliveryID int64) ([]Attempt, error) {
	rows, err := s.q.DeliveryAttemptListByDelivery(ctx, s.pool, deliveryID)
	if err != nil {
		return nil, fmt.Errorf("list attempts of delivery %d: %w", deliveryID, err)
	}
	out := make([]Attempt, len(rows))
	for i, r := range rows {
		out[i] = Attempt{
			DeliveryID: r.DeliveryID, Number: int(r.Number), StartedAt: r.StartedAt.UTC(),
			Duration:   time.Duration(r.DurationMs) * time.Millisecond,
			StatusCode: int(deref(r.StatusCode)), ResponseBody: r.ResponseBody, Error: r.Error,
		}
	}
	return out, nil
}

// DeliveryQuery selects a page of deliveries; empty fields do not filter.
type DeliveryQuery struct {
	EndpointID string
	EventID    string
	EventType  string
	Status     string
	Since      *time.Time // inclusive
	Until      *time.Time // exclusive
	BeforeID   int64      // the cursor: the last id of the previous page
	Limit      int
}

// windowProbeRows is how many deliveries below the cursor a time-window list
// looks through first; see DeliveryListWindowProbe.
const windowProbeRows = 1000

// ListDeliveries returns a page of deliveries, newest first.
//
// Each filter has an index that follows the list order (migrations 0001 and
// 0003), and the pool plans each query for the filters given
// (plan_cache_mode), so a page reads about as many rows as it returns.
// A time window is the exception: its rows are newest first by id but found
// by created_at. It is looked for among the next rows below the cursor
// first, which answers a recent window or a later page at once, and
// otherwise inside the id range of the window's rows.
func (s *Store) ListDeliveries(ctx context.Context, q DeliveryQuery) ([]Delivery, error) {
	var rows []dbgen.Delivery
	var err error
	switch {
	case (q.Since == nil && q.Until == nil) || q.EventID != "":
		// An event has a few deliveries: its filter is selective enough.
		rows, err = s.q.DeliveryList(ctx, s.pool, dbgen.DeliveryListParams{
			EndpointID: optString(q.EndpointID), EventID: optString(q.EventID),
			EventType: optString(q.EventType), Status: optString(q.Status),
			Since: q.Since, Until: q.Until, BeforeID: optInt64(q.BeforeID),
			MaxRows: int32(q.Limit),
		})
	default:
		rows, err = s.q.DeliveryListWindowProbe(ctx, s.pool, dbgen.DeliveryListWindowProbeParams{
			EndpointID: optString(q.EndpointID), EventType: optString(q.EventType),
			Status: optString(q.Status), BeforeID: optInt64(q.BeforeID),
			ProbeRows: windowProbeRows, Since: q.Since, Until: q.Until, MaxRows: int32(q.Limit),
		})
		if err == nil && len(rows) < q.Limit {
			rows, err = s.q.DeliveryListWindow(ctx, s.pool, dbgen.DeliveryListWindowParams{
				EndpointID: optString(q.EndpointID), EventType: optString(q.EventType),
				Status: optString(q.Status), Since: q.Since, Until: q.Until,
				BeforeID: optInt64(q.BeforeID), MaxRows: int32(q.Limit),
			})
		}
	}
	if err != nil {
		return nil, fmt.Errorf("list deliveries: %w", err)
	}
	out := make([]Delivery, len(rows))
	for i, r := range rows {
		out[i] = deliveryFromRow(r)
	}
	return out, nil
}

func deliveryFromRow(r dbgen.Delivery) Delivery {
	return Delivery{
		ID: r.ID, EventID: r.EventID, EndpointID: r.EndpointID, EventType: r.EventType,
		Status: r.Status, AttemptCount: int(r.AttemptCount),
		NextAttemptAt: utcPtr(r.NextAttemptAt), LastStatusCode: intPtr(r.LastStatusCode),
		LastError: r.LastError, CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
		CompletedAt: utcPtr(r.CompletedAt),
	}
}
