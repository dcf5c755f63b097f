package config_test

import (
	"errors"
	"flag"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
)

// consumerEnv maps each consumer flag to its environment variable, as
// DESIGN.md's Configuration section names them (disable-after, secret-grace,
// shutdown-timeout and the log settings follow the same rule).
var consumerEnv = map[string]string{
	"nats-url":             "NATS_URL",
	"database-url":         "DATABASE_URL",
	"http-addr":            "HOOKRELAY_HTTP_ADDR",
	"api-token":            "HOOKRELAY_API_TOKEN",
	"allow-cidrs":          "HOOKRELAY_ALLOW_CIDRS",
	"retry-schedule":       "HOOKRELAY_RETRY_SCHEDULE",
	"request-timeout":      "HOOKRELAY_REQUEST_TIMEOUT",
	"concurrency":          "HOOKRELAY_CONCURRENCY",
	"endpoint-concurrency": "HOOKRELAY_ENDPOINT_CONCURRENCY",
	"batch-size":           "HOOKRELAY_BATCH_SIZE",
	"batch-timeout":        "HOOKRELAY_BATCH_TIMEOUT",
	"max-event-bytes":      "HOOKRELAY_MAX_EVENT_BYTES",
	"response-body-limit":  "HOOKRELAY_RESPONSE_BODY_LIMIT",
	"retention":            "HOOKRELAY_RETENTION",
	"secret-key":           "HOOKRELAY_SECRET_KEY",
	"prefix":               "HOOKRELAY_PREFIX",
	"replicas":             "HOOKRELAY_REPLICAS",
	"disable-after":        "HOOKRELAY_DISABLE_AFTER",
	"secret-grace":         "HOOKRELAY_SECRET_GRACE",
	"shutdown-timeout":     "HOOKRELAY_SHUTDOWN_TIMEOUT",
	"pprof-addr":           "HOOKRELAY_PPROF_ADDR",
	"log-format":           "HOOKRELAY_LOG_FORMAT",
	"log-level":            "HOOKRELAY_LOG_LEVEL",
}

// clearConsumerEnv empties every consumer variable for the test; an empty
// variable counts as unset. The test and its ancestors must not be parallel
// (its subtests may be).
func clearConsumerEnv(t *testing.T) {
	t.Helper()
	for _, env := range consumerEnv {
		t.Setenv(env, "")
	}
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	return fs
}

// consumer binds a consumer on a fresh flag set and parses args.
func consumer(t *testing.T, args ...string) (*config.Consumer, *config.Binder) {
	t.Helper()
	fs := newFlagSet()
	b := config.NewBinder(fs)
	var c config.Consumer
	c.Bind(b)
	if err := fs.Parse(args); err != nil {
		t.Fatalf("Parse(%q): %v", args, err)
	}
	return &c, b
}

// wantFieldError fails unless err is, or joins, a *FieldError for setting
// and its variable env.
func wantFieldError(t *testing.T, err error, setting, env string) *config.FieldError {
	t.Helper()
	if err == nil {
		t.Fatalf("no error; want one naming --%s", setting)
	}
	if !errors.Is(err, config.ErrInvalid) {
		t.Errorf("errors.Is(%v, ErrInvalid) = false", err)
	}
	for _, e := range flatten(err) {
		var fe *config.FieldError
		if errors.As(e, &fe) && fe.Setting == setting {
			if fe.Env != env {
				t.Errorf("error %q names variable %q; want %q", fe, fe.Env, env)
			}
			if fe.Reason == "" {
				t.Errorf("error %q gives no reason", fe)
			}
			want := "--" + setting + " (" + env + "): "
			if !strings.HasPrefix(fe.Error(), want) {
				t.Errorf("message %q does not start with %q", fe, want)
			}
			return fe
		}
	}
	t.Fatalf("error %q does not name --%s", err, setting)
	return nil
}

// flatten lists the errors that err joins, or err itself.
func flatten(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, flatten(e)...)
		}
		return out
	}
	return []error{err}
}

