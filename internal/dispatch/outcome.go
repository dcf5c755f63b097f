package dispatch

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"
)

const (
	defaultJitter  = 0.2
	maxLocationLen = 256
)

// ErrInvalidSchedule reports an unusable retry schedule.
var ErrInvalidSchedule = errors.New("invalid retry schedule")

// Policy is a retry schedule: Delays[i] is the wait before retry i+1, so a
// delivery gets len(Delays)+1 attempts in total.
type Policy struct {
	Delays []time.Duration
	// Jitter spreads each delay by ±Jitter (0.2 = ±20%) so that endpoints
	// recovering from an outage are not hit by every retry at once.
	Jitter float64
}

// DefaultPolicy retries over roughly a day: 5s, 5m, 30m, 2h, 5h, 10h, 10h.
func DefaultPolicy() Policy {
	return Policy{
		Delays: []time.Duration{
			5 * time.Second, 5 * time.Minute, 30 * time.Minute,
			2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour,
		},
		Jitter: defaultJitter,
	}
}

// ParseSchedule parses comma-separated Go durations such as "5s,1m,1h".
// An empty string means no retries.
func ParseSchedule(s string) ([]time.Duration, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	items := strings.Split(s, ",")
	out := make([]time.Duration, 0, len(items))
	for _, item := range items {
		d, err := parseDelay(strings.TrimSpace(item))
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// parseDelay reads one delay of a schedule: a Go duration, not negative.
func parseDelay(item string) (time.Duration, error) {
	d, err := time.ParseDuration(item)
	if err != nil {
		return 0, fmt.Errorf("%w: item %q: %w", ErrInvalidSchedule, item, err)
	}
	if d < 0 {
		return 0, fmt.Errorf("%w: item %q is negative", ErrInvalidSchedule, item)
	}
	return d, nil
}

// ExponentialPolicy returns a policy of maxAttempts attempts whose delays
// grow from base by multiplier (at least 1), each capped at maxDelay (no cap
// if maxDelay <= 0). Jitter is 0.2, as in DefaultPolicy.
func ExponentialPolicy(base time.Duration, multiplier float64, maxDelay time.Duration,
	maxAttempts int) Policy {
	// Well below MaxInt64 so the float-to-Duration conversion cannot overflow.
	limit := float64(1 << 62)
	if maxDelay > 0 {
		limit = float64(maxDelay)
	}
	delays := make([]time.Duration, 0, max(maxAttempts-1, 0))
	d := float64(max(base, 0))
	for range maxAttempts - 1 {
		delays = append(delays, time.Duration(math.Min(d, limit)))
		d *= math.Max(multiplier, 1)
	}
	return Policy{Delays: delays, Jitter: defaultJitter}
}

// MaxAttempts is the number of attempts including the first.
func (p Policy) MaxAttempts() int { return len(p.Delays) + 1 }

// Delay returns the jittered wait before retry (1 = the second attempt);
// retries past the schedule reuse its last delay. rnd yields values in
// [0, 1); nil uses math/rand.
func (p Policy) Delay(retry int, rnd func() float64) time.Duration {
	if len(p.Delays) == 0 {
		return 0
	}
	base := p.Delays[min(max(retry, 1), len(p.Delays))-1]
	if rnd == nil {
		rnd = rand.Float64
	}
	jitter := math.Min(math.Max(p.Jitter, 0), 1)
	r := math.Min(math.Max(rnd(), 0), 1)
	return time.Duration(float64(base) * (1 + jitter*(2*r-1)))
}

func (p Policy) maxDelay() time.Duration {
	var longest time.Duration
	for _, d := range p.Delays {
		longest = max(longest, d)
	}
	return longest
}

// Outcome is what happens to a delivery after an attempt.
type Outcome int

const (
	// OutcomeSucceeded means the receiver accepted the delivery.
	OutcomeSucceeded Outcome = iota + 1
	// OutcomeRetry means another attempt is scheduled after Decision.Delay.
	OutcomeRetry
	// OutcomeFailed means the delivery is given up.
	OutcomeFailed
	// OutcomeGone means the receiver answered 410: the delivery fails and
	// the endpoint should be disabled.
	OutcomeGone
)

// String returns the outcome's lowercase name.
func (o Outcome) String() string {
	switch o {
	case OutcomeSucceeded:
		return "succeeded"
	case OutcomeRetry:
		return "retry"
	case OutcomeFailed:
		return "failed"
	case OutcomeGone:
		return "gone"
	}
	return fmt.Sprintf("Outcome(%d)", int(o))
}

// Decision is the verdict on one attempt.
type Decision struct {
	Outcome Outcome
	Delay   time.Duration
	// Error says what went wrong, for operators; empty on success.
	Error string
}

// Decide judges attempt number attempt (1-based) from its response or send
// error under policy p. rnd feeds the jitter; nil uses math/rand.
func Decide(attempt int, resp Response, sendErr error, p Policy, rnd func() float64) Decision {
	attempt = max(attempt, 1)
	if sendErr != nil {
		return decideErr(attempt, sendErr, p, rnd)
	}
	code := resp.StatusCode
	switch {
	case code >= 200 && code < 300:
		return Decision{Outcome: OutcomeSucceeded}
	case code == http.StatusGone:
		return Decision{Outcome: OutcomeGone, Error: "HTTP 410"}
	case code >= 300 && code < 400:
		return Decision{Outcome: OutcomeFailed, Error: redirectError(resp.Location)}
	case retryableStatus(code):
		why := fmt.Sprintf("HTTP %d", code)
		return retryOrExhaust(attempt, p, rnd, why, retryAfter(resp))
	}
	return Decision{Outcome: OutcomeFailed, Error: fmt.Sprintf("HTTP %d", code)}
}

func decideErr(attempt int, err error, p Policy, rnd func() float64) Decision {
	var se *SendError
	if errors.As(err, &se) && se.Kind == KindBlocked {
		// Retrying cannot help: the address will still be refused.
		return Decision{Outcome: OutcomeFailed, Error: err.Error()}
	}
	return retryOrExhaust(attempt, p, rnd, err.Error(), 0)
}

func retryableStatus(code int) bool {
	switch code {
	case http.StatusRequestTimeout, http.StatusTooEarly, http.StatusTooManyRequests:
		return true
	}
	return code >= 500 && code < 600
}

// retryAfter honours Retry-After only where the spec gives it meaning for
// a retry: rate limiting and temporary unavailability.
func retryAfter(resp Response) time.Duration {
	switch resp.StatusCode {
	case http.StatusTooManyRequests, http.StatusServiceUnavailable:
		return resp.RetryAfter
	}
	return 0
}

func retryOrExhaust(attempt int, p Policy, rnd func() float64, why string,
	hint time.Duration) Decision {
	if attempt >= p.MaxAttempts() {
		msg := fmt.Sprintf("exhausted after %d %s: %s", attempt, plural(attempt, "attempt"), why)
		return Decision{Outcome: OutcomeFailed, Error: msg}
	}
	// The receiver's hint may lengthen the wait but never beyond the
	// schedule, so one endpoint cannot park a delivery indefinitely.
	delay := max(p.Delay(attempt, rnd), min(hint, p.maxDelay()))
	return Decision{Outcome: OutcomeRetry, Delay: delay, Error: why}
}

func redirectError(location string) string {
	if location == "" {
		return "redirect without Location not followed"
	}
	if len(location) > maxLocationLen {
		location = strings.ToValidUTF8(location[:maxLocationLen], "") + "..."
	}
	return fmt.Sprintf("redirect to %s not followed", location)
}

// plural is noun, with an s unless n is 1.
func plural(n int, noun string) string {
	if n == 1 {
		return noun
	}
	return noun + "s"
}
