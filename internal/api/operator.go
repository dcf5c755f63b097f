package api

import (
	"bytes"
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
)

var (
	errNoOperator = &apiError{status: http.StatusServiceUnavailable, code: codeNotReady,
		message: "the delivery pipeline is not running in this process"}
	errSucceeded = conflict("the delivery succeeded; it is not sent again")
)

// endpointByID loads the endpoint named in the path, or a 404.
func (s *server) endpointByID(r *http.Request) (db.Endpoint, error) {
	id := chi.URLParam(r, "id")
	if len(id) > maxIDBytes || !safeText(id) {
		return db.Endpoint{}, notFound("endpoint", id)
	}
	e, err := s.store.GetEndpoint(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return db.Endpoint{}, notFound("endpoint", id)
	}
	return e, err
}

// patchEndpoint changes the fields given and keeps the rest. The URL is
// validated again; "active": true enables a disabled endpoint.
func (s *server) patchEndpoint(w http.ResponseWriter, r *http.Request) error {
	old, err := s.endpointByID(r)
	if err != nil {
		return err
	}
	req := requestOf(old)
	if err := decodePatch(w, r, &req); err != nil {
		return err
	}
	// A retry policy the patch left as it was is not checked again: one
	// stored by an older version, which matched its names without regard
	// to case, would refuse every patch of the endpoint.
	samePolicy := bytes.Equal(req.RetryPolicy, old.RetryPolicy)
	if samePolicy {
		req.RetryPolicy = nil
	}
	e, err := s.buildEndpoint(&req)
	if err != nil {
		return schemeNeedsSecret(old, req, err)
	}
	if samePolicy {
		e.RetryPolicy = old.RetryPolicy
	}
	e.ID = old.ID
	keepSecrets(old, &e)
	e.DisabledReason = disabledReason(old, e)
	updated, err := s.store.UpdateEndpoint(r.Context(), e)
	if errors.Is(err, db.ErrNotFound) {
		return notFound("endpoint", old.ID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, endpointOut(updated))
	return nil
}

// notNullable are the fields of a patch that null cannot reset: decoded
// into the request, null would set them to their defaults (enable an
// endpoint, generate a secret…). For retry_policy, timeout and rate_limit,
// null removes the endpoint's override.
var notNullable = []string{
	"url", "description", "event_types", "filters", "headers", "signature_scheme",
	"secret", "active",
}

// decodePatch reads a patch over req, refusing null for the fields of
// notNullable.
func decodePatch(w http.ResponseWriter, r *http.Request, req *endpointRequest) error {
	var fields map[string]json.RawMessage
	if err := decodeBody(w, r, &fields); err != nil {
		return err
	}
	if name, ok := nullField(fields); ok {
		return badRequest(name, "must not be null")
	}
	// A field given replaces the endpoint's: decoded over the stored value,
	// a map or an object would be merged into it (headers kept that the
	// patch left out).
	clearFields(req, fields)
	return decodeFields(fields, req)
}

// nullField returns the field of notNullable that fields set to null.
func nullField(fields map[string]json.RawMessage) (string, bool) {
	for _, name := range notNullable {
		if v, ok := fields[name]; ok && string(bytes.TrimSpace(v)) == "null" {
			return name, true
		}
	}
	return "", false
}

// requestOf is the request that would create e, so that decoding a patch
// over it changes only the fields the patch names.
func requestOf(e db.Endpoint) endpointRequest {
	// Values of their own: a patch decoded over the request must not write
	// into the stored endpoint it is compared with (e.Secrets shares its
	// array with the caller's endpoint).
	secret := e.Secrets[0]
	req := endpointRequest{
		URL: &e.URL, Description: e.Description, EventTypes: e.EventTypes,
		Filters: &e.Filters, Headers: e.Headers, SignatureScheme: e.SignatureScheme,
		Secret: &secret, Active: &e.Active, RetryPolicy: e.RetryPolicy,
		RateLimit: e.RateLimit,
	}
	if e.Timeout > 0 {
		t := e.Timeout.String()
		req.Timeout = &t
	}
	return req
}

// schemeNeedsSecret names signature_scheme, rather than the secret the
// patch did not touch, when a patch changed the scheme and the endpoint's
// secret does not fit the new one.
func schemeNeedsSecret(old db.Endpoint, req endpointRequest, err error) error {
	var ae *apiError
	scheme := cmp.Or(req.SignatureScheme, string(dispatch.SchemeStandard))
	if errors.As(err, &ae) && ae.field == "secret" && *req.Secret == old.Secrets[0] &&
		scheme != old.SignatureScheme {
		return invalidField("signature_scheme", "the endpoint's secret is not a %s secret: "+
			"give a new \"secret\" with the scheme", scheme)
	}
	return err
}

// keepSecrets keeps rotated-out secrets in their grace period when the
// patch left the current secret alone.
func keepSecrets(old db.Endpoint, e *db.Endpoint) {
	if e.Secrets[0] == old.Secrets[0] {
		e.Secrets, e.SecretsExpireAt = old.Secrets, old.SecretsExpireAt
	}
}

func disabledReason(old, e db.Endpoint) string {
	switch {
	case e.Active:
		return ""
	case old.Active:
		return "disabled through the API"
	default:
		return old.DisabledReason
	}
}

// deleteEndpoint removes an endpoint; its pending deliveries end as skipped.
func (s *server) deleteEndpoint(w http.ResponseWriter, r *http.Request) error {
	e, err := s.endpointByID(r)
	if err != nil {
		return err
	}
	stopped, err := s.store.DeleteEndpoint(r.Context(), e.ID)
	if errors.Is(err, db.ErrNotFound) {
		return notFound("endpoint", e.ID)
	}
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id": e.ID, "deleted": true, "skipped_deliveries": stopped,
	})
	return nil
}

