// Package config holds hookrelay's settings. Each setting is a flag with an
// environment fallback (HOOKRELAY_BATCH_SIZE is --batch-size); a flag given on
// the command line wins over the environment, which wins over the default.
package config

import (
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/internal/dispatch"
)

// Default values of the settings that several commands share.
const (
	DefaultNATSURL     = "nats://127.0.0.1:4222"
	DefaultDatabaseURL = "postgres://postgres@127.0.0.1:5432/hookrelay?sslmode=disable"
	DefaultPrefix      = "hookrelay"
)

// ErrInvalid is wrapped by every configuration error.
var ErrInvalid = errors.New("invalid configuration")

// FieldError names the setting that is wrong.
type FieldError struct {
	Setting string // the flag name, such as "batch-size"
	Env     string // its environment variable, such as "HOOKRELAY_BATCH_SIZE"
	Reason  string
}

// Error implements error.
func (e *FieldError) Error() string {
	return fmt.Sprintf("--%s (%s): %s", e.Setting, e.Env, e.Reason)
}

// Unwrap lets errors.Is match ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// Binder registers flags whose defaults come from the environment.
type Binder struct {
	fs   *flag.FlagSet
	envs map[string]string
	errs []error
}

// NewBinder binds flags on fs.
func NewBinder(fs *flag.FlagSet) *Binder {
	return &Binder{fs: fs, envs: map[string]string{}}
}

// Env is the environment variable of a flag name.
func (b *Binder) Env(name string) string { return b.envs[name] }

// Err reports environment values that could not be parsed.
func (b *Binder) Err() error { return errors.Join(b.errs...) }

func (b *Binder) lookup(name, env, usage string) (string, bool, string) {
	b.envs[name] = env
	v, ok := os.LookupEnv(env)
	return v, ok && v != "", fmt.Sprintf("%s (env %s)", usage, env)
}

// String binds a string setting.
func (b *Binder) String(p *string, name, env, def, usage string) {
	v, ok, u := b.lookup(name, env, usage)
	if ok {
		def = v
	}
	b.fs.StringVar(p, name, def, u)
}

// Int binds an integer setting.
func (b *Binder) Int(p *int, name, env string, def int, usage string) {
	v, ok, u := b.lookup(name, env, usage)
	if ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			b.errs = append(b.errs, &FieldError{name, env, fmt.Sprintf("%q is not an integer", v)})
		} else {
			def = n
		}
	}
	b.fs.IntVar(p, name, def, u)
}

// Duration binds a duration setting written as a Go duration ("5ms", "15s").
func (b *Binder) Duration(p *time.Duration, name, env string, def time.Duration, usage string) {
	v, ok, u := b.lookup(name, env, usage)
	if ok {
		d, err := time.ParseDuration(strings.TrimSpace(v))
		if err != nil {
			b.errs = append(b.errs, &FieldError{name, env, fmt.Sprintf("%q is not a duration", v)})
		} else {
			def = d
		}
	}
	b.fs.DurationVar(p, name, def, u)
}

// Bool binds a boolean setting.
func (b *Binder) Bool(p *bool, name, env string, def bool, usage string) {
	v, ok, u := b.lookup(name, env, usage)
	if ok {
		x, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			b.errs = append(b.errs, &FieldError{name, env, fmt.Sprintf("%q is not a boolean", v)})
		} else {
			def = x
		}
	}
	b.fs.BoolVar(p, name, def, u)
}

// Fail makes a FieldError for the flag name.
func (b *Binder) Fail(name, format string, args ...any) error {
	return &FieldError{Setting: name, Env: b.envs[name], Reason: fmt.Sprintf(format, args...)}
}

