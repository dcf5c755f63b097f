package db

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// CountPendingRetries counts the pending deliveries that have made at least
// one attempt: retries waiting for their time. It reads the pending entries
// of deliveries_status_id, so it costs about one index entry per pending
// delivery.
func (s *Store) CountPendingRetries(ctx context.Context) (int64, error) {
	n, err := s.q.DeliveryCountRetrying(ctx, s.pool)
	if err != nil {
		return 0, fmt.Errorf("count pending retries: %w", err)
	}
	return n, nil
}

// PoolStat is a snapshot of the connection pool's use.
func (s *Store) PoolStat() *pgxpool.Stat {
	return s.pool.Stat()
}
