package db

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
	"github.com/hookrelay/hookrelay/internal/event"
)

// Filters limit an endpoint to events whose metadata has a listed value. An
// empty list is no filter; an event without the metadata key never matches a
// non-empty list.
type Filters struct {
	ProviderID []string `json:"provider_id"`
	ChannelID  []string `json:"channel_id"`
	TemplateID []string `json:"template_id"`
}

// Endpoint is a webhook endpoint and what it subscribes to.
type Endpoint struct {
	ID              string
	URL             string
	Description     string
	EventTypes      []string
	Filters         Filters
	Headers         map[string]string
	SignatureScheme string
	// Secrets sign requests: the first is the current one, the rest are
	// rotated-out secrets still valid until SecretsExpireAt.
	Secrets         []string
	SecretsExpireAt *time.Time
	Active          bool
	DisabledReason  string
	RetryPolicy     json.RawMessage
	// Timeout overrides the request timeout when non-zero.
	Timeout   time.Duration
	RateLimit *int
	CreatedAt time.Time
	UpdatedAt time.Time
}

// CreateEndpoint inserts e and returns it as stored.
func (s *Store) CreateEndpoint(ctx context.Context, e Endpoint) (Endpoint, error) {
	headers, err := jsonOf(nonNilMap(e.Headers))
	if err != nil {
		return Endpoint{}, fmt.Errorf("create endpoint: %w", err)
	}
	row, err := s.q.EndpointInsert(ctx, s.pool, dbgen.EndpointInsertParams{
		ID: e.ID, Url: e.URL, Description: e.Description, EventTypes: e.EventTypes,
		FilterProviderIds: nonNil(e.Filters.ProviderID),
		FilterChannelIds:  nonNil(e.Filters.ChannelID),
		FilterTemplateIds: nonNil(e.Filters.TemplateID),
		Headers:           headers, SignatureScheme: e.SignatureScheme, Secrets: s.sealAll(e.Secrets),
		Active: e.Active, DisabledReason: e.DisabledReason, RetryPolicy: e.RetryPolicy,
		TimeoutMs: timeoutMs(e.Timeout), RateLimit: int32Ptr(e.RateLimit),
	})
	if err != nil {
		return Endpoint{}, fmt.Errorf("create endpoint: %w", err)
	}
	return s.endpoint(row)
}

// GetEndpoint returns the endpoint with id, or ErrNotFound.
func (s *Store) GetEndpoint(ctx context.Context, id string) (Endpoint, error) {
	row, err := s.q.EndpointGet(ctx, s.pool, id)
	if err != nil {
		return Endpoint{}, fmt.Errorf("get endpoint %s: %w", id, notFound(err))
	}
	return s.endpoint(row)
}

// EndpointCursor is the position after the last endpoint of a page.
type EndpointCursor struct {
	CreatedAt time.Time `json:"t"`
	ID        string    `json:"id"`
}

// EndpointQuery selects a page of endpoints.
type EndpointQuery struct {
	Active *bool
	// EventType keeps the endpoints that receive events of this type.
	EventType string
	After     *EndpointCursor
	Limit     int
}

// ListEndpoints returns a page of endpoints, newest first.
func (s *Store) ListEndpoints(ctx context.Context, q EndpointQuery) ([]Endpoint, error) {
	p := dbgen.EndpointListParams{Active: q.Active, MaxRows: int32(q.Limit)}
	if q.EventType != "" {
		p.Patterns = event.Patterns(q.EventType)
	}
	if q.After != nil {
		p.CursorCreatedAt, p.CursorID = &q.After.CreatedAt, q.After.ID
	}
	rows, err := s.q.EndpointList(ctx, s.pool, p)
	if err != nil {
		return nil, fmt.Errorf("list endpoints: %w", err)
	}
	out := make([]Endpoint, len(rows))
	for i, r := range rows {
		if out[i], err = s.endpoint(r); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// DisableEndpoint marks an endpoint inactive with the reason.
func (s *Store) DisableEndpoint(ctx context.Context, id, reason string) error {
	if err := s.q.EndpointDisable(ctx, s.pool, dbgen.EndpointDisableParams{
		ID: id, Reason: reason,
	}); err != nil {
		return fmt.Errorf("disable endpoint %s: %w", id, err)
	}
	return nil
}

// endpoint converts a row, decrypting its secrets.
func (s *Store) endpoint(r dbgen.Endpoint) (Endpoint, error) {
	secrets, err := s.openAll(r.Secrets)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %s: %w", r.ID, err)
	}
	e := endpointFromRow(r)
	e.Secrets = secrets
	return e, nil
}

func endpointFromRow(r dbgen.Endpoint) Endpoint {
	return Endpoint{
		ID: r.ID, URL: r.Url, Description: r.Description, EventTypes: r.EventTypes,
		Filters: Filters{
			ProviderID: r.FilterProviderIds, ChannelID: r.FilterChannelIds,
			TemplateID: r.FilterTemplateIds,
		},
		Headers:         decodeJSON[map[string]string](r.Headers),
		SignatureScheme: r.SignatureScheme, Secrets: r.Secrets,
		SecretsExpireAt: utcPtr(r.SecretsExpireAt), Active: r.Active,
		DisabledReason: r.DisabledReason, RetryPolicy: r.RetryPolicy,
		Timeout:   msDuration(r.TimeoutMs),
		RateLimit: intPtr(r.RateLimit),
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func timeoutMs(d time.Duration) *int32 {
	if d <= 0 {
		return nil
	}
	ms := int32(d / time.Millisecond)
	return &ms
}

func msDuration(ms *int32) time.Duration {
	if ms == nil {
		return 0
	}
	return time.Duration(*ms) * time.Millisecond
}

func int32Ptr(v *int) *int32 {
	if v == nil {
		return nil
	}
	x := int32(*v)
	return &x
}

func intPtr(v *int32) *int {
	if v == nil {
		return nil
	}
	x := int(*v)
	return &x
}

func utcPtr(t *time.Time) *time.Time {
	if t == nil {
		return nil
	}
	u := t.UTC()
	return &u
}

func jsonOf(v any) (json.RawMessage, error) {
	return json.Marshal(v)
}
