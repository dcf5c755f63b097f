// Command bench measures hookrelay end to end on this machine: it builds
// the binaries, starts a consumer and a receiver as separate processes
// against the local NATS and PostgreSQL, publishes generated events, and
// reports deliveries per second, publish-to-receipt latency, CPU per
// delivered event and the consumer's memory. Run it with `make bench`.
package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/stream"
)

const (
	prefix   = "bench"
	database = "hookrelay_bench"
)

type options struct {
	natsURL     string
	pgURL       string
	events      int
	fanoutEvts  int
	rate        int
	rateFor     time.Duration
	consumers   int
	concurrency int
	workDir     string
	only        string
	logLevel    string
}

func main() {
	var o options
	flag.StringVar(&o.natsURL, "nats-url", "nats://127.0.0.1:4222", "NATS server")
	flag.StringVar(&o.pgURL, "pg-url", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable",
		"PostgreSQL server (the bench database is created beside it)")
	flag.IntVar(&o.events, "events", 30000, "events of the throughput run")
	flag.IntVar(&o.fanoutEvts, "fanout-events", 300, "events of the fan-out run (x100 endpoints)")
	flag.IntVar(&o.rate, "rate", 2000, "events per second of the latency run")
	flag.DurationVar(&o.rateFor, "rate-for", 15*time.Second, "length of the latency run")
	flag.IntVar(&o.consumers, "consumers", 1, "consumer processes")
	flag.IntVar(&o.concurrency, "concurrency", 64, "HOOKRELAY_CONCURRENCY of each consumer")
	flag.StringVar(&o.workDir, "dir", ".bench", "working directory for binaries and logs")
	flag.StringVar(&o.logLevel, "log-level", "info",
		"HOOKRELAY_LOG_LEVEL of the consumers (info: one line per attempt, as by default)")
	flag.StringVar(&o.only, "only", "",
		"comma-separated scenarios to run (throughput, fanout, steady, healthy, mixed); all when empty")
	flag.Parse()
	if err := run(o); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if err := os.MkdirAll(o.workDir, 0o755); err != nil {
		return err
	}
	if err := buildBinaries(o.workDir); err != nil {
		return err
	}
	if err := reset(o); err != nil {
		return err
	}
	env, err := startProcesses(o)
	if err != nil {
		return err
	}
	defer env.stop()
	return runScenarios(env, o)
}

func buildBinaries(dir string) error {
	cmd := exec.Command("go", "build", "-o", filepath.Join(dir, "bin")+"/", "./cmd/...")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("build: %w", err)
	}
	return nil
}

// reset drops the bench database and streams, so every run starts clean.
func reset(o options) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, o.pgURL)
	if err != nil {
		return fmt.Errorf("connect postgres: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+database+" WITH (FORCE)"); err != nil {
		return fmt.Errorf("drop bench database: %w", err)
	}
	nc, err := nats.Connect(o.natsURL)
	if err != nil {
		return fmt.Errorf("connect nats: %w", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	n := stream.Names{Prefix: prefix}
	for _, s := range []string{n.EventsStream(), n.DeliveriesStream()} {
		if err := js.DeleteStream(ctx, s); err != nil && !errors.Is(err, jetstream.ErrStreamNotFound) {
			return fmt.Errorf("delete stream %s: %w", s, err)
		}
	}
	return nil
}

func databaseURL(pgURL string) string {
	i := strings.LastIndex(pgURL, "/")
	rest := pgURL[i+1:]
	query := ""
	if q := strings.Index(rest, "?"); q >= 0 {
		query = rest[q:]
	}
	return pgURL[:i+1] + database + query
}

func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return "whsec_" + base64.StdEncoding.EncodeToString(b[:])
}

// getJSON fetches url into out.
func getJSON(url string, out any) error {
	resp, err := http.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("GET %s: %s: %s", url, resp.Status, b)
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

func postJSON(url string, body, out any) error {
	b, _ := json.Marshal(body)
	resp, err := http.Post(url, "application/json", bytes.NewReader(b))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		rb, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("POST %s: %s: %s", url, resp.Status, rb)
	}
	if out == nil {
		return nil
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// waitLine waits until r prints a line starting with want and returns it.
func waitLine(r io.Reader, want string) (string, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), want) {
			go func() { _, _ = io.Copy(io.Discard, r) }()
			return sc.Text(), nil
		}
	}
	return "", fmt.Errorf("no line %q: %v", want, sc.Err())
}