// Consumer is the configuration of the consumer daemon.
type Consumer struct {
	// NATSURL is the NATS server to use; default nats://127.0.0.1:4222.
	NATSURL string
	// DatabaseURL is the PostgreSQL database, created when missing.
	DatabaseURL string
	// HTTPAddr is where the admin API, health checks and metrics listen;
	// default 127.0.0.1:8080.
	HTTPAddr string
	// APIToken, when set, is the bearer token the admin API requires. Unset,
	// the API refuses to listen beyond loopback.
	APIToken string
	// AllowCIDRs are private networks endpoints may reach, comma-separated;
	// default none.
	AllowCIDRs string
	// RetrySchedule is one Go duration per retry, comma-separated; default
	// 5s,5m,30m,2h,5h,10h,10h. Attempts are retries + 1.
	RetrySchedule string
	// RequestTimeout is the deadline of a whole attempt; default 15s.
	RequestTimeout time.Duration
	// Concurrency is the most attempts in flight per process; default 64.
	Concurrency int
	// EndpointConcurrency is the most attempts in flight per endpoint per
	// process; default 16.
	EndpointConcurrency int
	// BatchSize is the most messages taken as one batch; default 100.
	BatchSize int
	// BatchTimeout is the longest wait for a batch to fill; default 5ms.
	// The fan-out stage's history records collect for four times as long.
	BatchTimeout time.Duration
	// MaxEventBytes is the size limit of an event; default 262144.
	MaxEventBytes int
	// ResponseBodyLimit is the bytes of a response body stored per attempt;
	// default 16384.
	ResponseBodyLimit int
	// Retention is how long delivery history is kept; default 720h.
	Retention time.Duration
	// SecretKey, base64 of 32 bytes, encrypts endpoint secrets at rest when
	// set.
	SecretKey string
	// Prefix names subjects and streams; default hookrelay.
	Prefix string
	// Replicas is the stream replica count; default 1.
	Replicas int
	// DisableAfter is how long an endpoint may keep failing, without one
	// success, before it is disabled; default 120h, 0 never disables.
	DisableAfter time.Duration
	// SecretGrace is how long a rotated-out secret keeps signing; default
	// 24h.
	SecretGrace time.Duration
	// ShutdownTimeout is how long in-flight attempts may finish on SIGTERM;
	// default 10s.
	ShutdownTimeout time.Duration
	// PprofAddr, when set, serves Go's profiler (net/http/pprof) on this
	// loopback address; default unset (off).
	PprofAddr string
	// LogFormat is json (default) or console.
	LogFormat string
	// LogLevel is debug, info (default), warn or error.
	LogLevel string
}

// Bind registers the consumer's flags on b.
func (c *Consumer) Bind(b *Binder) {
	b.String(&c.NATSURL, "nats-url", "NATS_URL", DefaultNATSURL, "NATS server URL")
	b.String(&c.DatabaseURL, "database-url", "DATABASE_URL", DefaultDatabaseURL,
		"PostgreSQL URL; the database is created when missing")
	b.String(&c.HTTPAddr, "http-addr", "HOOKRELAY_HTTP_ADDR", "127.0.0.1:8080",
		"listen address of the admin API, health checks and metrics")
	b.String(&c.APIToken, "api-token", "HOOKRELAY_API_TOKEN", "",
		"bearer token of the admin API; unset, the API listens on loopback only")
	b.String(&c.AllowCIDRs, "allow-cidrs", "HOOKRELAY_ALLOW_CIDRS", "",
		"comma-separated private CIDRs that endpoints may reach (e.g. 127.0.0.0/8)")
	b.String(&c.RetrySchedule, "retry-schedule", "HOOKRELAY_RETRY_SCHEDULE",
		"5s,5m,30m,2h,5h,10h,10h", "delay before each retry; attempts = retries + 1")
	b.Duration(&c.RequestTimeout, "request-timeout", "HOOKRELAY_REQUEST_TIMEOUT",
		15*time.Second, "deadline of a whole attempt")
	c.bindTuning(b)
}

