package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/event"
)

// EventPublisher is what POST /v1/events needs from the pipeline.
type EventPublisher interface {
	// PublishEvent stores ev on the events stream with its id as
	// Nats-Msg-Id and waits for the ack; duplicate reports that the
	// stream already held that id.
	PublishEvent(ctx context.Context, ev *event.Event) (duplicate bool, err error)
}

// maxEventDeliveries is how many deliveries GET /v1/events/{id} shows; the
// rest are paged through GET /v1/deliveries?event_id=….
const maxEventDeliveries = 500

var (
	errNoPublisher = &apiError{status: http.StatusServiceUnavailable, code: codeNotReady,
		message: "event publishing is not available in this process"}
	errPublish = &apiError{status: http.StatusServiceUnavailable, code: codeNotReady,
		message: "the event could not be published; try again"}
)

// eventJSON is a recorded event as the API shows it. Payload is the event
// as published.
type eventJSON struct {
	ID         string            `json:"id"`
	Type       string            `json:"type"`
	Timestamp  string            `json:"timestamp"`
	ReceivedAt string            `json:"received_at"`
	Metadata   eventMetadataJSON `json:"metadata"`
	Payload    json.RawMessage   `json:"payload"`
}

// eventMetadataJSON holds the metadata kept in columns; null when absent.
type eventMetadataJSON struct {
	ProviderID     *string `json:"provider_id"`
	ChannelID      *string `json:"channel_id"`
	TemplateID     *string `json:"template_id"`
	MessageID      *string `json:"message_id"`
	OrganizationID *string `json:"organization_id"`
}

// eventDetailJSON is one event with its deliveries, newest first.
type eventDetailJSON struct {
	eventJSON
	Deliveries []deliveryJSON `json:"deliveries"`
	// DeliveriesNextCursor continues the list with GET
	// /v1/deliveries?event_id=…&cursor=… when there are more.
	DeliveriesNextCursor *string `json:"deliveries_next_cursor"`
}

// publishedJSON answers a publish.
type publishedJSON struct {
	ID        string `json:"id"`
	Duplicate bool   `json:"duplicate,omitempty"`
}

// createEvent validates an event, completes what it leaves out and
// publishes it. An id already recorded answers 200 with the event and is
// not published again; an id JetStream already holds answers 200 with
// "duplicate": true.
func (s *server) createEvent(w http.ResponseWriter, r *http.Request) error {
	if s.events == nil {
		return errNoPublisher
	}
	raw, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.maxEvent)))
	if isTooLarge(err) {
		return s.eventTooLarge()
	}
	if err != nil {
		return badRequest("body", "could not be read: %v", err)
	}
	ev, err := s.completeEvent(raw)
	if err != nil {
		return err
	}

	old, err := s.store.GetEvent(r.Context(), ev.ID)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, eventOut(old))
		return nil
	case !errors.Is(err, db.ErrNotFound):
		return err
	}

	duplicate, err := s.events.PublishEvent(r.Context(), ev)
	if err != nil {
		s.logFailure(r, err)
		return publishError(ev.ID, err)
	}
	if duplicate {
		writeJSON(w, http.StatusOK, publishedJSON{ID: ev.ID, Duplicate: true})
		return nil
	}
	w.Header().Set("Location", "/v1/events/"+url.PathEscape(ev.ID))
	writeJSON(w, http.StatusAccepted, publishedJSON{ID: ev.ID})
	return nil
}

// publishError tells the client what a failed publish means for the event.
// Only an answer of the server, or no server listening, shows that the
// event was not stored; after anything else (a timeout, a connection lost
// while waiting for the ack) JetStream may hold it and deliver it.
func publishError(id string, err error) *apiError {
	var refused *jetstream.APIError
	if errors.As(err, &refused) || errors.Is(err, jetstream.ErrNoStreamResponse) ||
		errors.Is(err, nats.ErrNoResponders) {
		return errPublish
	}
	return &apiError{status: http.StatusServiceUnavailable, code: codeNotReady,
		message: fmt.Sprintf("publish of %s not confirmed; it may still be delivered: "+
			"retry with the same id (a repeated id is not delivered twice)", id)}
}

// completeEvent is event.Complete under the configured limit, with its
// errors as API errors: 413 when the event is too large, 400 when it is not
// a JSON object, else 422 naming the field.
func (s *server) completeEvent(raw []byte) (*event.Event, error) {
	now := time.Now()
	ev, _, err := event.Complete(raw, s.maxEvent, now)
	var ve *event.ValidationError
	if err == nil || !errors.As(err, &ve) {
		return ev, err
	}
	if ve.Field == "" {
		// An error about the whole event may be its size only: the id,
		// timestamp or version filled in can take it over the limit.
		// Without the limit it is either valid or shows its real fault.
		if _, _, err = event.Complete(raw, math.MaxInt, now); err == nil {
			if len(raw) <= s.maxEvent {
				return nil, s.eventTooLargeFilled()
			}
			return nil, s.eventTooLarge()
		}
		if !errors.As(err, &ve) {
			return nil, err
		}
	}
	return nil, eventError(raw, ve)
}

// eventError is 400 for a body that is not a JSON object and 422 for an
// object that is not an acceptable event.
func eventError(raw []byte, ve *event.ValidationError) *apiError {
	if ve.Field != "" {
		return invalidField(ve.Field, "%s", ve.Reason)
	}
	if isObject(raw) {
		return invalidField("body", "%s", ve.Reason) // such as a \u0000 in a string
	}
	return badRequest("body", "%s", ve.Reason)
}

