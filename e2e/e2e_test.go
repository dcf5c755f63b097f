package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/db/dbtest"
	"github.com/hookrelay/hookrelay/internal/natstest"
	"github.com/hookrelay/hookrelay/internal/stream"
)

const fixtureFile = "../testdata/message-events.ndjson"

// env is the settings shared by a test's processes.
type env struct {
	prefix string
	vars   []string
}

func newEnv(t *testing.T, natsURL string) env {
	t.Helper()
	var b [4]byte
	_, _ = rand.Read(b[:])
	prefix := "e2e_" + hex.EncodeToString(b[:])
	return env{prefix: prefix, vars: []string{
		"NATS_URL=" + natsURL, "DATABASE_URL=" + dbtest.URL(t),
		"HOOKRELAY_PREFIX=" + prefix, "HOOKRELAY_LOG_LEVEL=warn",
	}}
}

func (e env) with(vars ...string) []string {
	return append(slices.Clone(e.vars), vars...)
}

// fixtureEvents reads the fixture's ids with their types and metadata.
type fixtureEvent struct {
	ID       string
	Type     string
	Metadata map[string]string
}

func fixtureEvents(t *testing.T) []fixtureEvent {
	t.Helper()
	b, err := os.ReadFile(fixtureFile)
	if err != nil {
		t.Fatal(err)
	}
	var out []fixtureEvent
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var ev fixtureEvent
		if err := json.Unmarshal([]byte(line), &ev); err != nil {
			t.Fatal(err)
		}
		out = append(out, ev)
	}
	return out
}

