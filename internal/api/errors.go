package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/jackc/pgx/v5/pgconn"
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
	codeConflict         = "conflict"
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
	errDBUnavailable = &apiError{status: http.StatusServiceUnavailable, code: codeNotReady,
		message: "database unavailable; try again"}
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

func conflict(format string, args ...any) *apiError {
	return &apiError{status: http.StatusConflict, code: codeConflict,
		message: fmt.Sprintf(format, args...)}
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

// writeError answers with err when it is an apiError. Otherwise it logs
// the cause without showing it to the client and answers 503 when the
// database could not be reached, else a bare 500.
func (s *server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	if !errors.As(err, &ae) {
		s.logFailure(r, err)
		ae = errInternal
		if dbUnreachable(err) {
			ae = errDBUnavailable
		}
	}
	writeJSON(w, ae.status, errorBody(ae))
}

// dbUnreachable reports whether err is a failure to reach PostgreSQL: a
// connection that could not be made, a network error or a timeout. An
// error of the delivery pipeline is not one, even a timeout.
func dbUnreachable(err error) bool {
	var pipeline *pipelineError
	if errors.As(err, &pipeline) {
		return false
	}
	var connect *pgconn.ConnectError
	var netErr net.Error // context.DeadlineExceeded is one too
	return errors.As(err, &connect) || errors.As(err, &netErr) || pgconn.Timeout(err)
}

// pipelineError is an error of the delivery pipeline (op failed), kept
// apart from the database's.
type pipelineError struct {
	op  string
	err error
}

func (e *pipelineError) Error() string { return e.op + ": " + e.err.Error() }

func (e *pipelineError) Unwrap() error { return e.err }

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
