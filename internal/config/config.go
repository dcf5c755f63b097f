// Package config holds hookrelay's settings. Each setting is a flag with an
// environment fallback (HOOKRELAY_BATCH_SIZE is --batch-size); a flag given on
// the command line wins over the environment, which wins over the default.
package config

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
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
