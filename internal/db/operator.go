package db

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
)

// ErrSucceeded is returned when asked to requeue a delivery that succeeded.
var ErrSucceeded = errors.New("delivery already succeeded")

// UpdateEndpoint replaces every field of the endpoint e.ID with e's. Making
// an endpoint active clears its record of failing.
func (s *Store) UpdateEndpoint(ctx context.Context, e Endpoint) (Endpoint, error) {
	headers, err := jsonOf(nonNilMap(e.Headers))
	if err != nil {
		return Endpoint{}, fmt.Errorf("update endpoint %s: %w", e.ID, err)
	}
	row, err := s.q.EndpointUpdate(ctx, s.pool, dbgen.EndpointUpdateParams{
		ID: e.ID, Url: e.URL, Description: e.Description, EventTypes: e.EventTypes,
		FilterProviderIds: nonNil(e.Filters.ProviderID),
		FilterChannelIds:  nonNil(e.Filters.ChannelID),
		FilterTemplateIds: nonNil(e.Filters.TemplateID),
		Headers:           headers, SignatureScheme: e.SignatureScheme, Secrets: s.sealAll(e.Secrets),
		SecretsExpireAt: e.SecretsExpireAt, Active: e.Active, DisabledReason: e.DisabledReason,
		RetryPolicy: e.RetryPolicy, TimeoutMs: timeoutMs(e.Timeout),
		RateLimit: int32Ptr(e.RateLimit),
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("update endpoint %s: %w", e.ID, notFound(err))
	}
	return s.endpoint(row)
}

// RotateSecret makes secret the endpoint's signing secret; the previous one
// keeps signing alongside it for grace.
func (s *Store) RotateSecret(ctx context.Context, id, secret string, grace time.Duration) (Endpoint, error) {
	row, err := s.q.EndpointRotateSecret(ctx, s.pool, dbgen.EndpointRotateSecretParams{
		ID: id, Secret: s.sealAll([]string{secret})[0], GraceSeconds: grace.Seconds(),
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("rotate secret of endpoint %s: %w", id, notFound(err))
	}
	return s.endpoint(row)
}

// DeleteEndpoint removes an endpoint and ends its pending deliveries as
// skipped, so they are recorded rather than dropped. It returns how many
// deliveries it stopped.
func (s *Store) DeleteEndpoint(ctx context.Context, id string) (int64, error) {
	var stopped int64
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		if _, err := s.q.EndpointDelete(ctx, tx, id); err != nil {
			return notFound(err)
		}
		var err error
		stopped, err = s.q.DeliverySkipPendingByEndpoint(ctx, tx,
			dbgen.DeliverySkipPendingByEndpointParams{EndpointID: id, Reason: "endpoint deleted"})
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete endpoint %s: %w", id, err)
	}
	return stopped, nil
}

// Due is a delivery made due again, with the number of its next attempt.
type Due struct {
	DeliveryID  int64
	NextAttempt int
}

// RequeueDelivery makes a delivery that has not succeeded due now. It
// returns ErrNotFound, or ErrSucceeded for a delivery that succeeded.
func (s *Store) RequeueDelivery(ctx context.Context, id int64) (Due, error) {
	row, err := s.q.DeliveryRequeue(ctx, s.pool, id)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, gerr := s.GetDelivery(ctx, id); gerr != nil {
			return Due{}, gerr
		}
		return Due{}, fmt.Errorf("requeue delivery %d: %w", id, ErrSucceeded)
	}
	if err != nil {
		return Due{}, fmt.Errorf("requeue delivery %d: %w", id, err)
	}
	return Due{DeliveryID: row.ID, NextAttempt: int(row.AttemptCount) + 1}, nil
}

// RequeueFailed makes the deliveries of an endpoint created since a time
// that failed, or were skipped while it was disabled, due now.
func (s *Store) RequeueFailed(ctx context.Context, endpointID string, since time.Time) ([]Due, error) {
	rows, err := s.q.DeliveryRequeueFailedByEndpoint(ctx, s.pool,
		dbgen.DeliveryRequeueFailedByEndpointParams{EndpointID: endpointID, Since: since})
	if err != nil {
		return nil, fmt.Errorf("requeue failed deliveries of %s: %w", endpointID, err)
	}
	out := make([]Due, len(rows))
	for i, r := range rows {
		out[i] = Due{DeliveryID: r.ID, NextAttempt: int(r.AttemptCount) + 1}
	}
	return out, nil
}
