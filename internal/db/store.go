package db

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
	"github.com/hookrelay/hookrelay/internal/event"
)

// ErrNotFound is returned when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// Store is hookrelay's history and endpoint store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	q    *dbgen.Queries
	aead cipher.AEAD // encrypts endpoint secrets when set
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, q: dbgen.New()}
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.pool.Ping(ctx)
}

func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}

// Pending is a delivery whose task must be published.
type Pending struct {
	DeliveryID int64
	EventID    string
}

// FanOut records events and a delivery per matching endpoint in one
// statement. It returns the pending deliveries that have made no attempt, new
// or left by an earlier try of the same events.
func (s *Store) FanOut(ctx context.Context, events []*event.Event) ([]Pending, error) {
	rows, err := s.q.EventFanOut(ctx, s.pool, fanOutParams(events))
	if err != nil {
		return nil, fmt.Errorf("fan out events: %w", err)
	}
	out := make([]Pending, len(rows))
	for i, r := range rows {
		out[i] = Pending{DeliveryID: r.ID, EventID: r.EventID}
	}
	return out, nil
}

func fanOutParams(events []*event.Event) dbgen.EventFanOutParams {
	n := len(events)
	p := dbgen.EventFanOutParams{
		Ids: make([]string, n), Types: make([]string, n), OccurredAts: make([]time.Time, n),
		ProviderIds: make([]string, n), ChannelIds: make([]string, n),
		TemplateIds: make([]string, n), MessageIds: make([]string, n),
		OrganizationIds: make([]string, n), Bodies: make([][]byte, n),
		Patterns: make([]string, n),
	}
	for i, ev := range events {
		p.Ids[i], p.Types[i], p.OccurredAts[i] = ev.ID, ev.Type, ev.Timestamp
		md := ev.Metadata
		p.ProviderIds[i], p.ChannelIds[i], p.TemplateIds[i] = md.ProviderID, md.ChannelID, md.TemplateID
		p.MessageIds[i], p.OrganizationIds[i] = md.MessageID, md.OrganizationID
		p.Bodies[i] = ev.Raw
		p.Patterns[i] = strings.Join(event.Patterns(ev.Type), " ")
	}
	return p
}

// Rejected is a message the fan-out stage refused.
type Rejected struct {
	ID         int64     `json:"id"`
	Subject    string    `json:"subject"`
	StreamSeq  uint64    `json:"stream_seq"`
	MsgID      string    `json:"msg_id"`
	Reason     string    `json:"reason"`
	Head       string    `json:"head"`
	Size       int       `json:"size"`
	ReceivedAt time.Time `json:"received_at"`
}

// RecordRejected keeps a refused message's reason and first bytes.
func (s *Store) RecordRejected(ctx context.Context, r Rejected) error {
	err := s.q.RejectedMessageInsert(ctx, s.pool, dbgen.RejectedMessageInsertParams{
		Subject: r.Subject, StreamSeq: int64(r.StreamSeq), MsgID: r.MsgID,
		Reason: r.Reason, Head: r.Head, Size: int32(r.Size),
	})
	if err != nil {
		return fmt.Errorf("record rejected message: %w", err)
	}
	return nil
}

// ListRejected lists refused messages, newest first, before the id beforeID
// (0 for the first page).
func (s *Store) ListRejected(ctx context.Context, beforeID int64, limit int) ([]Rejected, error) {
	rows, err := s.q.RejectedMessageList(ctx, s.pool, dbgen.RejectedMessageListParams{
		BeforeID: optInt64(beforeID), MaxRows: int32(limit),
	})
	if err != nil {
		return nil, fmt.Errorf("list rejected messages: %w", err)
	}
	out := make([]Rejected, len(rows))
	for i, r := range rows {
		out[i] = Rejected{
			ID: r.ID, Subject: r.Subject, StreamSeq: uint64(r.StreamSeq), MsgID: r.MsgID,
			Reason: r.Reason, Head: r.Head, Size: int(r.Size), ReceivedAt: r.ReceivedAt.UTC(),
		}
	}
	return out, nil
}

func optInt64(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func optString(v string) *string {
	if v == "" {
		return nil
	}
	return &v
}

func decodeJSON[T any](raw json.RawMessage) T {
	var v T
	if len(raw) > 0 {
		_ = json.Unmarshal(raw, &v)
	}
	return v
}
