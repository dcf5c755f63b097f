package api

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/go-chi/chi/v5"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/event"
)

// endpointRequest is the body of POST /v1/endpoints. Pointers tell an
// absent field from a zero one.
type endpointRequest struct {
	URL             *string           `json:"url"`
	Description     string            `json:"description"`
	EventTypes      []string          `json:"event_types"`
	Filters         *db.Filters       `json:"filters"`
	Headers         map[string]string `json:"headers"`
	SignatureScheme string            `json:"signature_scheme"`
	Secret          *string           `json:"secret"`
	Active          *bool             `json:"active"`
	RetryPolicy     json.RawMessage   `json:"retry_policy"`
	Timeout         *string           `json:"timeout"`
	RateLimit       *int              `json:"rate_limit"`
}

// endpointJSON is an endpoint as the API shows it.
type endpointJSON struct {
	ID              string            `json:"id"`
	URL             string            `json:"url"`
	Description     string            `json:"description"`
	EventTypes      []string          `json:"event_types"`
	Filters         db.Filters        `json:"filters"`
	Headers         map[string]string `json:"headers"`
	SignatureScheme string            `json:"signature_scheme"`
	Secret          string            `json:"secret,omitempty"`
	Active          bool              `json:"active"`
	DisabledReason  *string           `json:"disabled_reason"`
	RetryPolicy     json.RawMessage   `json:"retry_policy"`
	Timeout         *string           `json:"timeout"`
	RateLimit       *int              `json:"rate_limit"`
	CreatedAt       string            `json:"created_at"`
	UpdatedAt       string            `json:"updated_at"`
}

func (s *server) createEndpoint(w http.ResponseWriter, r *http.Request) error {
	var req endpointRequest
	if err := decodeBody(w, r, &req); err != nil {
		return err
	}
	e, err := s.buildEndpoint(&req)
	if err != nil {
		return err
	}
	e.ID = newEndpointID()
	e.DisabledReason = disabledReason(db.Endpoint{Active: true}, e)
	created, err := s.store.CreateEndpoint(r.Context(), e)
	if err != nil {
		return err
	}
	out := endpointOut(created)
	out.Secret = created.Secrets[0]
	w.Header().Set("Location", "/v1/endpoints/"+created.ID)
	writeJSON(w, http.StatusCreated, out)
	return nil
}

func (s *server) getEndpoint(w http.ResponseWriter, r *http.Request) error {
	id := chi.URLParam(r, "id")
	if len(id) > maxIDBytes || !safeText(id) {
		return notFound("endpoint", id)
	}
	e, err := s.store.GetEndpoint(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return notFound("endpoint", id)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, endpointOut(e))
	return nil
}

func (s *server) listEndpoints(w http.ResponseWriter, r *http.Request) error {
	q, limit, err := endpointQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	rows, err := s.store.ListEndpoints(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, endpointOut, endpointCursor))
	return nil
}

func endpointQuery(raw string) (db.EndpointQuery, int, error) {
	var q db.EndpointQuery
	v, err := listParams(raw, "active", "event_type", "limit", "cursor")
	if err != nil {
		return q, 0, err
	}
	limit, err := parseLimit(v)
	if err != nil {
		return q, 0, err
	}
	if q.Active, err = parseBool(v, "active"); err != nil {
		return q, 0, err
	}
	if q.EventType = v.Get("event_type"); q.EventType != "" && event.ValidateType(q.EventType) != nil {
		return q, 0, badRequest("event_type", "must be an event type such as message.sent")
	}
	if q.After, err = parseEndpointCursor(v.Get("cursor")); err != nil {
		return q, 0, err
	}
	q.Limit = limit + 1
	return q, limit, nil
}

func endpointCursor(e db.Endpoint) string {
	raw, _ := json.Marshal(db.EndpointCursor{CreatedAt: e.CreatedAt, ID: e.ID})
	return encodeCursor(raw)
}

func parseEndpointCursor(s string) (*db.EndpointCursor, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := decodeCursor(s)
	if err != nil {
		return nil, err
	}
	var c db.EndpointCursor
	if json.Unmarshal(raw, &c) != nil || c.CreatedAt.IsZero() || c.ID == "" ||
		len(c.ID) > maxIDBytes || !safeText(c.ID) {
		return nil, errBadCursor
	}
	return &c, nil
}

// endpointOut shows an endpoint without its secret.
func endpointOut(e db.Endpoint) endpointJSON {
	out := endpointJSON{
		ID: e.ID, URL: e.URL, Description: e.Description, EventTypes: nonNil(e.EventTypes),
		Filters: db.Filters{
			ProviderID: nonNil(e.Filters.ProviderID), ChannelID: nonNil(e.Filters.ChannelID),
			TemplateID: nonNil(e.Filters.TemplateID),
		},
		Headers: e.Headers, SignatureScheme: e.SignatureScheme, Active: e.Active,
		DisabledReason: nonEmpty(e.DisabledReason), RetryPolicy: e.RetryPolicy,
		RateLimit: e.RateLimit, CreatedAt: formatTime(e.CreatedAt),
		UpdatedAt: formatTime(e.UpdatedAt),
	}
	if out.Headers == nil {
		out.Headers = map[string]string{}
	}
	if len(out.RetryPolicy) == 0 {
		out.RetryPolicy = nil
	}
	if e.Timeout > 0 {
		out.Timeout = nonEmpty(e.Timeout.String())
	}
	return out
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// newEndpointID returns "ep_" and 32 random hex digits.
func newEndpointID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // never fails: crypto/rand panics instead
	return "ep_" + hex.EncodeToString(b[:])
}
