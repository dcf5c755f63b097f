package db

import (
	"context"
	"fmt"
	"time"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
)

// Event is a recorded event. Body holds its bytes exactly as published;
// empty metadata strings mean the key was absent.
type Event struct {
	ID             string
	Type           string
	OccurredAt     time.Time
	ReceivedAt     time.Time
	ProviderID     string
	ChannelID      string
	TemplateID     string
	MessageID      string
	OrganizationID string
	Body           []byte
}

// GetEvent returns the event with id, or ErrNotFound.
func (s *Store) GetEvent(ctx context.Context, id string) (Event, error) {
	row, err := s.q.EventGet(ctx, s.pool, id)
	if err != nil {
		return Event{}, fmt.Errorf("get event %s: %w", id, notFound(err))
	}
	return eventFromRow(row), nil
}

// EventCursor is the position after the last event of a page.
type EventCursor struct {
	ReceivedAt time.Time `json:"t"`
	ID         string    `json:"id"`
}

// EventQuery selects a page of events; empty fields do not filter.
type EventQuery struct {
	Type           string
	ProviderID     string
	MessageID      string
	OrganizationID string
	Since          *time.Time // inclusive, on received_at
	Until          *time.Time // exclusive, on received_at
	After          *EventCursor
	Limit          int
}

// ListEvents returns a page of events, newest received first.
func (s *Store) ListEvents(ctx context.Context, q EventQuery) ([]Event, error) {
	p := dbgen.EventListParams{
		Type: optString(q.Type), ProviderID: optString(q.ProviderID),
		MessageID: optString(q.MessageID), OrganizationID: optString(q.OrganizationID),
		Since: q.Since, Until: q.Until, MaxRows: int32(q.Limit),
	}
	if q.After != nil {
		p.CursorReceivedAt, p.CursorID = &q.After.ReceivedAt, q.After.ID
	}
	rows, err := s.q.EventList(ctx, s.pool, p)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	out := make([]Event, len(rows))
	for i, r := range rows {
		out[i] = eventFromRow(r)
	}
	return out, nil
}

func eventFromRow(r dbgen.Event) Event {
	return Event{
		ID: r.ID, Type: r.Type, OccurredAt: r.OccurredAt.UTC(), ReceivedAt: r.ReceivedAt.UTC(),
		ProviderID: deref(r.ProviderID), ChannelID: deref(r.ChannelID),
		TemplateID: deref(r.TemplateID), MessageID: deref(r.MessageID),
		OrganizationID: deref(r.OrganizationID), Body: r.Body,
	}
}