// isObject reports whether raw is one well-formed JSON object.
func isObject(raw []byte) bool {
	trimmed := bytes.TrimLeft(raw, " \t\r\n")
	return len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed)
}

func (s *server) eventTooLarge() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
		message: fmt.Sprintf("the event is larger than %d bytes", s.maxEvent)}
}

// eventTooLargeFilled is the 413 of an event within the limit as posted
// that grows past it once its missing id, timestamp or version is filled in.
func (s *server) eventTooLargeFilled() *apiError {
	return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge,
		message: fmt.Sprintf("the event is larger than %d bytes once its missing id, "+
			"timestamp or version is filled in: give them, or send less", s.maxEvent)}
}

// eventID reads the {id} of the path: chi matches on the escaped path when
// the request had to escape it (an id holding "/"), so it is unescaped then.
func eventID(r *http.Request) (string, bool) {
	id := chi.URLParam(r, "id")
	if r.URL.RawPath != "" {
		var err error
		if id, err = url.PathUnescape(id); err != nil {
			return chi.URLParam(r, "id"), false
		}
	}
	return id, event.ValidateID(id) == nil
}

func (s *server) getEvent(w http.ResponseWriter, r *http.Request) error {
	id, ok := eventID(r)
	if !ok {
		return notFound("event", id)
	}
	ev, err := s.store.GetEvent(r.Context(), id)
	if errors.Is(err, db.ErrNotFound) {
		return notFound("event", id)
	}
	if err != nil {
		return err
	}
	rows, err := s.store.ListDeliveries(r.Context(), db.DeliveryQuery{
		EventID: id, Limit: maxEventDeliveries + 1,
	})
	if err != nil {
		return err
	}
	p := pageOf(rows, maxEventDeliveries, deliveryOut, deliveryCursor)
	writeJSON(w, http.StatusOK, eventDetailJSON{eventOut(ev), p.Data, p.NextCursor})
	return nil
}

func (s *server) listEvents(w http.ResponseWriter, r *http.Request) error {
	q, limit, err := eventQuery(r.URL.RawQuery)
	if err != nil {
		return err
	}
	rows, err := s.store.ListEvents(r.Context(), q)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, pageOf(rows, limit, eventOut, eventCursor))
	return nil
}

func eventQuery(raw string) (db.EventQuery, int, error) {
	var q db.EventQuery
	v, err := listParams(raw, "type", "provider_id", "message_id", "organization_id", "since",
		"until", "limit", "cursor")
	if err != nil {
		return q, 0, err
	}
	limit, err := parseLimit(v)
	if err != nil {
		return q, 0, err
	}
	if q.Type = v.Get("type"); q.Type != "" && event.ValidateType(q.Type) != nil {
		return q, 0, badRequest("type", "must be an event type such as message.sent")
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"provider_id", &q.ProviderID}, {"message_id", &q.MessageID},
		{"organization_id", &q.OrganizationID},
	} {
		if *f.dst, err = parseText(v, f.name); err != nil {
			return q, 0, err
		}
	}
	if q.Since, err = parseTime(v, "since"); err != nil {
		return q, 0, err
	}
	if q.Until, err = parseTime(v, "until"); err != nil {
		return q, 0, err
	}
	if q.After, err = parseEventCursor(v.Get("cursor")); err != nil {
		return q, 0, err
	}
	q.Limit = limit + 1
	return q, limit, nil
}

// eventCursor is a tagged JSON position, so a cursor of another list is
// refused rather than misread.
type eventCursorJSON struct {
	Kind       string    `json:"k"`
	ReceivedAt time.Time `json:"t"`
	ID         string    `json:"id"`
}

func eventCursor(e db.Event) string {
	raw, _ := json.Marshal(eventCursorJSON{Kind: "evt", ReceivedAt: e.ReceivedAt, ID: e.ID})
	return encodeCursor(raw)
}

func parseEventCursor(s string) (*db.EventCursor, error) {
	if s == "" {
		return nil, nil
	}
	raw, err := decodeCursor(s)
	if err != nil {
		return nil, err
	}
	var c eventCursorJSON
	if json.Unmarshal(raw, &c) != nil || c.Kind != "evt" || c.ReceivedAt.IsZero() ||
		event.ValidateID(c.ID) != nil {
		return nil, errBadCursor
	}
	return &db.EventCursor{ReceivedAt: c.ReceivedAt, ID: c.ID}, nil
}

func eventOut(e db.Event) eventJSON {
	payload := json.RawMessage(e.Body)
	if !json.Valid(payload) {
		// Never stored so (events are validated first), but a broken body
		// must not break the answer.
		payload, _ = json.Marshal(string(e.Body))
	}
	return eventJSON{
		ID: e.ID, Type: e.Type, Timestamp: formatTime(e.OccurredAt),
		ReceivedAt: formatTime(e.ReceivedAt),
		Metadata: eventMetadataJSON{
			ProviderID: nonEmpty(e.ProviderID), ChannelID: nonEmpty(e.ChannelID),
			TemplateID: nonEmpty(e.TemplateID), MessageID: nonEmpty(e.MessageID),
			OrganizationID: nonEmpty(e.OrganizationID),
		},
		Payload: payload,
	}
}