func TestConsumerDefaults(t *testing.T) {
	clearConsumerEnv(t)
	fs := newFlagSet()
	b := config.NewBinder(fs)
	var c config.Consumer
	c.Bind(b)
	if err := fs.Parse(nil); err != nil {
		t.Fatal(err)
	}

	t.Run("every setting has the default of the design", func(t *testing.T) {
		want := config.Consumer{
			NATSURL:             "nats://127.0.0.1:4222",
			DatabaseURL:         "postgres://postgres@127.0.0.1:5432/hookrelay?sslmode=disable",
			HTTPAddr:            "127.0.0.1:8080",
			RetrySchedule:       "5s,5m,30m,2h,5h,10h,10h",
			RequestTimeout:      15 * time.Second,
			Concurrency:         64,
			EndpointConcurrency: 16,
			BatchSize:           100,
			BatchTimeout:        5 * time.Millisecond,
			MaxEventBytes:       262144,
			ResponseBodyLimit:   16384,
			Retention:           720 * time.Hour,
			Prefix:              "hookrelay",
			Replicas:            1,
			DisableAfter:        120 * time.Hour,
			SecretGrace:         24 * time.Hour,
			ShutdownTimeout:     10 * time.Second,
			LogFormat:           "json",
			LogLevel:            "info",
		}
		if c != want {
			t.Errorf("defaults\n got %+v\nwant %+v", c, want)
		}
	})
	t.Run("the defaults are valid", func(t *testing.T) {
		if err := c.Validate(b); err != nil {
			t.Error(err)
		}
	})
	t.Run("every flag has the variable of the design", func(t *testing.T) {
		n := 0
		fs.VisitAll(func(f *flag.Flag) {
			n++
			env, ok := consumerEnv[f.Name]
			if !ok {
				t.Errorf("flag --%s is not in the list of settings", f.Name)
				return
			}
			if got := b.Env(f.Name); got != env {
				t.Errorf("--%s has variable %q; want %q", f.Name, got, env)
			}
			if !strings.Contains(f.Usage, "env "+env) {
				t.Errorf("usage of --%s, %q, does not name %s", f.Name, f.Usage, env)
			}
		})
		if n != len(consumerEnv) {
			t.Errorf("%d flags; want %d", n, len(consumerEnv))
		}
	})
}

