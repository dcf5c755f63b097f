package dispatch

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

func half() float64 { return 0.5 } // jitter factor 1: delays come out exact

func TestDecide(t *testing.T) {
	t.Parallel()
	delays := []time.Duration{time.Second, 10 * time.Second, 100 * time.Second}
	p := Policy{Delays: delays, Jitter: 0.2}
	timeout := &SendError{Kind: KindTimeout, Err: &timeoutError{after: 15 * time.Second}}
	refused := &SendError{Kind: KindConnect, Err: errors.New("connection refused")}
	blocked := &SendError{Kind: KindBlocked, Err: &BlockedError{Reason: "loopback"}}
	other := &SendError{Kind: KindOther, Err: errors.New("malformed response")}
	st := func(code int) Response { return Response{StatusCode: code} }
	ra := func(code int, d time.Duration) Response {
		return Response{StatusCode: code, RetryAfter: d}
	}
	tests := []struct {
		name    string
		attempt int
		resp    Response
		err     error
		want    Decision
	}{
		{"200 succeeds", 1, st(200), nil, Decision{Outcome: OutcomeSucceeded}},
		{"204 succeeds", 1, st(204), nil, Decision{Outcome: OutcomeSucceeded}},
		{"299 succeeds", 4, st(299), nil, Decision{Outcome: OutcomeSucceeded}},
		{"410 is gone", 1, st(410), nil, Decision{Outcome: OutcomeGone, Error: "HTTP 410"}},
		{"301 fails naming the target", 1,
			Response{StatusCode: 301, Location: "https://x.example/new"}, nil,
			failed("redirect to https://x.example/new not followed")},
		{"302 without location fails", 1, st(302), nil,
			failed("redirect without Location not followed")},
		{"400 fails", 1, st(400), nil, failed("HTTP 400")},
		{"401 fails", 1, st(401), nil, failed("HTTP 401")},
		{"404 fails", 1, st(404), nil, failed("HTTP 404")},
		{"422 fails", 1, st(422), nil, failed("HTTP 422")},
		{"1xx fails", 1, st(100), nil, failed("HTTP 100")},
		{"600 fails", 1, st(600), nil, failed("HTTP 600")},
		{"408 retries", 1, st(408), nil, retry(time.Second, "HTTP 408")},
		{"425 retries", 2, st(425), nil, retry(10*time.Second, "HTTP 425")},
		{"429 retries", 3, st(429), nil, retry(100*time.Second, "HTTP 429")},
		{"500 retries", 1, st(500), nil, retry(time.Second, "HTTP 500")},
		{"502 retries", 1, st(502), nil, retry(time.Second, "HTTP 502")},
		{"503 retries", 1, st(503), nil, retry(time.Second, "HTTP 503")},
		{"599 retries", 1, st(599), nil, retry(time.Second, "HTTP 599")},
		{"attempt 0 counts as the first", 0, st(500), nil, retry(time.Second, "HTTP 500")},
		{"503 on the last attempt is exhausted", 4, st(503), nil,
			failed("exhausted after 4 attempts: HTTP 503")},
		{"429 retry-after longer than the delay wins", 1, ra(429, 50*time.Second), nil,
			retry(50*time.Second, "HTTP 429")},
		{"503 retry-after is bounded by the schedule", 1, ra(503, time.Hour), nil,
			retry(100*time.Second, "HTTP 503")},
		{"503 retry-after shorter than the delay loses", 2, ra(503, time.Second), nil,
			retry(10*time.Second, "HTTP 503")},
		{"500 retry-after is ignored", 1, ra(500, 50*time.Second), nil,
			retry(time.Second, "HTTP 500")},
		{"blocked fails at once", 1, Response{}, blocked,
			failed("address invalid IP blocked: loopback")},
		{"timeout retries", 1, Response{}, timeout, retry(time.Second, "timeout after 15s")},
		{"connect failure retries", 2, Response{}, refused,
			retry(10*time.Second, "connection refused")},
		{"other failure retries", 1, Response{}, other, retry(time.Second, "malformed response")},
		{"plain error retries", 1, Response{}, errors.New("boom"), retry(time.Second, "boom")},
		{"timeout on the last attempt is exhausted", 4, Response{}, timeout,
			failed("exhausted after 4 attempts: timeout after 15s")},
		{"error with a status still uses the error", 1, st(200), refused,
			retry(time.Second, "connection refused")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := Decide(tt.attempt, tt.resp, tt.err, p, half); got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func failed(msg string) Decision { return Decision{Outcome: OutcomeFailed, Error: msg} }

func retry(d time.Duration, msg string) Decision {
	return Decision{Outcome: OutcomeRetry, Delay: d, Error: msg}
}

func TestDecideTruncatesLongLocation(t *testing.T) {
	t.Parallel()
	loc := "https://x.example/" + strings.Repeat("a", 1000)
	d := Decide(1, Response{StatusCode: 307, Location: loc}, nil, DefaultPolicy(), half)
	if len(d.Error) > 300 {
		t.Errorf("error is %d bytes long", len(d.Error))
	}
}

func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	p := DefaultPolicy()
	want := []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute,
		2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}
	if !reflect.DeepEqual(p.Delays, want) || p.Jitter != 0.2 || p.MaxAttempts() != 8 {
		t.Errorf("got %+v (max attempts %d)", p, p.MaxAttempts())
	}
}

func TestPolicyDelay(t *testing.T) {
	t.Parallel()
	p := Policy{Delays: []time.Duration{10 * time.Second, 100 * time.Second}, Jitter: 0.2}
	tests := []struct {
		name  string
		p     Policy
		retry int
		rnd   float64
		want  time.Duration
	}{
		{"middle random is exact", p, 1, 0.5, 10 * time.Second},
		{"low random shortens by the jitter", p, 1, 0, 8 * time.Second},
		{"high random lengthens by the jitter", p, 2, 1, 120 * time.Second},
		{"retries past the schedule reuse the last delay", p, 9, 0.5, 100 * time.Second},
		{"retry 0 uses the first delay", p, 0, 0.5, 10 * time.Second},
		{"an empty schedule waits nothing", Policy{}, 1, 0.5, 0},
		{"zero jitter ignores the random", Policy{Delays: p.Delays}, 1, 0, 10 * time.Second},
		{"out-of-range random is clamped", p, 1, 7, 12 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got := tt.p.Delay(tt.retry, func() float64 { return tt.rnd })
			if got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestPolicyDelayWithDefaultRandomStaysInBounds(t *testing.T) {
	t.Parallel()
	p := Policy{Delays: []time.Duration{time.Minute}, Jitter: 0.2}
	for range 1000 {
		if d := p.Delay(1, nil); d < 48*time.Second || d > 72*time.Second {
			t.Fatalf("delay %v outside ±20%% of 1m", d)
		}
	}
}

func TestParseSchedule(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []time.Duration
		bad  string
	}{
		{"empty means no retries", "", nil, ""},
		{"items are trimmed", " 5s, 1m ,2h",
			[]time.Duration{5 * time.Second, time.Minute, 2 * time.Hour}, ""},
		{"zero is allowed", "0s", []time.Duration{0}, ""},
		{"garbage names the item", "5s,soon", nil, "soon"},
		{"a missing unit names the item", "5", nil, `"5"`},
		{"an empty item is refused", "5s,,1m", nil, `""`},
		{"negative names the item", "5s,-1m", nil, "-1m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseSchedule(tt.in)
			if tt.bad != "" {
				if !errors.Is(err, ErrInvalidSchedule) || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("err = %v, want ErrInvalidSchedule naming %s", err, tt.bad)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestExponentialPolicy(t *testing.T) {
	t.Parallel()
	s := time.Second
	tests := []struct {
		name        string
		base        time.Duration
		mult        float64
		maxDelay    time.Duration
		maxAttempts int
		want        []time.Duration
	}{
		{"doubles from the base", s, 2, time.Hour, 5, []time.Duration{s, 2 * s, 4 * s, 8 * s}},
		{"caps at the max delay", s, 10, 50 * s, 4, []time.Duration{s, 10 * s, 50 * s}},
		{"one attempt has no retries", s, 2, time.Hour, 1, []time.Duration{}},
		{"zero attempts has no retries", s, 2, time.Hour, 0, []time.Duration{}},
		{"a multiplier below 1 is constant", s, 0.5, 0, 3, []time.Duration{s, s}},
		{"no cap does not overflow", time.Hour, 1e6, 0, 5,
			[]time.Duration{time.Hour, 1e6 * time.Hour, 1 << 62, 1 << 62}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := ExponentialPolicy(tt.base, tt.mult, tt.maxDelay, tt.maxAttempts)
			if !reflect.DeepEqual(p.Delays, tt.want) {
				t.Errorf("delays %v, want %v", p.Delays, tt.want)
			}
			if want := max(tt.maxAttempts, 1); p.MaxAttempts() != want {
				t.Errorf("max attempts %d, want %d", p.MaxAttempts(), want)
			}
		})
	}
}

func TestOutcomeString(t *testing.T) {
	t.Parallel()
	want := map[Outcome]string{
		OutcomeSucceeded: "succeeded", OutcomeRetry: "retry", OutcomeFailed: "failed",
		OutcomeGone: "gone", Outcome(0): "Outcome(0)",
	}
	for o, s := range want {
		t.Run(fmt.Sprintf("%d is %s", int(o), s), func(t *testing.T) {
			t.Parallel()
			if o.String() != s {
				t.Errorf("got %q", o.String())
			}
		})
	}
}

func TestKindString(t *testing.T) {
	t.Parallel()
	want := map[Kind]string{
		KindBlocked: "blocked", KindTimeout: "timeout", KindConnect: "connect", KindOther: "other",
	}
	for k, s := range want {
		if k.String() != s {
			t.Errorf("Kind(%d) = %q, want %q", int(k), k.String(), s)
		}
	}
}

func TestDecideWithoutRetriesSaysOneAttempt(t *testing.T) {
	t.Parallel()
	d := Decide(1, Response{StatusCode: 503}, nil, Policy{}, half)
	if want := failed("exhausted after 1 attempt: HTTP 503"); d != want {
		t.Errorf("got %+v, want %+v", d, want)
	}
}
