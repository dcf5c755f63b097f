package api

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestDBUnreachable(t *testing.T) {
	t.Parallel()
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	// Nothing listens on port 1 of the loopback address.
	_, connectErr := pgconn.Connect(t.Context(),
		"postgres://postgres@127.0.0.1:1/x?connect_timeout=1&sslmode=disable")
	var ce *pgconn.ConnectError
	if !errors.As(connectErr, &ce) {
		t.Fatalf("connecting to a closed port: %v, want a ConnectError", connectErr)
	}
	cases := []struct {
		err  error
		want bool
	}{
		{fmt.Errorf("get endpoint: %w", connectErr), true},
		{fmt.Errorf("list endpoints: %w", refused), true},
		{fmt.Errorf("list endpoints: %w", context.DeadlineExceeded), true},
		{errors.New("closed pool"), false},
		{&pgconn.PgError{Code: "23505"}, false},
		{context.Canceled, false},
		{&pipelineError{op: "requeue", err: context.DeadlineExceeded}, false},
	}
	for _, c := range cases {
		if got := dbUnreachable(c.err); got != c.want {
			t.Errorf("dbUnreachable(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}
