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
	// batch runs the pipeline's batch statements, and claims the claim of
	// new events; pool when not set.
	batch, claims *pgxpool.Pool
	q             *dbgen.Queries
	aead          cipher.AEAD // encrypts endpoint secrets when set
}

// NewStore returns a store on pool.
func NewStore(pool *pgxpool.Pool) *Store {
	return &Store{pool: pool, batch: pool, claims: pool, q: dbgen.New()}
}

// UseClaimPool runs the claim of new events on pool, one from OpenClaims:
// its commits do not wait for the WAL's flush, and FlushClaims is then
// needed before an event without deliveries is acked.
func (s *Store) UseClaimPool(pool *pgxpool.Pool) {
	s.claims = pool
}

// FlushClaims returns once the claims committed before it are on disk: it
// notes where the WAL ends and waits until it is flushed that far, which
// the next synchronous commit of any session, or the WAL writer within
// wal_writer_delay (200 ms by default), does. (A transaction that writes
// nothing but its commit record does not wait for the flush, so one cannot
// be made to flush.)
func (s *Store) FlushClaims(ctx context.Context) error {
	var end string
	var flushed bool
	// Often flushed already, by the records of other events.
	err := s.pool.QueryRow(ctx, "SELECT e::text, pg_current_wal_flush_lsn() >= e "+
		"FROM pg_current_wal_insert_lsn() e").Scan(&end, &flushed)
	for wait := time.Millisecond; ; wait = min(2*wait, 20*time.Millisecond) {
		switch {
		case err != nil:
			return fmt.Errorf("flush claims: %w", err)
		case flushed:
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("flush claims: %w", ctx.Err())
		case <-time.After(wait):
		}
		err = s.pool.QueryRow(ctx, "SELECT pg_current_wal_flush_lsn() >= $1::pg_lsn", end).
			Scan(&flushed)
	}
}

// UseBatchPool runs the fan-out stage's two batch statements (the claim of
// new events, and RecordNew) on pool, one from OpenPipeline. Statements
// whose best plan depends on a table's size stay on the main pool.
// The claim moves with them, unless UseClaimPool moves it after.
func (s *Store) UseBatchPool(pool *pgxpool.Pool) {
	s.batch, s.claims = pool, pool
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