func TestConsumerEnvironment(t *testing.T) {
	clearConsumerEnv(t)
	values := map[string]string{
		"NATS_URL":                       "nats://nats.internal:4222",
		"DATABASE_URL":                   "postgres://db/hr",
		"HOOKRELAY_HTTP_ADDR":            "0.0.0.0:9090",
		"HOOKRELAY_API_TOKEN":            "tok-0123456789abcdef",
		"HOOKRELAY_ALLOW_CIDRS":          "127.0.0.0/8",
		"HOOKRELAY_RETRY_SCHEDULE":       "1s,2s",
		"HOOKRELAY_REQUEST_TIMEOUT":      "3s",
		"HOOKRELAY_CONCURRENCY":          "8",
		"HOOKRELAY_ENDPOINT_CONCURRENCY": "2",
		"HOOKRELAY_BATCH_SIZE":           " 250 ",
		"HOOKRELAY_BATCH_TIMEOUT":        "20ms",
		"HOOKRELAY_MAX_EVENT_BYTES":      "2048",
		"HOOKRELAY_RESPONSE_BODY_LIMIT":  "0",
		"HOOKRELAY_RETENTION":            "24h",
		"HOOKRELAY_SECRET_KEY":           "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
		"HOOKRELAY_PREFIX":               "hr-test",
		"HOOKRELAY_REPLICAS":             "3",
		"HOOKRELAY_DISABLE_AFTER":        "0s",
		"HOOKRELAY_SECRET_GRACE":         "1h",
		"HOOKRELAY_SHUTDOWN_TIMEOUT":     "0s",
		"HOOKRELAY_LOG_FORMAT":           "console",
		"HOOKRELAY_LOG_LEVEL":            "debug",
	}
	for env, v := range values {
		t.Setenv(env, v)
	}
	fromEnv := config.Consumer{
		NATSURL: "nats://nats.internal:4222", DatabaseURL: "postgres://db/hr",
		HTTPAddr: "0.0.0.0:9090", APIToken: "tok-0123456789abcdef", AllowCIDRs: "127.0.0.0/8",
		RetrySchedule: "1s,2s", RequestTimeout: 3 * time.Second, Concurrency: 8,
		EndpointConcurrency: 2, BatchSize: 250, BatchTimeout: 20 * time.Millisecond,
		MaxEventBytes: 2048, ResponseBodyLimit: 0, Retention: 24 * time.Hour,
		SecretKey: "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=", Prefix: "hr-test", Replicas: 3, DisableAfter: 0,
		SecretGrace: time.Hour, ShutdownTimeout: 0,
		LogFormat: "console", LogLevel: "debug",
	}
	tests := []struct {
		name string
		args []string
		want func(c *config.Consumer)
	}{
		{"every variable is used when its flag is absent", nil, func(*config.Consumer) {}},
		{"flags win over the variables", []string{
			"--nats-url=nats://flag:4222", "--batch-size=7", "--batch-timeout=1ms",
			"--retention=2h", "--log-format=json", "--prefix=flag",
		}, func(c *config.Consumer) {
			c.NATSURL, c.BatchSize, c.BatchTimeout = "nats://flag:4222", 7, time.Millisecond
			c.Retention, c.LogFormat, c.Prefix = 2*time.Hour, "json", "flag"
		}},
		{"an empty flag wins over a variable", []string{"--api-token=",
			"--http-addr=127.0.0.1:9090"}, func(c *config.Consumer) {
			c.APIToken, c.HTTPAddr = "", "127.0.0.1:9090"
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, b := consumer(t, tt.args...)
			want := fromEnv
			tt.want(&want)
			if *c != want {
				t.Errorf("\n got %+v\nwant %+v", *c, want)
			}
			if err := c.Validate(b); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestConsumerValidate(t *testing.T) {
	clearConsumerEnv(t)
	tests := []struct {
		name    string
		args    []string
		setting string // the setting the error names; empty for none
	}{
		{"an empty NATS URL is named", []string{"--nats-url="}, "nats-url"},
		{"an empty database URL is named", []string{"--database-url="}, "database-url"},
		{"an empty HTTP address is named", []string{"--http-addr="}, "http-addr"},
		{"a zero request timeout is named", []string{"--request-timeout=0s"}, "request-timeout"},
		{"a negative request timeout is named", []string{"--request-timeout=-1s"}, "request-timeout"},
		{"a request timeout of 1ns is valid", []string{"--request-timeout=1ns"}, ""},
		{"zero concurrency is named", []string{"--concurrency=0"}, "concurrency"},
		{"concurrency 1 is valid", []string{"--concurrency=1"}, ""},
		{"zero endpoint concurrency is named", []string{"--endpoint-concurrency=0"}, "endpoint-concurrency"},
		{"negative endpoint concurrency is named", []string{"--endpoint-concurrency=-4"}, "endpoint-concurrency"},
		{"batch size 0 is named", []string{"--batch-size=0"}, "batch-size"},
		{"batch size 10001 is named", []string{"--batch-size=10001"}, "batch-size"},
		{"batch size 1 is valid", []string{"--batch-size=1"}, ""},
		{"batch size 10000 is valid", []string{"--batch-size=10000"}, ""},
		{"a zero batch timeout is named", []string{"--batch-timeout=0s"}, "batch-timeout"},
		{"max event bytes 1023 is named", []string{"--max-event-bytes=1023"}, "max-event-bytes"},
		{"max event bytes 1024 is valid", []string{"--max-event-bytes=1024"}, ""},
		{"a negative response body limit is named", []string{"--response-body-limit=-1"}, "response-body-limit"},
		{"a zero response body limit is valid", []string{"--response-body-limit=0"}, ""},
		{"retention under an hour is named", []string{"--retention=59m59s"}, "retention"},
		{"retention of one hour is valid", []string{"--retention=1h"}, ""},
		{"an empty prefix is named", []string{"--prefix="}, "prefix"},
		{"a prefix with a dot is named", []string{"--prefix=hook.relay"}, "prefix"},
		{"a prefix with a wildcard is named", []string{"--prefix=hook*"}, "prefix"},
		{"a prefix with a space is named", []string{"--prefix=hook relay"}, "prefix"},
		{"a prefix with a non-ASCII letter is named", []string{"--prefix=hoökrelay"}, "prefix"},
		{"a prefix of 65 bytes is named", []string{"--prefix=" + strings.Repeat("p", 65)}, "prefix"},
		{"a prefix of 64 bytes is valid", []string{"--prefix=" + strings.Repeat("p", 64)}, ""},
		{"a prefix of letters, digits, - and _ is valid", []string{"--prefix=Hook-Relay_2"}, ""},
		{"zero replicas is named", []string{"--replicas=0"}, "replicas"},
		{"six replicas is named", []string{"--replicas=6"}, "replicas"},
		{"five replicas is valid", []string{"--replicas=5"}, ""},
		{"a negative shutdown timeout is named", []string{"--shutdown-timeout=-1s"}, "shutdown-timeout"},
		{"a zero shutdown timeout is valid", []string{"--shutdown-timeout=0s"}, ""},
		{"a negative disable-after is named", []string{"--disable-after=-1h"}, "disable-after"},
		{"a zero disable-after (never disable) is valid", []string{"--disable-after=0s"}, ""},
		{"a negative secret grace is named", []string{"--secret-grace=-1s"}, "secret-grace"},
		{"a zero secret grace is valid", []string{"--secret-grace=0s"}, ""},
		{"an unknown log format is named", []string{"--log-format=text"}, "log-format"},
		{"log format console is valid", []string{"--log-format=console"}, ""},
		{"of two bad settings the first checked is named",
			[]string{"--replicas=0", "--concurrency=0"}, "concurrency"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c, b := consumer(t, tt.args...)
			err := c.Validate(b)
			if tt.setting == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			wantFieldError(t, err, tt.setting, consumerEnv[tt.setting])
			if len(flatten(err)) != 1 {
				t.Errorf("error %q names more than the first bad setting", err)
			}
		})
	}
}

func TestConsumerValidateReportsBadVariables(t *testing.T) {
	tests := []struct {
		name, setting, value string
	}{
		{"a batch size that is not an integer is named", "batch-size", "lots"},
		{"a concurrency with a fraction is named", "concurrency", "4.5"},
		{"a request timeout without a unit is named", "request-timeout", "15"},
		{"a retention that is not a duration is named", "retention", "forever"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clearConsumerEnv(t)
			env := consumerEnv[tt.setting]
			t.Setenv(env, tt.value)
			c, b := consumer(t)
			fe := wantFieldError(t, c.Validate(b), tt.setting, env)
			if fe != nil && !strings.Contains(fe.Error(), `"`+tt.value+`"`) {
				t.Errorf("message %q does not quote the value %q", fe, tt.value)
			}
		})
	}
}

// binding is one setting bound on a Binder, of any kind.
type binding struct {
	kind string // string, int, duration or bool
	def  string // the default, written as a flag value
}

// bind registers a setting named "s" with variable env and returns a
// function giving its value as text.
func (k binding) bind(t *testing.T, b *config.Binder, env string) func() string {
	t.Helper()
	switch k.kind {
	case "string":
		var v string
		b.String(&v, "s", env, k.def, "a string")
		return func() string { return v }
	case "int":
		var v int
		def, err := parseInt(k.def)
		if err != nil {
			t.Fatal(err)
		}
		b.Int(&v, "s", env, def, "an int")
		return func() string { return formatInt(v) }
	case "duration":
		var v time.Duration
		def, err := time.ParseDuration(k.def)
		if err != nil {
			t.Fatal(err)
		}
		b.Duration(&v, "s", env, def, "a duration")
		return func() string { return v.String() }
	case "bool":
		var v bool
		b.Bool(&v, "s", env, k.def == "true", "a bool")
		return func() string {
			if v {
				return "true"
			}
			return "false"
		}
	}
	t.Fatalf("unknown kind %q", k.kind)
	return nil
}

func TestBinderSources(t *testing.T) {
	const env = "HOOKRELAY_TEST_BINDER_SETTING"
	tests := []struct {
		name string
		binding
		env  *string // nil leaves the variable unset
		args []string
		want string
	}{
		{"a string default holds without variable or flag", binding{"string", "d"}, nil, nil, "d"},
		{"a string variable is used when the flag is absent", binding{"string", "d"}, ptr("from-env"), nil, "from-env"},
		{"a string flag wins over the variable", binding{"string", "d"}, ptr("from-env"), []string{"--s=from-flag"}, "from-flag"},
		{"an empty string flag wins over the variable", binding{"string", "d"}, ptr("from-env"), []string{"--s="}, ""},
		{"an empty string variable counts as unset", binding{"string", "d"}, ptr(""), nil, "d"},
		{"an int default holds without variable or flag", binding{"int", "5"}, nil, nil, "5"},
		{"an int variable is used when the flag is absent", binding{"int", "5"}, ptr("42"), nil, "42"},
		{"an int variable may be negative", binding{"int", "5"}, ptr("-3"), nil, "-3"},
		{"an int variable is trimmed", binding{"int", "5"}, ptr(" 42\n"), nil, "42"},
		{"an int flag wins over the variable", binding{"int", "5"}, ptr("42"), []string{"--s=7"}, "7"},
		{"an empty int variable counts as unset", binding{"int", "5"}, ptr(""), nil, "5"},
		{"a duration default holds without variable or flag", binding{"duration", "15s"}, nil, nil, "15s"},
		{"a duration variable is used when the flag is absent", binding{"duration", "15s"}, ptr("250ms"), nil, "250ms"},
		{"a duration variable is trimmed", binding{"duration", "15s"}, ptr(" 2h "), nil, "2h0m0s"},
		{"a duration flag wins over the variable", binding{"duration", "15s"}, ptr("250ms"), []string{"--s=1m"}, "1m0s"},
		{"a bool default holds without variable or flag", binding{"bool", "true"}, nil, nil, "true"},
		{"a bool variable is used when the flag is absent", binding{"bool", "true"}, ptr("false"), nil, "false"},
		{"a bool variable of 1 is true", binding{"bool", "false"}, ptr("1"), nil, "true"},
		{"a bool variable is trimmed", binding{"bool", "false"}, ptr(" TRUE "), nil, "true"},
		{"a bool flag wins over the variable", binding{"bool", "false"}, ptr("true"), []string{"--s=false"}, "false"},
		{"a bare bool flag wins over the variable", binding{"bool", "false"}, ptr("false"), []string{"--s"}, "true"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.env != nil {
				t.Setenv(env, *tt.env)
			} else {
				unsetenv(t, env)
			}
			fs := newFlagSet()
			b := config.NewBinder(fs)
			get := tt.bind(t, b, env)
			if err := fs.Parse(tt.args); err != nil {
				t.Fatal(err)
			}
			if err := b.Err(); err != nil {
				t.Fatalf("Err: %v", err)
			}
			if got := get(); got != tt.want {
				t.Errorf("value %q; want %q", got, tt.want)
			}
			if got := b.Env("s"); got != env {
				t.Errorf("Env(s) = %q; want %q", got, env)
			}
		})
	}
}

func TestBinderBadVariables(t *testing.T) {
	const env = "HOOKRELAY_TEST_BINDER_BAD"
	tests := []struct {
		name string
		binding
		value string
	}{
		{"an int variable that is a word is named", binding{"int", "5"}, "five"},
		{"an int variable with a fraction is named", binding{"int", "5"}, "4.5"},
		{"an int variable with a unit is named", binding{"int", "5"}, "10k"},
		{"an int variable over int64 is named", binding{"int", "5"}, "99999999999999999999"},
		{"a duration variable without a unit is named", binding{"duration", "15s"}, "15"},
		{"a duration variable that is a word is named", binding{"duration", "15s"}, "soon"},
		{"a bool variable of yes is named", binding{"bool", "false"}, "yes"},
		{"a bool variable of on is named", binding{"bool", "false"}, "on"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(env, tt.value)
			fs := newFlagSet()
			b := config.NewBinder(fs)
			get := tt.bind(t, b, env)
			if err := fs.Parse(nil); err != nil {
				t.Fatal(err)
			}
			fe := wantFieldError(t, b.Err(), "s", env)
			if fe != nil && !strings.Contains(fe.Error(), `"`+tt.value+`"`) {
				t.Errorf("message %q does not quote the value %q", fe, tt.value)
			}
			// The bad value is not used: the default holds.
			want := tt.def
			if tt.kind == "duration" {
				d, _ := time.ParseDuration(tt.def)
				want = d.String()
			}
			if got := get(); got != want {
				t.Errorf("value %q; want the default %q", got, want)
			}
		})
	}
}

