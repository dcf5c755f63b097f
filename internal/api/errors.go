package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"go.uber.org/zap"
)

// Error codes of the error body.
const (
	codeInvalidRequest   = "invalid_request"
	codeInvalidField     = "invalid_field"
	codeUnauthorized     = "unauthorized"
	codeNotFound         = "not_found"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "payload_too_large"
	codeNotReady         = "not_ready"
	codeInternal         = "internal"
)

// apiError is an error the client is told about.
type apiError struct {
	status  int
	code    string
	field   string
	message string
}

func (e *apiError) Error() string { return e.message }

var (
	errUnauthorized = &apiError{status: http.StatusUnauthorized, code: codeUnauthorized,
		message: "a valid bearer token is required"}
	errRouteNotFound = &apiError{status: http.StatusNotFound, code: codeNotFound,
		message: "no such route"}
	errMethodNotAllowed = &apiError{status: http.StatusMethodNotAllowed,
		code: codeMethodNotAllowed, message: "method not allowed on this route"}
	errTooLarge = &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
		message: fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes)}
	errInternal = &apiError{status: http.StatusInternalServerError, code: codeInternal,
		message: "internal error"}
)

// badRequest is a 400 about a field (or the body when field is empty)
// that cannot be read at all.
func badRequest(field, format string, args ...any) *apiError {
	return fieldError(http.StatusBadRequest, codeInvalidRequest, field, format, args...)
}

// invalidField is a 422 about a well-formed value that is not acceptable.
func invalidField(field, format string, args ...any) *apiError {
	return fieldError(http.StatusUnprocessableEntity, codeInvalidField, field, format, args...)
}

func fieldError(status int, code, field, format string, args ...any) *apiError {
	msg := fmt.Sprintf(format, args...)
	if field != "" {
		msg = field + ": " + msg
	}
	return &apiError{status: status, code: code, field: field, message: msg}
}

func notFound(what, id string) *apiError {
	return &apiError{status: http.StatusNotFound, code: codeNotFound,
		message: fmt.Sprintf("%s %q not found", what, truncate(id, 80))}
}

type errorJSON struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

func errorBody(e *apiError) map[string]errorJSON {
	return map[string]errorJSON{"error": {Code: e.code, Message: e.message, Field: e.field}}
}

// writeError answers with err when it is an apiError, and with a bare 500
// otherwise, logging the cause without showing it to the client.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		s.logFailure(r, err)
		ae = errInternal
	}
	writeJSON(w, ae.status, errorBody(ae))
}

func (s *server) logFailure(r *http.Request, err error) {
	fields := []zap.Field{
		zap.String("method", r.Method), zap.String("path", r.URL.Path), zap.Error(err),
	}
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		s.log.Debug("api request canceled by the client", fields...)
		return
	}
	s.log.Error("api request failed", fields...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