// deleteStreams removes a test's streams from a shared NATS server.
func deleteStreams(t *testing.T, url, prefix string) {
	nc, err := nats.Connect(url)
	if err != nil {
		t.Logf("clean up streams: %v", err)
		return
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	names := stream.Names{Prefix: prefix}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{names.EventsStream(), names.DeliveriesStream()} {
		_ = js.DeleteStream(ctx, s)
	}
}

// TestFixtureThroughBinaries runs the built consumer and publisher against
// the machine's own NATS server (2.9 on Debian) and PostgreSQL.
func TestFixtureThroughBinaries(t *testing.T) {
	t.Parallel()
	natsURL := os.Getenv("HOOKRELAY_E2E_NATS_URL")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	e := newEnv(t, natsURL)
	t.Cleanup(func() { deleteStreams(t, natsURL, e.prefix) })
	c := startConsumer(t, "consumer", e.vars...)
	recv := newReceiver(t, 0)

	subs := map[string]func(fixtureEvent) bool{
		"/all": func(fixtureEvent) bool { return true },
		"/solapi": func(ev fixtureEvent) bool {
			return strings.HasPrefix(ev.Type, "message.") && ev.Metadata["providerId"] == "solapi"
		},
		"/failed": func(ev fixtureEvent) bool {
			return ev.Type == "message.failed" && ev.Metadata["channelId"] == "ch_sms"
		},
	}
	ids := map[string]string{
		"/all": recv.endpoint(t, c, "/all", map[string]any{"event_types": []string{"*"}}),
		"/solapi": recv.endpoint(t, c, "/solapi", map[string]any{
			"event_types": []string{"message.*"},
			"filters":     map[string][]string{"provider_id": {"solapi"}},
		}),
		"/failed": recv.endpoint(t, c, "/failed", map[string]any{
			"event_types": []string{"message.failed"},
			"filters":     map[string][]string{"channel_id": {"ch_sms"}},
		}),
	}

	out := publish(t, fixtureFile, e.vars...)
	if !strings.Contains(out, "published 5000,") {
		t.Fatalf("publisher summary: %s", out)
	}
	events := fixtureEvents(t)
	for path, wants := range subs {
		want := map[string]bool{}
		for _, ev := range events {
			if wants(ev) {
				want[ev.ID] = true
			}
		}
		eventually(t, 90*time.Second, path+" deliveries", func() bool {
			return recv.unique(path) >= len(want)
		})
		assertExactlyOnce(t, path, recv.ids(path), want)
		eventually(t, 10*time.Second, path+" history", func() bool {
			return countDeliveries(t, c, "status=succeeded&endpoint_id="+ids[path]) == len(want)
		})
	}
	if n := recv.badSignatures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
}

func assertExactlyOnce(t *testing.T, path string, got map[string]int, want map[string]bool) {
	t.Helper()
	for id, n := range got {
		if !want[id] {
			t.Errorf("%s received %s, which it does not subscribe to", path, id)
		}
		if n != 1 {
			t.Errorf("%s received %s %d times", path, id, n)
		}
	}
	if len(got) != len(want) {
		t.Errorf("%s received %d events, want %d", path, len(got), len(want))
	}
}

// TestKilledConsumerLosesNothing kills a consumer with SIGKILL while
// deliveries are in flight; a new one finishes every delivery.
func TestKilledConsumerLosesNothing(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	e := newEnv(t, srv.URL)
	settings := e.with("HOOKRELAY_REQUEST_TIMEOUT=2s")
	first := startConsumer(t, "first", settings...)
	recv := newReceiver(t, 5*time.Millisecond)
	a := recv.endpoint(t, first, "/a", map[string]any{"event_types": []string{"*"}})
	b := recv.endpoint(t, first, "/b", map[string]any{"event_types": []string{"message.*"}})

	publish(t, fixtureFile, e.vars...)
	eventually(t, 60*time.Second, "deliveries under way", func() bool {
		return recv.unique("/a") >= 1000
	})
	first.kill()
	killedAt := recv.unique("/a") + recv.unique("/b")
	second := startConsumer(t, "second", settings...)

	events := fixtureEvents(t)
	wantA, wantB := map[string]bool{}, map[string]bool{}
	for _, ev := range events {
		wantA[ev.ID] = true
		if strings.HasPrefix(ev.Type, "message.") {
			wantB[ev.ID] = true
		}
	}
	eventually(t, 120*time.Second, "every delivery after the restart", func() bool {
		return recv.unique("/a") == len(wantA) && recv.unique("/b") == len(wantB)
	})
	eventually(t, 30*time.Second, "history to show every delivery succeeded", func() bool {
		return countDeliveries(t, second, "status=succeeded&endpoint_id="+a) == len(wantA) &&
			countDeliveries(t, second, "status=succeeded&endpoint_id="+b) == len(wantB)
	})
	if n := countDeliveries(t, second, "status=pending"); n != 0 {
		t.Errorf("%d deliveries still pending", n)
	}
	t.Logf("killed with %d of %d delivered; duplicates after restart: %d",
		killedAt, len(wantA)+len(wantB), duplicates(recv.ids("/a"))+duplicates(recv.ids("/b")))
}

func duplicates(got map[string]int) int {
	n := 0
	for _, c := range got {
		n += c - 1
	}
	return n
}

// TestTwoConsumersShareTheWork runs two consumer processes on the same
// streams: each delivers a fair part, and no event reaches the endpoint twice.
func TestTwoConsumersShareTheWork(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	e := newEnv(t, srv.URL)
	one := startConsumer(t, "one", e.vars...)
	two := startConsumer(t, "two", e.vars...)
	recv := newReceiver(t, 2*time.Millisecond)
	recv.endpoint(t, one, "/all", map[string]any{"event_types": []string{"*"}})

	publish(t, fixtureFile, e.vars...)
	eventually(t, 90*time.Second, "all 5000 delivered", func() bool {
		return recv.unique("/all") == 5000
	})
	const series = `hookrelay_delivery_attempts_total{outcome="succeeded"}`
	n1, n2 := one.metric(series), two.metric(series)
	t.Logf("consumer one delivered %.0f, two %.0f", n1, n2)
	if n1 < 1000 || n2 < 1000 {
		t.Errorf("work not shared: one delivered %.0f, two %.0f of 5000", n1, n2)
	}
	if d := duplicates(recv.ids("/all")); d != 0 {
		t.Errorf("%d events reached the endpoint twice", d)
	}
}