func TestBinderJoinsEveryBadVariable(t *testing.T) {
	t.Setenv("HOOKRELAY_TEST_BINDER_A", "x")
	t.Setenv("HOOKRELAY_TEST_BINDER_B", "y")
	t.Setenv("HOOKRELAY_TEST_BINDER_C", "z")
	fs := newFlagSet()
	b := config.NewBinder(fs)
	var n int
	var d time.Duration
	var ok bool
	b.Int(&n, "a", "HOOKRELAY_TEST_BINDER_A", 1, "")
	b.Duration(&d, "b", "HOOKRELAY_TEST_BINDER_B", time.Second, "")
	b.Bool(&ok, "c", "HOOKRELAY_TEST_BINDER_C", false, "")
	err := b.Err()
	for _, s := range []string{"a", "b", "c"} {
		t.Run("the error names --"+s, func(t *testing.T) {
			wantFieldError(t, err, s, "HOOKRELAY_TEST_BINDER_"+strings.ToUpper(s))
		})
	}
}

func TestBinderFail(t *testing.T) {
	t.Parallel()
	fs := newFlagSet()
	b := config.NewBinder(fs)
	var s string
	b.String(&s, "prefix", "HOOKRELAY_TEST_BINDER_PREFIX", "p", "")
	tests := []struct {
		name, setting, env, want string
	}{
		{"a bound setting is named with its variable", "prefix", "HOOKRELAY_TEST_BINDER_PREFIX",
			"--prefix (HOOKRELAY_TEST_BINDER_PREFIX): bad 3"},
		{"an unbound setting is named without a variable", "other", "", "--other (): bad 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := b.Fail(tt.setting, "bad %d", 3)
			if err.Error() != tt.want {
				t.Errorf("Error() = %q; want %q", err, tt.want)
			}
			fe := wantFieldError(t, err, tt.setting, tt.env)
			if fe != nil && fe.Reason != "bad 3" {
				t.Errorf("Reason = %q", fe.Reason)
			}
		})
	}
}

