// Command democtl supports scripts/demo.sh: it resets the demo's database
// and JetStream streams, and finds free loopback ports.
//
//	democtl reset --nats-url URL --database-url URL --prefix demo
//	democtl freeport
//
// reset refuses a database or prefix whose name does not contain "demo", so
// that it can never drop a real hookrelay database or stream.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/stream"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: democtl reset|freeport [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "reset":
		err = reset(os.Args[2:])
	case "freeport":
		err = freePort()
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "democtl:", err)
		os.Exit(1)
	}
}

func reset(args []string) error {
	fs := flag.NewFlagSet("reset", flag.ContinueOnError)
	natsURL := fs.String("nats-url", "nats://127.0.0.1:4222", "NATS server URL")
	dbURL := fs.String("database-url",
		"postgres://postgres@127.0.0.1:5432/hookrelay_demo?sslmode=disable", "demo database")
	prefix := fs.String("prefix", "demo", "subject and stream prefix of the demo")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !strings.Contains(strings.ToLower(*prefix), "demo") {
		return fmt.Errorf("--prefix %q: refusing to delete streams of a prefix without \"demo\"",
			*prefix)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := dropDatabase(ctx, *dbURL); err != nil {
		return err
	}
	return deleteStreams(ctx, *natsURL, *prefix)
}

// dropDatabase drops the database of url, connecting through the server's
// "postgres" database.
func dropDatabase(ctx context.Context, url string) error {
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	name := cfg.Database
	if !strings.Contains(strings.ToLower(name), "demo") {
		return fmt.Errorf("--database-url: refusing to drop database %q: its name lacks \"demo\"",
			name)
	}
	cfg.Database = "postgres"
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return fmt.Errorf("connect to PostgreSQL: %w", err)
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+
		" WITH (FORCE)")
	if err != nil {
		return fmt.Errorf("drop database %s: %w", name, err)
	}
	fmt.Printf("dropped database %s (if it existed)\n", name)
	return nil
}

func deleteStreams(ctx context.Context, url, prefix string) error {
	nc, err := nats.Connect(url, nats.Name("hookrelay-democtl"), nats.Timeout(5*time.Second))
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", url, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	names := stream.Names{Prefix: prefix}
	for _, s := range []string{names.EventsStream(), names.DeliveriesStream()} {
		err := js.DeleteStream(ctx, s)
		switch {
		case err == nil:
			fmt.Printf("deleted stream %s\n", s)
		case errors.Is(err, jetstream.ErrStreamNotFound):
		default:
			return fmt.Errorf("delete stream %s: %w", s, err)
		}
	}
	return nil
}

// freePort prints a loopback port that nothing listens on now.
func freePort() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}
