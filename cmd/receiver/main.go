// Command receiver is a small local webhook endpoint for demos, tests and
// benchmarks: it verifies Standard Webhooks signatures and counts what each
// path receives, and reports it on GET /stats.
//
// Run "receiver -h" for its usage.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