func (c *Consumer) bindTuning(b *Binder) {
	b.Int(&c.Concurrency, "concurrency", "HOOKRELAY_CONCURRENCY", 64,
		"attempts in flight per process")
	b.Int(&c.EndpointConcurrency, "endpoint-concurrency", "HOOKRELAY_ENDPOINT_CONCURRENCY", 16,
		"attempts in flight per endpoint per process")
	b.Int(&c.BatchSize, "batch-size", "HOOKRELAY_BATCH_SIZE", 100, "messages per batch")
	b.Duration(&c.BatchTimeout, "batch-timeout", "HOOKRELAY_BATCH_TIMEOUT", 5*time.Millisecond,
		"longest wait for a batch to fill")
	b.Int(&c.MaxEventBytes, "max-event-bytes", "HOOKRELAY_MAX_EVENT_BYTES", 262144,
		"size limit of one event")
	b.Int(&c.ResponseBodyLimit, "response-body-limit", "HOOKRELAY_RESPONSE_BODY_LIMIT", 16384,
		"response body bytes stored per attempt")
	b.Duration(&c.Retention, "retention", "HOOKRELAY_RETENTION", 720*time.Hour,
		"how long delivery history is kept")
	b.String(&c.SecretKey, "secret-key", "HOOKRELAY_SECRET_KEY", "",
		"base64 of 32 bytes: encrypt endpoint secrets at rest")
	b.String(&c.Prefix, "prefix", "HOOKRELAY_PREFIX", DefaultPrefix,
		"subject prefix and stream name prefix")
	b.Int(&c.Replicas, "replicas", "HOOKRELAY_REPLICAS", 1, "stream replica count")
	b.Duration(&c.DisableAfter, "disable-after", "HOOKRELAY_DISABLE_AFTER", 120*time.Hour,
		"disable an endpoint failing for this long without a success (0: never)")
	b.Duration(&c.SecretGrace, "secret-grace", "HOOKRELAY_SECRET_GRACE", 24*time.Hour,
		"how long a rotated-out secret keeps signing")
	b.Duration(&c.ShutdownTimeout, "shutdown-timeout", "HOOKRELAY_SHUTDOWN_TIMEOUT",
		10*time.Second, "time in-flight attempts get to finish on SIGTERM")
	b.String(&c.PprofAddr, "pprof-addr", "HOOKRELAY_PPROF_ADDR", "",
		"serve Go's profiler on this loopback address (off when empty)")
	b.String(&c.LogFormat, "log-format", "HOOKRELAY_LOG_FORMAT", "json", "json or console")
	b.String(&c.LogLevel, "log-level", "HOOKRELAY_LOG_LEVEL", "info",
		"debug, info, warn or error")
}

// Validate checks every setting and names the first that is wrong.
func (c *Consumer) Validate(b *Binder) error {
	if err := b.Err(); err != nil {
		return err
	}
	checks := []struct {
		name string
		bad  bool
		why  string
	}{
		{"nats-url", c.NATSURL == "", "must not be empty"},
		{"database-url", c.DatabaseURL == "", "must not be empty"},
		{"http-addr", c.HTTPAddr == "", "must not be empty"},
		{"request-timeout", c.RequestTimeout <= 0 || c.RequestTimeout > 5*time.Minute,
			"must be positive and at most 5m"},
		{"api-token", c.APIToken != "" && len(strings.TrimSpace(c.APIToken)) < 16,
			"must be at least 16 characters when set"},
		{"concurrency", c.Concurrency < 1, "must be at least 1"},
		{"endpoint-concurrency", c.EndpointConcurrency < 1, "must be at least 1"},
		{"batch-size", c.BatchSize < 1 || c.BatchSize > 10000, "must be 1–10000"},
		{"batch-timeout", c.BatchTimeout <= 0, "must be positive"},
		{"max-event-bytes", c.MaxEventBytes < 1024 || c.MaxEventBytes > 1<<20,
			"must be from 1024 to 1048576 (NATS's default largest message)"},
		{"response-body-limit", c.ResponseBodyLimit < 0, "must not be negative"},
		{"retention", c.Retention < time.Hour, "must be at least 1h"},
		{"prefix", !ValidPrefix(c.Prefix), PrefixRule},
		{"replicas", c.Replicas < 1 || c.Replicas > 5, "must be 1–5"},
		{"shutdown-timeout", c.ShutdownTimeout < 0, "must not be negative"},
		{"disable-after", c.DisableAfter < 0, "must not be negative"},
		{"secret-grace", c.SecretGrace < 0, "must not be negative"},
		{"log-format", c.LogFormat != "json" && c.LogFormat != "console", "must be json or console"},
	}
	for _, ch := range checks {
		if ch.bad {
			return b.Fail(ch.name, "%s", ch.why)
		}
	}
	return c.validateValues(b)
}

