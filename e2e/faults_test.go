package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/hookrelay/hookrelay/internal/natstest"
)

// Fault-injection tests: the database goes away, the broker restarts, the
// consumer is killed between retries or stopped with SIGTERM. Each test runs
// its consumer processes against a NATS server of its own and a fresh
// database.

// writeEvents writes n valid events to an NDJSON file and returns the file
// and the events' ids. Ids carry the test's prefix and tag, so they are unique.
func writeEvents(t *testing.T, prefix, tag string, n int) (string, []string) {
	t.Helper()
	types := []string{"message.sent", "message.delivered", "message.failed", "template.approved"}
	var sb strings.Builder
	ids := make([]string, n)
	now := time.Now().UTC()
	for i := range n {
		ids[i] = fmt.Sprintf("evt_%s_%s_%04d", prefix, tag, i)
		line, err := json.Marshal(map[string]any{
			"id": ids[i], "type": types[i%len(types)],
			"timestamp": now.Add(time.Duration(i) * time.Millisecond).Format(time.RFC3339Nano),
			"data":      map[string]any{"n": i, "to": "+821000000000"},
			"metadata":  map[string]string{"providerId": "solapi", "channelId": "ch_sms"},
		})
		if err != nil {
			t.Fatal(err)
		}
		sb.Write(line)
		sb.WriteByte('\n')
	}
	file := filepath.Join(t.TempDir(), tag+".ndjson")
	if err := os.WriteFile(file, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	return file, ids
}

// databaseURL is the DATABASE_URL of a test's settings.
func (e env) databaseURL(t *testing.T) string {
	t.Helper()
	for _, v := range e.vars {
		if s, ok := strings.CutPrefix(v, "DATABASE_URL="); ok {
			return s
		}
	}
	t.Fatal("no DATABASE_URL in the test's settings")
	return ""
}

// history opens the test database directly (not through any proxy), to
// check what the consumers recorded. The consumer creates the database, so
// call it once a consumer has started.
func history(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open test database: %v", err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// sqlInt runs a query that returns one integer.
func sqlInt(t *testing.T, pool *pgxpool.Pool, q string, args ...any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var n int
	if err := pool.QueryRow(ctx, q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

// readyStatus is the status /readyz answers, or 0 when it does not answer.
func (c *consumer) readyStatus() int {
	client := http.Client{Timeout: 10 * time.Second}
	resp, err := client.Get("http://" + c.addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (c *consumer) alive() bool {
	select {
	case <-c.done:
		return false
	default:
		return true
	}
}

// TestPostgresOutageChargesNoFailure cuts the consumer's database for 30 s
// while events flow: the consumer reports not ready, delivers nothing whose
// history it cannot record, and once the database is back delivers every
// event with no failed attempt charged to the healthy endpoint.
func TestPostgresOutageChargesNoFailure(t *testing.T) {
	t.Parallel()
	const outage = 30 * time.Second
	srv := natstest.Start(t)
	e := newEnv(t, srv.URL)
	direct := e.databaseURL(t)
	proxy := startProxy(t, hostPort(t, direct))
	c := startConsumer(t, "consumer", e.with("DATABASE_URL="+proxy.viaProxy(direct),
		"HOOKRELAY_REQUEST_TIMEOUT=5s")...)
	pool := history(t, direct)
	recv := newReceiver(t, 20*time.Millisecond)
	ep := recv.endpoint(t, c, "/ok", map[string]any{"event_types": []string{"*"}})

	beforeFile, beforeIDs := writeEvents(t, e.prefix, "before", 300)
	duringFile, duringIDs := writeEvents(t, e.prefix, "during", 300)
	publish(t, beforeFile, e.vars...)
	eventually(t, 60*time.Second, "first deliveries", func() bool {
		return recv.unique("/ok") >= 30
	})

	proxy.cut()
	cutAt := time.Now()
	t.Logf("database cut with %d of %d first events received", recv.unique("/ok"), len(beforeIDs))
	publish(t, duringFile, e.vars...)

	eventually(t, 15*time.Second, "/readyz to answer 503 during the outage", func() bool {
		return c.readyStatus() == http.StatusServiceUnavailable
	})
	var notUnready, early int
	eventually(t, outage+30*time.Second, "the outage to last its time", func() bool {
		if s := c.readyStatus(); s != http.StatusServiceUnavailable {
			notUnready++
			if notUnready == 1 {
				t.Errorf("/readyz answered %d %s into the outage, want 503", s,
					time.Since(cutAt).Round(time.Millisecond))
			}
		}
		got := recv.ids("/ok")
		for _, id := range duringIDs {
			if got[id] > 0 {
				early++
				if early == 1 {
					t.Errorf("%s reached the endpoint while its history could not be recorded", id)
				}
			}
		}
		return time.Since(cutAt) >= outage
	})
	if !c.alive() {
		t.Fatalf("consumer exited during the outage:\n%s", c.tail())
	}

	proxy.restore()
	eventually(t, 30*time.Second, "/readyz 200 after the database is back", func() bool {
		return c.readyStatus() == http.StatusOK
	})
	all := append(append([]string{}, beforeIDs...), duringIDs...)
	eventually(t, 90*time.Second, "every event delivered after the outage", func() bool {
		return recv.unique("/ok") >= len(all)
	})
	eventually(t, 30*time.Second, "history to show every delivery succeeded", func() bool {
		return sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE status = 'succeeded'`) == len(all)
	})

	want := map[string]bool{}
	for _, id := range all {
		want[id] = true
	}
	got := recv.ids("/ok")
	for id := range got {
		if !want[id] {
			t.Errorf("endpoint received %s, which was never published", id)
		}
	}
	if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE endpoint_id = $1`, ep); n != len(all) {
		t.Errorf("%d deliveries recorded, want %d", n, len(all))
	}
	if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE status <> 'succeeded'`); n != 0 {
		t.Errorf("%d deliveries did not succeed", n)
	}
	if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE attempt_count <> 1`); n != 0 {
		t.Errorf("%d deliveries were charged more than one attempt for our own outage", n)
	}
	if n := sqlInt(t, pool, `SELECT count(*) FROM delivery_attempts WHERE error <> ''`); n != 0 {
		t.Errorf("%d failed attempts were charged to a healthy endpoint", n)
	}
	if n := sqlInt(t, pool, `SELECT count(*) FROM delivery_attempts`); n != len(all) {
		t.Errorf("%d attempts recorded, want one per delivery (%d)", n, len(all))
	}
	checkAttemptsThroughAPI(t, c)
	// Attempts made before the cut are recorded once the database is back,
	// not made again.
	if n := duplicates(got); n != 0 {
		t.Errorf("%d duplicate POSTs across a database outage the consumer lived through", n)
	}
	if n := recv.badSignatures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
}

// checkAttemptsThroughAPI reads a sample of deliveries with their attempts
// through the admin API: one attempt each, answered 200, with no error.
func checkAttemptsThroughAPI(t *testing.T, c *consumer) {
	t.Helper()
	var page struct {
		Data []struct{ ID string }
	}
	if code := c.api("GET", "/v1/deliveries?limit=20", nil, &page); code != http.StatusOK {
		t.Fatalf("list deliveries: status %d", code)
	}
	if len(page.Data) == 0 {
		t.Fatal("no deliveries listed")
	}
	for _, d := range page.Data {
		var detail struct {
			Status   string
			Attempts []struct {
				Number     int
				StatusCode *int `json:"status_code"`
				Error      *string
			}
		}
		if code := c.api("GET", "/v1/deliveries/"+d.ID, nil, &detail); code != http.StatusOK {
			t.Fatalf("get delivery %s: status %d", d.ID, code)
		}
		if detail.Status != "succeeded" || len(detail.Attempts) != 1 {
			t.Errorf("delivery %s: status %s with %d attempts, want succeeded with 1",
				d.ID, detail.Status, len(detail.Attempts))
			continue
		}
		a := detail.Attempts[0]
		if a.Error != nil && *a.Error != "" || a.StatusCode == nil || *a.StatusCode != 200 {
			t.Errorf("delivery %s: attempt %+v, want status 200 and no error", d.ID, a)
		}
	}
}

// logCount is how many lines of the consumer's log contain msg.
func (c *consumer) logCount(msg string) int {
	b, _ := os.ReadFile(c.log)
	return strings.Count(string(b), msg)
}

// TestNATSRestartKeepsConsumerPulling restarts the NATS server under a
// running consumer, once and twice in a row: events published after the
// restart are delivered by the same process, which never stops pulling.
func TestNATSRestartKeepsConsumerPulling(t *testing.T) {
	t.Parallel()
	for _, restarts := range []int{1, 2} {
		t.Run(fmt.Sprintf("restarts=%d", restarts), func(t *testing.T) {
			t.Parallel()
			srv := natstest.Start(t)
			e := newEnv(t, srv.URL)
			// At info level the consumer logs each reconnection.
			c := startConsumer(t, "consumer", e.with("HOOKRELAY_LOG_LEVEL=info")...)
			recv := newReceiver(t, 0)
			ep := recv.endpoint(t, c, "/all", map[string]any{"event_types": []string{"*"}})

			firstFile, firstIDs := writeEvents(t, e.prefix, "first", 200)
			secondFile, secondIDs := writeEvents(t, e.prefix, "second", 200)
			publish(t, firstFile, e.vars...)
			eventually(t, 60*time.Second, "first batch delivered and recorded", func() bool {
				return countDeliveries(t, c, "status=succeeded&endpoint_id="+ep) == len(firstIDs)
			})

			// Each restart comes once the consumer is back from the one before.
			for i := range restarts {
				srv.Restart()
				if i < restarts-1 {
					eventually(t, 30*time.Second, fmt.Sprintf("reconnection %d", i+1), func() bool {
						return c.logCount("nats reconnected") >= i+1
					})
				}
			}
			publish(t, secondFile, e.vars...)
			want := map[string]bool{}
			for _, id := range append(append([]string{}, firstIDs...), secondIDs...) {
				want[id] = true
			}
			eventually(t, 45*time.Second, "second batch delivered by the same consumer", func() bool {
				if !c.alive() {
					t.Fatalf("consumer exited:\n%s", c.tail())
				}
				return recv.unique("/all") >= len(want)
			})
			eventually(t, 30*time.Second, "history to show every delivery succeeded", func() bool {
				return countDeliveries(t, c, "status=succeeded&endpoint_id="+ep) == len(want)
			})
			assertExactlyOnce(t, "/all", recv.ids("/all"), want)
			eventually(t, 30*time.Second, "/readyz 200 after the restart", func() bool {
				return c.readyStatus() == http.StatusOK
			})
			// Log lines reach the file within a second of being logged.
			eventually(t, 10*time.Second, "the disconnections logged", func() bool {
				return c.logCount("nats disconnected") >= restarts
			})
			if n := c.logCount("nats disconnected"); n != restarts {
				t.Errorf("the consumer logged %d disconnections, want %d", n, restarts)
			}
		})
	}
}

// flakyReceiver answers 500 to the first failFirst POSTs of each webhook-id
// and 200 afterwards (always 500 when failFirst is negative). Its gate, when
// closed, holds requests before they are counted or answered: a request
// whose sender dies while held was never processed, so the endpoint's count
// of POSTs matches the attempts a consumer could have recorded.
type flakyReceiver struct {
	url       string
	failFirst int
	mu        sync.Mutex
	gate      chan struct{} // nil when open
	held      int           // requests waiting at the closed gate
	posts     map[string]int
	answered  int
}

func newFlakyReceiver(t *testing.T, failFirst int) *flakyReceiver {
	r := &flakyReceiver{failFirst: failFirst, posts: map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *flakyReceiver) serve(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	id := req.Header.Get("webhook-id")
	for {
		r.mu.Lock()
		gate := r.gate
		if gate == nil {
			r.posts[id]++
			r.answered++
			n := r.posts[id]
			r.mu.Unlock()
			if r.failFirst < 0 || n <= r.failFirst {
				w.WriteHeader(http.StatusInternalServerError)
			}
			return
		}
		r.held++
		r.mu.Unlock()
		select {
		case <-gate:
		case <-req.Context().Done():
		}
		r.mu.Lock()
		r.held--
		r.mu.Unlock()
		if req.Context().Err() != nil {
			return // the sender gave up or died: not processed
		}
	}
}

func (r *flakyReceiver) closeGate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate == nil {
		r.gate = make(chan struct{})
	}
}

func (r *flakyReceiver) openGate() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gate != nil {
		close(r.gate)
		r.gate = nil
	}
}

// state is how many POSTs were answered and how many wait at the gate.
func (r *flakyReceiver) state() (answered, held int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.answered, r.held
}

func (r *flakyReceiver) counts() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.posts))
	for k, v := range r.posts {
		out[k] = v
	}
	return out
}

func (r *flakyReceiver) endpoint(t *testing.T, c *consumer, path string) string {
	t.Helper()
	var out struct{ ID string }
	body := map[string]any{"url": r.url + path, "event_types": []string{"*"}}
	if code := c.api("POST", "/v1/endpoints", body, &out); code != http.StatusCreated {
		t.Fatalf("create endpoint %s: status %d", path, code)
	}
	return out.ID
}

// killDuringBackoff publishes events to a flaky endpoint and, once retries
// are waiting, kills the consumer with SIGKILL at a moment when some
// attempts are recorded but their tasks neither acknowledged nor followed
// by their retry's task (the consumer is cut off NATS, not from the
// endpoint or the database, while they finish), and no answered POST is
// unrecorded. It then starts a second consumer and waits until every
// delivery has ended. It returns the history and the receiver.
func killDuringBackoff(t *testing.T, schedule string, failFirst, events int) (
	*pgxpool.Pool, *flakyReceiver, []string, *consumer) {
	t.Helper()
	srv := natstest.Start(t)
	e := newEnv(t, srv.URL)
	natsProxy := startProxy(t, strings.TrimPrefix(srv.URL, "nats://"))
	settings := e.with("HOOKRELAY_RETRY_SCHEDULE="+schedule, "HOOKRELAY_REQUEST_TIMEOUT=8s")
	first := startConsumer(t, "first", append(settings, "NATS_URL=nats://"+natsProxy.addr)...)
	pool := history(t, e.databaseURL(t))
	recv := newFlakyReceiver(t, failFirst)
	recv.endpoint(t, first, "/flaky")
	file, ids := writeEvents(t, e.prefix, "ev", events)
	publish(t, file, e.vars...)

	eventually(t, 60*time.Second, "first failures recorded", func() bool {
		return sqlInt(t, pool, `SELECT count(*) FROM deliveries
			WHERE status = 'pending' AND attempt_count >= 1`) >= events/4
	})
	// Hold some attempts at the endpoint, cut the consumer off NATS, then
	// let them finish: they are recorded, but their acks and retry tasks
	// stay in the frozen proxy and die with the process.
	recv.closeGate()
	eventually(t, 5*time.Second, "attempts held at the endpoint", func() bool {
		_, held := recv.state()
		return held >= 5
	})
	natsProxy.freeze()
	frozenAt := sqlTime(t, pool)
	answered, held := recv.state()
	recv.openGate()
	eventually(t, 5*time.Second, "held attempts answered", func() bool {
		n, _ := recv.state()
		return n >= answered+held
	})
	// Hold what comes next and let every answered POST be recorded.
	recv.closeGate()
	eventually(t, 5*time.Second, "every answered POST to be on record", func() bool {
		n, _ := recv.state()
		return sqlInt(t, pool, `SELECT coalesce(sum(attempt_count), 0) FROM deliveries`) == n
	})
	first.kill()
	natsProxy.cut()
	unsettled := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE updated_at >= $1`, frozenAt)
	waiting := sqlInt(t, pool, `SELECT count(*) FROM deliveries
		WHERE status = 'pending' AND attempt_count >= 1`)
	total, _ := recv.state()
	t.Logf("killed with %d deliveries waiting for a retry, %d attempts recorded but not "+
		"acknowledged, %d POSTs answered", waiting, unsettled, total)
	if unsettled == 0 {
		t.Fatal("no attempt was recorded while the consumer was cut off NATS")
	}
	recv.openGate()
	second := startConsumer(t, "second", settings...)

	// Tasks the first consumer held come back after AckWait (2×8s + 10s).
	began := time.Now()
	eventually(t, 70*time.Second, "every delivery to end, or 60 s", func() bool {
		return sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE status <> 'pending'`) == events ||
			time.Since(began) > 60*time.Second
	})
	if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE status <> 'pending'`); n != events {
		t.Fatalf("%d of %d deliveries ended %s after the restart; deliveries by status and "+
			"attempt_count: %s", n, events, time.Since(began).Round(time.Second), summary(t, pool))
	}
	if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries`); n != events {
		t.Errorf("%d deliveries, want %d", n, events)
	}
	return pool, recv, ids, second
}

