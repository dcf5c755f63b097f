package api

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/event"
)

// deliveryPrefix starts every delivery id the API shows.
const deliveryPrefix = "dlv_"

// deliveryJSON is a delivery as the API shows it.
type deliveryJSON struct {
	ID             string  `json:"id"`
	EventID        string  `json:"event_id"`
	EndpointID     string  `json:"endpoint_id"`
	EventType      string  `json:"event_type"`
	Status         string  `json:"status"`
	AttemptCount   int     `json:"attempt_count"`
	NextAttemptAt  *string `json:"next_attempt_at"`
	LastStatusCode *int    `json:"last_status_code"`
	LastError      *string `json:"last_error"`
	CreatedAt      string  `json:"created_at"`
	UpdatedAt      string  `json:"updated_at"`
	CompletedAt    *string `json:"completed_at"`
}

// deliveryDetailJSON is one delivery with its attempts.
type deliveryDetailJSON struct {
	deliveryJSON
	Attempts []attemptJSON `json:"attempts"`
}

// attemptJSON is one HTTP attempt of a delivery.
type attemptJSON struct {
	Number       int     `json:"number"`
	StartedAt    string  `json:"started_at"`
	DurationMs   int64   `json:"duration_ms"`
	StatusCode   *int    `json:"status_code"`
	ResponseBody string  `json:"response_body"`
	Error        *string `json:"error"`
}

var deliveryStatuses = []string{
	db.StatusPending, db.StatusSucceeded, db.StatusFailed, db.StatusSkipped,
}

func (s *server) listDeliveries(w http.ResponseWriter, r *http.Request) error {
	q, limit, err := deliveryQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	rows, err := s.store.ListDeliveries(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, deliveryOut, deliveryCursor))
	return nil
}

func (s *server) getDelivery(w http.ResponseWriter, r *http.Request) error {
	raw := chi.URLParam(r, "id")
	id, ok := parseDeliveryID(raw)
	if !ok {
		return notFound("delivery", raw)
	}
	d, err := s.store.GetDelivery(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return notFound("delivery", raw)
	}
	if err != nil {
		return err
	}
	attempts, err := s.store.ListAttempts(r.Context(), id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, deliveryDetailJSON{deliveryOut(d), attemptsOut(attempts)})
	return nil
}

func deliveryQuery(raw string) (db.DeliveryQuery, int, error) {
	var q db.DeliveryQuery
	v, err := listParams(raw, "endpoint_id", "event_id", "event_type", "status", "since",
		"until", "limit", "cursor")
	if err != nil {
		return q, 0, err
	}
	limit, err := parseLimit(v)
	if err != nil {
		return q, 0, err
	}
	if err := deliveryFilters(v, &q); err != nil {
		return q, 0, err
	}
	if q.Since, err = parseTime(v, "since"); err != nil {
		return q, 0, err
	}
	if q.Until, err = parseTime(v, "until"); err != nil {
		return q, 0, err
	}
	if q.BeforeID, err = parseIDCursor(v, "dlv"); err != nil {
		return q, 0, err
	}
	q.Limit = limit + 1
	return q, limit, nil
}

// deliveryFilters reads the exact-match filters of a delivery list.
func deliveryFilters(v url.Values, q *db.DeliveryQuery) error {
	var err error
	if q.EndpointID, err = parseText(v, "endpoint_id"); err != nil {
		return err
	}
	if q.EventID = v.Get("event_id"); q.EventID != "" && event.ValidateID(q.EventID) != nil {
		return badRequest("event_id", "must be 1–255 bytes of printable ASCII without spaces")
	}
	if q.EventType = v.Get("event_type"); q.EventType != "" &&
		event.ValidateType(q.EventType) != nil {
		return badRequest("event_type", "must be an event type such as message.sent")
	}
	q.Status = v.Get("status")
	if q.Status != "" && !contains(deliveryStatuses, q.Status) {
		return badRequest("status", "must be one of %s", strings.Join(deliveryStatuses, ", "))
	}
	return nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func deliveryCursor(d db.Delivery) string {
	return idCursor("dlv", d.ID)
}

// parseDeliveryID reads "dlv_<n>".
func parseDeliveryID(s string) (int64, bool) {
	digits, ok := strings.CutPrefix(s, deliveryPrefix)
	if !ok {
		return 0, false
	}
	return parsePositive(digits)
}

func deliveryOut(d db.Delivery) deliveryJSON {
	return deliveryJSON{
		ID: deliveryPrefix + strconv.FormatInt(d.ID, 10), EventID: d.EventID,
		EndpointID: d.EndpointID, EventType: d.EventType, Status: d.Status,
		AttemptCount: d.AttemptCount, NextAttemptAt: formatTimePtr(d.NextAttemptAt),
		LastStatusCode: d.LastStatusCode, LastError: nonEmpty(d.LastError),
		CreatedAt: formatTime(d.CreatedAt), UpdatedAt: formatTime(d.UpdatedAt),
		CompletedAt: formatTimePtr(d.CompletedAt),
	}
}

func attemptsOut(attempts []db.Attempt) []attemptJSON {
	out := make([]attemptJSON, len(attempts))
	for i, a := range attempts {
		out[i] = attemptJSON{
			Number: a.Number, StartedAt: formatTime(a.StartedAt),
			DurationMs: a.Duration.Milliseconds(), ResponseBody: a.ResponseBody,
			Error: nonEmpty(a.Error),
		}
		if a.StatusCode != 0 {
			code := a.StatusCode
			out[i].StatusCode = &code
		}
	}
	return out
}
