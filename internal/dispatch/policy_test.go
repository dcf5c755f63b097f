package dispatch

import (
	"encoding/json"
	"slices"
	"testing"
	"time"
)

func TestRetryOverridesMeanWhatTheySay(t *testing.T) {
	t.Parallel()
	cases := []struct {
		raw      string
		attempts int
		delays   []time.Duration
	}{
		{`[]`, 1, []time.Duration{}},
		{`["0s"]`, 2, []time.Duration{0}},
		{`["1s","1m"]`, 3, []time.Duration{time.Second, time.Minute}},
		{`{"base":"0s","multiplier":2,"max_attempts":3}`, 3, []time.Duration{0, 0}},
		{`{"base":"1s","multiplier":3,"max_delay":"5s","max_attempts":4}`, 4,
			[]time.Duration{time.Second, 3 * time.Second, 5 * time.Second}},
		{`{"base":"1s","multiplier":2,"max_attempts":1}`, 1, []time.Duration{}},
	}
	for _, c := range cases {
		p, err := ParseRetryPolicy(json.RawMessage(c.raw))
		if err != nil {
			t.Errorf("%s: %v", c.raw, err)
			continue
		}
		if p.MaxAttempts() != c.attempts || !slices.Equal(append([]time.Duration{}, p.Delays...), c.delays) {
			t.Errorf("%s: %d attempts %v, want %d %v", c.raw, p.MaxAttempts(), p.Delays,
				c.attempts, c.delays)
		}
	}
	for _, bad := range []string{`["soon"]`, `["-1s"]`, `{"base":"x"}`, `"5s"`} {
		if _, err := ParseRetryPolicy(json.RawMessage(bad)); err == nil {
			t.Errorf("%s was accepted", bad)
		}
	}
}