// summary counts deliveries by status and attempt_count.
func summary(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT status, attempt_count, count(*)
		FROM deliveries GROUP BY 1, 2 ORDER BY 1, 2`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var parts []string
	for rows.Next() {
		var status string
		var attempts, n int
		if err := rows.Scan(&status, &attempts, &n); err != nil {
			t.Fatal(err)
		}
		parts = append(parts, fmt.Sprintf("%s/%d: %d", status, attempts, n))
	}
	return strings.Join(parts, ", ")
}

// sqlTime is the database's clock.
func sqlTime(t *testing.T, pool *pgxpool.Pool) time.Time {
	t.Helper()
	var now time.Time
	if err := pool.QueryRow(context.Background(), `SELECT clock_timestamp()`).Scan(&now); err != nil {
		t.Fatal(err)
	}
	return now
}

// TestKillDuringBackoff kills the consumer with SIGKILL while retries wait
// for their time, some of them just recorded and not yet acknowledged, and
// starts a new one: every delivery still gets exactly the attempts its
// schedule gives, none more, none fewer, none left pending.
func TestKillDuringBackoff(t *testing.T) {
	t.Parallel()
	const events = 200

	// The endpoint fails the first two POSTs of each event and accepts the
	// third; the schedule would allow four attempts.
	t.Run("succeeds on the third attempt", func(t *testing.T) {
		t.Parallel()
		pool, recv, ids, second := killDuringBackoff(t, "1s,2s,2s", 2, events)
		if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE status <> 'succeeded'`); n != 0 {
			t.Errorf("%d deliveries did not succeed", n)
		}
		if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE attempt_count <> 3`); n != 0 {
			t.Errorf("%d deliveries did not end with attempt_count 3", n)
		}
		if n := sqlInt(t, pool, `SELECT count(*) FROM delivery_attempts
			WHERE (number IN (1, 2) AND status_code = 500 AND error <> '')
			   OR (number = 3 AND status_code = 200 AND error = '')`); n != 3*events {
			t.Errorf("%d attempts recorded as 500, 500, 200, want %d", n, 3*events)
		}
		if n := sqlInt(t, pool, `SELECT count(*) FROM delivery_attempts`); n != 3*events {
			t.Errorf("%d attempts recorded, want %d", n, 3*events)
		}
		posts := recv.counts()
		for _, id := range ids {
			if posts[id] != 3 {
				t.Errorf("%s reached the endpoint %d times, want 3", id, posts[id])
			}
		}
		if n := countDeliveries(t, second, "status=pending"); n != 0 {
			t.Errorf("%d deliveries still pending", n)
		}
	})

	// The endpoint always fails; the schedule allows three attempts.
	t.Run("fails after three attempts", func(t *testing.T) {
		t.Parallel()
		pool, recv, ids, second := killDuringBackoff(t, "1s,1s", -1, events)
		if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries
			WHERE status = 'failed' AND attempt_count = 3`); n != events {
			t.Errorf("%d of %d deliveries failed with attempt_count 3", n, events)
		}
		if n := sqlInt(t, pool, `SELECT count(*) FROM delivery_attempts`); n != 3*events {
			t.Errorf("%d attempts recorded, want %d", n, 3*events)
		}
		if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries
			WHERE last_error NOT LIKE '%exhausted after 3 attempts%'`); n != 0 {
			t.Errorf("%d deliveries do not say they were exhausted after 3 attempts", n)
		}
		posts := recv.counts()
		for _, id := range ids {
			if posts[id] != 3 {
				t.Errorf("%s reached the endpoint %d times, want 3", id, posts[id])
			}
		}
		if n := countDeliveries(t, second, "status=pending"); n != 0 {
			t.Errorf("%d deliveries still pending", n)
		}
	})
}

// TestGracefulShutdown stops a consumer with SIGTERM while slow deliveries
// are under way: it exits 0 within its shutdown timeout, without charging
// an attempt or sending one twice, and a new consumer finishes the rest.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	const (
		events          = 500
		shutdownTimeout = 10 * time.Second
	)
	srv := natstest.Start(t)
	e := newEnv(t, srv.URL)
	// A message the stopping consumer fails to hand back would come back to
	// the next one only after AckWait, 2×20s + 10s.
	settings := e.with("HOOKRELAY_SHUTDOWN_TIMEOUT="+shutdownTimeout.String(),
		"HOOKRELAY_REQUEST_TIMEOUT=20s")
	first := startConsumer(t, "first", settings...)
	pool := history(t, e.databaseURL(t))
	recv := newReceiver(t, 300*time.Millisecond)
	recv.endpoint(t, first, "/slow", map[string]any{"event_types": []string{"*"}})
	file, ids := writeEvents(t, e.prefix, "ev", events)
	publish(t, file, e.vars...)

	eventually(t, 60*time.Second, "deliveries under way", func() bool {
		return recv.unique("/slow") >= 50
	})
	start := time.Now()
	code := first.terminate()
	took := time.Since(start)
	t.Logf("SIGTERM with %d of %d delivered: exit %d after %s", recv.unique("/slow"), events,
		code, took.Round(time.Millisecond))
	if code != 0 {
		t.Errorf("exit status %d after SIGTERM, want 0:\n%s", code, first.tail())
	}
	if took > shutdownTimeout {
		t.Errorf("took %s to stop, over the shutdown timeout of %s", took, shutdownTimeout)
	}

	second := startConsumer(t, "second", settings...)
	began := time.Now()
	eventually(t, 50*time.Second, "every event delivered, or 40 s", func() bool {
		return recv.unique("/slow") >= events || time.Since(began) > 40*time.Second
	})
	if got := recv.unique("/slow"); got < events {
		t.Fatalf("%d of %d events delivered %s after the second consumer started; deliveries "+
			"by status and attempt_count: %s. Tasks the stopping consumer took were not handed "+
			"back: they wait out AckWait (50 s)", got, events, time.Since(began).Round(time.Second),
			summary(t, pool))
	}
	eventually(t, 30*time.Second, "history to show every delivery succeeded", func() bool {
		return countDeliveries(t, second, "status=succeeded") == events
	})
	if n := countDeliveries(t, second, "status=pending"); n != 0 {
		t.Errorf("%d deliveries still pending", n)
	}
	want := map[string]bool{}
	for _, id := range ids {
		want[id] = true
	}
	assertExactlyOnce(t, "/slow", recv.ids("/slow"), want)
	if n := sqlInt(t, pool, `SELECT count(*) FROM deliveries WHERE attempt_count <> 1`); n != 0 {
		t.Errorf("%d deliveries took more than one attempt", n)
	}
	if n := sqlInt(t, pool, `SELECT count(*) FROM delivery_attempts WHERE error <> ''`); n != 0 {
		t.Errorf("%d attempts were recorded as failed", n)
	}
}
