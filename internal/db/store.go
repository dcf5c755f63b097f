package db

import (
	"context"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/db/dbgen"
)

// ErrNotFound is returned when the row asked for does not exist.
var ErrNotFound = errors.New("not found")

// Store is hookrelay's history and endpoint store on PostgreSQL.
type Store struct {
	pool *pgxpool.Pool
	// batch runs the pipeline's batch statements; pool when not set.
	batch *pgxpool.Pool
	q     *dbgen.Queries
	aead  cipher.AEAD // encrypts endpoint secrets when set
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, batch: pool, q: dbgen.New()}
}

// UseBatchPool runs the fan-out stage's two batch statements (the claim of
// new events, and RecordNew) on pool, one from OpenPipeline. Statements
// whose best plan depends on a table's size stay on the main pool.
func (s *Store) UseBatchPool(pool *pgxpool.Pool) {
	s.batch = pool
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
