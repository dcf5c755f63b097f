package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strings"
	"time"

	"github.com/hookrelay/hookrelay/internal/config"
	"github.com/hookrelay/hookrelay/internal/event"
)

// Limits of the numeric settings.
const (
	maxReplicas   = 5        // JetStream's own limit
	maxEventLimit = 64 << 20 // NATS' largest max_payload
	maxWindow     = 1 << 16
	defaultWindow = 512
)

// singleEventFlags describe one event; they cannot be combined with --file.
var singleEventFlags = []string{"data", "metadata", "id", "timestamp"}

// settings are the parsed flags of "publisher send".
type settings struct {
	natsURL  string
	prefix   string
	replicas int
	maxBytes int
	window   int

	typ, data, metadata, id, timestamp string
	file                               string

	set map[string]bool // flags given on the command line
}

func newFlagSet(s *settings) (*flag.FlagSet, *config.Binder) {
	fs := flag.NewFlagSet("publisher send", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	b := config.NewBinder(fs)
	b.String(&s.natsURL, "nats-url", "NATS_URL", config.DefaultNATSURL, "NATS server `url`")
	b.String(&s.prefix, "prefix", "HOOKRELAY_PREFIX", config.DefaultPrefix,
		"`prefix` of subjects and stream names")
	b.Int(&s.replicas, "replicas", "HOOKRELAY_REPLICAS", 1,
		"`count` of replicas of the events stream")
	b.Int(&s.maxBytes, "max-event-bytes", "HOOKRELAY_MAX_EVENT_BYTES", event.DefaultMaxBytes,
		"largest event accepted, in `bytes`")
	b.Int(&s.window, "window", "HOOKRELAY_PUBLISH_WINDOW", defaultWindow,
		"most publishes awaiting their ack at once, a `count`")
	fs.StringVar(&s.typ, "type", "", "`type` of the one event to send, such as message.sent")
	fs.StringVar(&s.data, "data", "", "data of the event, as `JSON` text")
	fs.StringVar(&s.metadata, "metadata", "", "metadata of the event, a JSON `object`")
	fs.StringVar(&s.id, "id", "", "`id` of the event (default: generated)")
	fs.StringVar(&s.timestamp, "timestamp", "",
		"`time` of the event, RFC 3339 or epoch ms (default: now)")
	fs.StringVar(&s.file, "file", "", "NDJSON `path` of events, one a line; - reads stdin")
	nameEnvInErrors(fs, b, "replicas", "max-event-bytes", "window")
	return fs, b
}

// parseSend parses and checks the arguments of "publisher send".
func parseSend(args []string) (*settings, error) {
	s := &settings{set: map[string]bool{}}
	fs, b := newFlagSet(s)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	fs.Visit(func(f *flag.Flag) { s.set[f.Name] = true })
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if err := b.Err(); err != nil {
		return nil, err
	}
	if err := s.checkSettings(b); err != nil {
		return nil, err
	}
	return s, s.checkMode()
}

func (s *settings) checkSettings(b *config.Binder) error {
	return errors.Join(
		inRange(b, "replicas", s.replicas, 1, maxReplicas),
		inRange(b, "max-event-bytes", s.maxBytes, 1, maxEventLimit),
		inRange(b, "window", s.window, 1, maxWindow),
		checkPrefix(b, s.prefix),
		checkURL(b, s.natsURL),
	)
}

func inRange(b *config.Binder, name string, v, lo, hi int) error {
	if v < lo || v > hi {
		return b.Fail(name, "%d is out of range: must be %d to %d", v, lo, hi)
	}
	return nil
}

// checkPrefix accepts the prefixes the consumer accepts.
func checkPrefix(b *config.Binder, prefix string) error {
	if !config.ValidPrefix(prefix) {
		return b.Fail("prefix", "%q: %s", prefix, config.PrefixRule)
	}
	return nil
}

func checkURL(b *config.Binder, u string) error {
	if strings.TrimSpace(u) == "" {
		return b.Fail("nats-url", "must not be empty")
	}
	return nil
}

// checkMode checks that the flags ask for exactly one of the two modes.
func (s *settings) checkMode() error {
	switch {
	case s.set["file"] && s.set["type"]:
		return errors.New("--file and --type cannot be used together: " +
			"give one event with --type, or many with --file")
	case s.set["file"]:
		return s.checkFileMode()
	case !s.set["type"]:
		return errors.New("nothing to send: give --type for one event, or --file for NDJSON")
	}
	return nil
}

func (s *settings) checkFileMode() error {
	if s.file == "" {
		return errors.New("--file: must be a path, or - for standard input")
	}
	for _, name := range singleEventFlags {
		if s.set[name] {
			return fmt.Errorf("--%s describes the one event of --type; "+
				"with --file every line holds its own", name)
		}
	}
	return nil
}

// single builds the event described by the flags. An invalid event is an
// error naming the flag at fault.
func (s *settings) single(now time.Time) (*event.Event, bool, error) {
	raw, err := event.Build(s.id, s.typ, s.timestamp, s.data, s.metadata)
	if err != nil {
		return nil, false, blameFlag(err)
	}
	ev, generated, err := event.Complete(raw, s.maxBytes, now)
	return ev, generated, blameFlag(err)
}

// blameFlag rewrites a validation error of an event field as one of its
// flag. Other errors, and nil, are returned as they are.
func blameFlag(err error) error {
	var ve *event.ValidationError
	if !errors.As(err, &ve) {
		return err
	}
	name, _, _ := strings.Cut(ve.Field, ".")
	switch {
	case name == "":
		return fmt.Errorf("event: %s", ve.Reason)
	case name == ve.Field:
		return fmt.Errorf("--%s: %s", name, ve.Reason)
	}
	return fmt.Errorf("--%s: %w", name, err)
}

// redact hides the credentials (user and password, or token) in a
// comma-separated list of server URLs.
func redact(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if u, err := url.Parse(strings.TrimSpace(p)); err == nil && u.User != nil {
			u.User = url.User("xxxxx")
			parts[i] = u.String()
		}
	}
	return strings.Join(parts, ",")
}

// envValue makes a flag's parse error name the environment variable too.
type envValue struct {
	flag.Value
	env string
}

// Set parses a flag value given on the command line.
func (v envValue) Set(s string) error {
	if err := v.Value.Set(s); err != nil {
		return fmt.Errorf("not an integer (the setting is also read from %s)", v.env)
	}
	return nil
}

// String is the value; the zero envValue that flag.PrintDefaults makes is "".
func (v envValue) String() string {
	if v.Value == nil {
		return ""
	}
	return v.Value.String()
}

func nameEnvInErrors(fs *flag.FlagSet, b *config.Binder, names ...string) {
	for _, name := range names {
		f := fs.Lookup(name)
		f.Value = envValue{Value: f.Value, env: b.Env(name)}
	}
}