func TestBinderWithoutVariablesHasNoError(t *testing.T) {
	t.Parallel()
	b := config.NewBinder(newFlagSet())
	if err := b.Err(); err != nil {
		t.Errorf("Err() = %v on a new binder", err)
	}
	if got := b.Env("missing"); got != "" {
		t.Errorf("Env of an unbound flag = %q", got)
	}
}

func ptr(s string) *string { return &s }

func parseInt(s string) (int, error) { return strconv.Atoi(s) }

func formatInt(n int) string { return strconv.Itoa(n) }

// unsetenv removes env for the test and restores it afterwards.
func unsetenv(t *testing.T, env string) {
	t.Helper()
	t.Setenv(env, "") // records the old value for restoring
	if err := os.Unsetenv(env); err != nil {
		t.Fatal(err)
	}
}

func TestConsumerRefusesWeakOrExtremeSettings(t *testing.T) {
	t.Parallel()
	cases := map[string][]string{
		"api-token":       {"--api-token", "short"},
		"request-timeout": {"--request-timeout", "100h"},
		"max-event-bytes": {"--max-event-bytes", "100000000"},
	}
	for name, args := range cases {
		fs := flag.NewFlagSet("consumer", flag.ContinueOnError)
		var c config.Consumer
		b := config.NewBinder(fs)
		c.Bind(b)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		var fe *config.FieldError
		if err := c.Validate(b); !errors.As(err, &fe) || fe.Setting != name {
			t.Errorf("%v: err = %v, want a FieldError naming %s", args, err, name)
		}
	}
}
