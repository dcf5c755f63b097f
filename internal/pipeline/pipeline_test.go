package pipeline_test

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/pipeline"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m,
		goleak.IgnoreAnyFunction("github.com/jackc/pgx/v5/pgxpool.(*Pool).backgroundHealthCheck"),
		goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"),
	)
}

// sub is an independent statement of who should get an event.
type sub struct {
	path      string
	match     func(typ string) bool
	providers []string
	templates []string
}

func (s sub) wants(line []byte) (string, bool) {
	var ev struct {
		ID       string
		Type     string
		Metadata map[string]string
	}
	_ = json.Unmarshal(line, &ev)
	if !s.match(ev.Type) {
		return ev.ID, false
	}
	if len(s.providers) > 0 && !slices.Contains(s.providers, ev.Metadata["providerId"]) {
		return ev.ID, false
	}
	if len(s.templates) > 0 && !slices.Contains(s.templates, ev.Metadata["templateId"]) {
		return ev.ID, false
	}
	return ev.ID, true
}

func TestFixtureReachesEachEndpointOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	lines := fixture(t)
	subs := []sub{
		{path: "/all", match: func(string) bool { return true }},
		{path: "/messages", match: func(typ string) bool { return strings.HasPrefix(typ, "message.") },
			providers: []string{"solapi", "aligo"}},
		{path: "/templated", match: func(typ string) bool {
			return typ == "message.failed" || strings.HasPrefix(typ, "template.")
		}, templates: []string{"tpl_003", "tpl_011", "tpl_040"}},
	}
	b.endpoint("ep_all", "/all", []string{"*"}, db.Filters{})
	b.endpoint("ep_messages", "/messages", []string{"message.*"},
		db.Filters{ProviderID: []string{"solapi", "aligo"}})
	b.endpoint("ep_templated", "/templated", []string{"message.failed", "template.*"},
		db.Filters{TemplateID: []string{"tpl_003", "tpl_011", "tpl_040"}})

	b.start(pipeline.Config{})
	b.publish(lines)

	for _, s := range subs {
		want := map[string]bool{}
		for _, l := range lines {
			if id, ok := s.wants(l); ok {
				want[id] = true
			}
		}
		eventually(t, 60*time.Second, s.path+" to receive its events", func() bool {
			return b.recv.unique(s.path) >= len(want)
		})
		got := b.recv.ids(s.path)
		for id, n := range got {
			if !want[id] {
				t.Errorf("%s received %s, which it does not subscribe to", s.path, id)
			}
			if n != 1 {
				t.Errorf("%s received %s %d times", s.path, id, n)
			}
		}
		if len(got) != len(want) {
			t.Errorf("%s received %d events, want %d", s.path, len(got), len(want))
		}
		ep := "ep_" + strings.TrimPrefix(s.path, "/")
		eventually(t, 10*time.Second, ep+" history", func() bool {
			return b.count(ep, db.StatusSucceeded) == len(want)
		})
		t.Logf("%s: %d events", s.path, len(want))
	}
	if n := b.recv.badSignatures(); n != 0 {
		t.Errorf("%d requests failed signature verification", n)
	}
}
