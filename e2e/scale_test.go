package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/natstest"
)

const succeededSeries = `hookrelay_delivery_attempts_total{outcome="succeeded"}`

// renamedFixture writes the fixture with every event id suffixed, so the
// same events can be published again as new ones.
func renamedFixture(t *testing.T, suffix string) string {
	t.Helper()
	b, err := os.ReadFile(fixtureFile)
	if err != nil {
		t.Fatal(err)
	}
	out := strings.ReplaceAll(string(b), `{"id":"evt_`, `{"id":"evt_`+suffix+`_`)
	path := filepath.Join(t.TempDir(), "events-"+suffix+".ndjson")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestThreeConsumersSpreadTheWorkAndSurviveALoss runs three consumer
// processes on the same streams: each delivers at least a fifth of the
// events, none twice; then one is killed mid-run and nothing is lost.
func TestThreeConsumersSpreadTheWorkAndSurviveALoss(t *testing.T) {
	t.Parallel()
	srv := natstest.Start(t)
	e := newEnv(t, srv.URL)
	settings := e.with("HOOKRELAY_REQUEST_TIMEOUT=2s")
	cs := []*consumer{
		startConsumer(t, "c1", settings...), startConsumer(t, "c2", settings...),
		startConsumer(t, "c3", settings...),
	}
	recv := newReceiver(t, 2*time.Millisecond)
	recv.endpoint(t, cs[0], "/all", map[string]any{"event_types": []string{"*"}})

	publish(t, fixtureFile, e.vars...)
	eventually(t, 90*time.Second, "all 5000 delivered", func() bool {
		return recv.unique("/all") == 5000
	})
	for _, c := range cs {
		n := c.metric(succeededSeries)
		t.Logf("%s delivered %.0f", c.name, n)
		if n < 1000 {
			t.Errorf("%s delivered %.0f of 5000, less than a fifth", c.name, n)
		}
	}
	if d := duplicates(recv.ids("/all")); d != 0 {
		t.Errorf("%d events reached the endpoint twice in steady state", d)
	}

	publish(t, renamedFixture(t, "again"), e.vars...)
	eventually(t, 60*time.Second, "the second round under way", func() bool {
		return recv.unique("/all") >= 6000
	})
	cs[1].kill()
	eventually(t, 120*time.Second, "every event of the second round", func() bool {
		return recv.unique("/all") == 10000
	})
	t.Logf("duplicates after the kill: %d", duplicates(recv.ids("/all")))
}