// validateValues checks the settings whose values have a syntax of their
// own, so that every bad setting is refused before anything starts.
func (c *Consumer) validateValues(b *Binder) error {
	checks := []struct {
		name  string
		check func() error
	}{
		{"allow-cidrs", func() error { return checkAllow(c.AllowCIDRs) }},
		{"retry-schedule", func() error { return checkSchedule(c.RetrySchedule) }},
		{"secret-key", func() error { return checkKey(c.SecretKey) }},
		{"http-addr", func() error { return checkListen(c.HTTPAddr, c.APIToken != "") }},
		{"pprof-addr", func() error { return checkPprof(c.PprofAddr) }},
	}
	for _, ch := range checks {
		if err := ch.check(); err != nil {
			return b.Fail(ch.name, "%v", err)
		}
	}
	return nil
}

// checkAllow refuses allow lists that would switch the address guard off:
// no private network is wider than an IPv4 /8 or the IPv6 unique-local /7.
func checkAllow(s string) error {
	entries, err := dispatch.ParseAllowList(s)
	if err != nil {
		return err
	}
	// IPv4-mapped prefixes come back in their IPv4 form, so
	// ::ffff:0:0/96 is checked as the 0.0.0.0/0 it allows.
	for _, entry := range entries {
		p, name := entry.Prefix, entry.Written
		if name != p.String() {
			name = fmt.Sprintf("%s (that is, %s)", name, p)
		}
		if (p.Addr().Is4() && p.Bits() < 8) || (p.Addr().Is6() && p.Bits() < 7) {
			return fmt.Errorf("%s is wider than any private network and would turn the "+
				"guard off; list the networks you mean", name)
		}
		for _, e := range ipv4Embeddings {
			if p.Overlaps(e.prefix) && p.Bits() < e.at+8 {
				return fmt.Errorf("%s allows more than an IPv4 /8 through %s (%s), which "+
					"would turn the guard off; list the networks you mean", name, e.name, e.prefix)
			}
		}
	}
	return nil
}

// ipv4Embeddings are the IPv6 ranges that carry an IPv4 address from bit
// at on: allowing a wide part of one allows every IPv4 network it embeds.
var ipv4Embeddings = []struct {
	name   string
	prefix netip.Prefix
	at     int
}{
	{"IPv4-compatible addresses", netip.MustParsePrefix("::/96"), 96},
	{"NAT64", netip.MustParsePrefix("64:ff9b::/96"), 96},
	{"local-use NAT64", netip.MustParsePrefix("64:ff9b:1::/48"), 48},
	{"6to4", netip.MustParsePrefix("2002::/16"), 16},
	{"Teredo", netip.MustParsePrefix("2001::/32"), 32},
}

func checkSchedule(s string) error {
	delays, err := dispatch.ParseSchedule(s)
	if err != nil {
		return err
	}
	for _, d := range delays {
		if d > dispatch.MaxRetryDelay {
			return fmt.Errorf("delay %s is longer than %s", d, dispatch.MaxRetryDelay)
		}
	}
	return nil
}

func checkKey(key string) error {
	if key == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != 32 {
		return errors.New("must be the base64 of 32 bytes (head -c 32 /dev/urandom | base64)")
	}
	return nil
}

// checkListen refuses an admin API reachable beyond loopback without a token.
func checkListen(addr string, token bool) error {
	loopback, err := isLoopback(addr)
	if err != nil || loopback || token {
		return err
	}
	return fmt.Errorf("%q is not loopback: set HOOKRELAY_API_TOKEN to expose the admin API", addr)
}

func checkPprof(addr string) error {
	if addr == "" {
		return nil
	}
	loopback, err := isLoopback(addr)
	if err == nil && !loopback {
		err = fmt.Errorf("%q must be a loopback address", addr)
	}
	return err
}

func isLoopback(addr string) (bool, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false, fmt.Errorf("%q is not host:port", addr)
	}
	ip := net.ParseIP(host)
	return host == "localhost" || (ip != nil && ip.IsLoopback()), nil
}

// PrefixRule says which prefixes ValidPrefix accepts.
const PrefixRule = "must be 1–64 letters, digits, - and _"

// ValidPrefix reports whether p can prefix subjects and stream names.
// Stream names are the prefix upper-cased (hookrelay → HOOKRELAY_EVENTS):
// two prefixes that differ only in case name the same streams, which
// stream.EnsureStream and stream.CreateStreamIfMissing refuse to share.
func ValidPrefix(p string) bool {
	if p == "" || len(p) > 64 {
		return false
	}
	for _, r := range p {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			r == '-' || r == '_'
		if !ok {
			return false
		}
	}
	return true
}
