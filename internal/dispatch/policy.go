package dispatch

import (
	"encoding/json"
	"time"
)

// MaxRetryDelay is the longest single delay a retry schedule may hold, the
// global one or an endpoint's.
const MaxRetryDelay = 72 * time.Hour

// retryOverride is the object form of an endpoint's retry policy.
type retryOverride struct {
	Base        string  `json:"base"`
	Multiplier  float64 `json:"multiplier"`
	MaxDelay    string  `json:"max_delay"`
	MaxAttempts int     `json:"max_attempts"`
}

// ParseRetryPolicy reads an endpoint's retry override: a JSON list of Go
// durations (one per retry), or {"base", "multiplier", "max_delay",
// "max_attempts"}. Zero values mean zero, not the default.
func ParseRetryPolicy(raw json.RawMessage) (Policy, error) {
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return scheduleFromList(list)
	}
	var o retryOverride
	if err := json.Unmarshal(raw, &o); err != nil {
		return Policy{}, err
	}
	return exponential(o)
}

func scheduleFromList(list []string) (Policy, error) {
	pol := DefaultPolicy()
	pol.Delays = make([]time.Duration, len(list))
	for i, s := range list {
		d, err := parseDelay(s)
		if err != nil {
			return Policy{}, err
		}
		pol.Delays[i] = d
	}
	return pol, nil
}

func exponential(o retryOverride) (Policy, error) {
	base, err := optDelay(o.Base)
	if err != nil {
		return Policy{}, err
	}
	maxDelay, err := optDelay(o.MaxDelay)
	if err != nil {
		return Policy{}, err
	}
	return ExponentialPolicy(base, o.Multiplier, maxDelay, o.MaxAttempts), nil
}

func optDelay(s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	return parseDelay(s)
}