// rotateSecret answers the endpoint with its new secret. The previous one
// keeps signing, alongside it, until the grace period ends.
func (s *server) rotateSecret(w http.ResponseWriter, r *http.Request) error {
	e, err := s.endpointByID(r)
	if err != nil {
		return err
	}
	secret, err := dispatch.GenerateSecret() // a whsec_ secret suits both schemes
	if err != nil {
		return err
	}
	rotated, err := s.store.RotateSecret(r.Context(), e.ID, secret, s.grace)
	if err != nil {
		return err
	}
	out := endpointOut(rotated)
	out.Secret = secret
	writeJSON(w, http.StatusOK, rotatedJSON{out, formatTimePtr(rotated.SecretsExpireAt)})
	return nil
}

type rotatedJSON struct {
	endpointJSON
	PreviousSecretExpiresAt *string `json:"previous_secret_expires_at"`
}

type recoverRequest struct {
	Since *string `json:"since"`
}

// recoverEndpoint requeues the endpoint's failed deliveries since a time.
func (s *server) recoverEndpoint(w http.ResponseWriter, r *http.Request) error {
	if s.operator == nil {
		return errNoOperator
	}
	e, err := s.endpointByID(r)
	if err != nil {
		return err
	}
	since, err := recoverSince(w, r)
	if err != nil {
		return err
	}
	if !e.Active {
		return endpointDisabled(e.ID)
	}
	due, err := s.store.RequeueFailed(r.Context(), e.ID, since)
	if err != nil {
		return err
	}
	if err := s.requeue(r, due); err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, map[string]any{"requeued": len(due)})
	return nil
}

func recoverSince(w http.ResponseWriter, r *http.Request) (time.Time, error) {
	var req recoverRequest
	if err := decodeBody(w, r, &req); err != nil {
		return time.Time{}, err
	}
	return requiredTime("since", req.Since)
}

// requeue publishes the tasks of deliveries made due again.
func (s *server) requeue(r *http.Request, due []db.Due) error {
	if err := s.operator.Requeue(r.Context(), due); err != nil {
		return &pipelineError{op: "requeue", err: err}
	}
	return nil
}

// endpointDisabled refuses to requeue deliveries that would only end as
// skipped.
func endpointDisabled(id string) *apiError {
	return conflict(`endpoint %s is disabled: enable it with PATCH {"active": true} first`, id)
}

func requiredTime(field string, v *string) (time.Time, error) {
	if v == nil || *v == "" {
		return time.Time{}, invalidField(field, "is required (RFC 3339)")
	}
	t, err := time.Parse(time.RFC3339Nano, *v)
	if err != nil {
		return time.Time{}, invalidField(field, "must be an RFC 3339 time")
	}
	return t, nil
}

// probeEndpoint sends one signed system.maintenance event now and answers
// what came back; nothing is retried or recorded.
func (s *server) probeEndpoint(w http.ResponseWriter, r *http.Request) error {
	if s.operator == nil {
		return errNoOperator
	}
	e, err := s.endpointByID(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, s.operator.Probe(r.Context(), e))
	return nil
}

// retryDelivery requeues one delivery now, also a failed one. One that
// succeeded, or whose endpoint is disabled or deleted, answers 409.
func (s *server) retryDelivery(w http.ResponseWriter, r *http.Request) error {
	if s.operator == nil {
		return errNoOperator
	}
	raw := chi.URLParam(r, "id")
	id, ok := parseDeliveryID(raw)
	if !ok {
		return notFound("delivery", raw)
	}
	if err := s.checkRetry(r, raw, id); err != nil {
		return err
	}
	due, err := s.store.RequeueDelivery(r.Context(), id)
	if err := retryError(err, raw); err != nil {
		return err
	}
	if err := s.requeue(r, []db.Due{due}); err != nil {
		return err
	}
	d, err := s.store.GetDelivery(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, deliveryOut(d))
	return nil
}

// checkRetry refuses a delivery that is not there, that succeeded, or that
// would only end as skipped because its endpoint is disabled or deleted.
func (s *server) checkRetry(r *http.Request, raw string, id int64) error {
	d, err := s.store.GetDelivery(r.Context(), id)
	if err != nil {
		return retryError(err, raw)
	}
	if d.Status == db.StatusSucceeded {
		return errSucceeded
	}
	e, err := s.store.GetEndpoint(r.Context(), d.EndpointID)
	switch {
	case errors.Is(err, db.ErrNotFound):
		return conflict("endpoint %s was deleted; its deliveries are not sent again",
			d.EndpointID)
	case err != nil:
		return err
	case !e.Active:
		return endpointDisabled(e.ID)
	}
	return nil
}

// retryError is the answer to a store error about the delivery raw.
func retryError(err error, raw string) error {
	switch {
	case errors.Is(err, db.ErrNotFound):
		return notFound("delivery", raw)
	case errors.Is(err, db.ErrSucceeded):
		return errSucceeded
	}
	return err
}
