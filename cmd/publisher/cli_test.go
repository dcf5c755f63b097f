package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestHelp(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"help"}, {"-h"}, {"--help"}, {"send", "-h"}} {
		if r := runArgs(t, "", args...); r.code != exitOK {
			t.Errorf("%v: exit %d", args, r.code)
		} else {
			wantLines(t, r.stdout, "publisher send --type TYPE", "publisher send --file PATH",
				"-window count", "HOOKRELAY_PUBLISH_WINDOW", "Exit status")
		}
	}
}

func TestUsageErrorsExitTwo(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{nil, "no command given"},
		{[]string{"push"}, `unknown command "push"`},
		{[]string{"send", "--nats-url", noServer}, "nothing to send"},
		{[]string{"send", "--nats-url", noServer, "--file", "/nonexistent/x.ndjson"},
			"--file: open /nonexistent/x.ndjson: no such file or directory"},
		{[]string{"send", "--nats-url", noServer, "--type", "message.sent",
			"--timestamp", "yesterday"}, `--timestamp: "yesterday" is not RFC 3339`},
		{[]string{"send", "--nats-url", noServer, "--type", "Message"}, "--type: "},
		{[]string{"send", "--nats-url", noServer, "--type", "a.b", "--data", "{x"},
			"--data: is not valid JSON"},
		{[]string{"send", "--nats-url", noServer, "--type", "a.b", "--metadata", "[1]"},
			"--metadata: must be an object"},
		{[]string{"send", "--nats-url", noServer, "--type", "a.b", "--metadata",
			`{"userId":1}`}, "--metadata: metadata.userId: must be a string"},
		{[]string{"send", "--nats-url", noServer, "--type", "a.b", "--id", "a b"},
			"--id: byte 1 is not printable"},
	}
	for _, c := range cases {
		r := runArgs(t, "", c.args...)
		if r.code != exitUsage {
			t.Errorf("%v: exit %d, want %d", c.args, r.code, exitUsage)
		}
		wantLines(t, r.stderr, c.want)
	}
}

func TestParseSendErrorsNameTheFlag(t *testing.T) {
	t.Parallel()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--file", "x", "--type", "a.b"}, "--file and --type cannot be used together"},
		{[]string{"--file", "x", "--data", "{}"}, "--data describes the one event of --type"},
		{[]string{"--file", ""}, "--file: must be a path"},
		{[]string{"--type", "a.b", "extra"}, `unexpected argument "extra"`},
		{[]string{"--type", "a.b", "--replicas", "0"},
			"--replicas (HOOKRELAY_REPLICAS): 0 is out of range: must be 1 to 5"},
		{[]string{"--type", "a.b", "--replicas", "two"}, `invalid value "two" for flag ` +
			`-replicas: not an integer (the setting is also read from HOOKRELAY_REPLICAS)`},
		{[]string{"--type", "a.b", "--window", "0"}, "--window (HOOKRELAY_PUBLISH_WINDOW): 0"},
		{[]string{"--type", "a.b", "--max-event-bytes", "-1"},
			"--max-event-bytes (HOOKRELAY_MAX_EVENT_BYTES): -1 is out of range"},
		{[]string{"--type", "a.b", "--prefix", "a..b"}, `--prefix (HOOKRELAY_PREFIX): "a..b"`},
		{[]string{"--type", "a.b", "--prefix", "a.>"}, "--prefix (HOOKRELAY_PREFIX)"},
		{[]string{"--type", "a.b", "--prefix", "demo.two"},
			`--prefix (HOOKRELAY_PREFIX): "demo.two": must be 1–64 letters, digits, - and _`},
		{[]string{"--type", "a.b", "--prefix", ""}, `"": must be 1–64 letters`},
		{[]string{"--type", "a.b", "--nats-url", " "}, "--nats-url (NATS_URL): must not be empty"},
	}
	for _, c := range cases {
		_, err := parseSend(c.args)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: error %v, want %q", c.args, err, c.want)
		}
	}
}

// TestSettingsFromEnvironment cannot be parallel: it sets the environment.
func TestSettingsFromEnvironment(t *testing.T) {
	t.Setenv("HOOKRELAY_REPLICAS", "3")
	t.Setenv("HOOKRELAY_PREFIX", "demo-one")
	t.Setenv("NATS_URL", noServer)
	s, err := parseSend([]string{"--type", "a.b", "--prefix", "demo-two"})
	if err != nil {
		t.Fatal(err)
	}
	if s.replicas != 3 || s.prefix != "demo-two" || s.natsURL != noServer || s.window != 512 {
		t.Errorf("settings %+v", s)
	}
}

func TestBadEnvironmentValueNamesTheVariable(t *testing.T) {
	t.Setenv("HOOKRELAY_PUBLISH_WINDOW", "many")
	_, err := parseSend([]string{"--type", "a.b"})
	want := `--window (HOOKRELAY_PUBLISH_WINDOW): "many" is not an integer`
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("error %v, want %q", err, want)
	}
}

func TestSummaryAndProgressLines(t *testing.T) {
	t.Parallel()
	c := counts{published: 4000, duplicates: 50, rejected: 2, failed: 1, inFlight: 7}
	got := c.summary(1230 * time.Millisecond)
	want := "published 4000, duplicates 50, rejected 2, failed 1 in 1.23s (3293 events/s)"
	if got != want {
		t.Errorf("summary %q, want %q", got, want)
	}
	got = c.progress(2 * time.Second)
	want = "published 4000 (duplicates 50, rejected 2, failed 1, awaiting ack 7) after 2s"
	if got != want {
		t.Errorf("progress %q, want %q", got, want)
	}
	if c.exitCode() != exitFailed || (counts{duplicates: 1}).exitCode() != exitOK {
		t.Error("wrong exit codes")
	}
}

// signalWriter reports each write on a channel.
type signalWriter struct {
	buf   bytes.Buffer
	wrote chan struct{}
}

// Write keeps p and signals that it came.
func (w *signalWriter) Write(p []byte) (int, error) {
	n, err := w.buf.Write(p)
	select {
	case w.wrote <- struct{}{}:
	default:
	}
	return n, err
}

func TestProgressIsReportedPeriodically(t *testing.T) {
	t.Parallel()
	w := &signalWriter{wrote: make(chan struct{}, 1)}
	p := &publisher{every: time.Millisecond, log: &lockedWriter{w: w}, start: time.Now()}
	p.stats.published.Add(3200)
	p.stats.rejected.Add(2)
	stop := p.reportProgress()
	select {
	case <-w.wrote:
	case <-time.After(10 * time.Second):
		t.Fatal("no progress line within 10s")
	}
	stop()
	wantLines(t, w.buf.String(), "published 3200 (duplicates 0, rejected 2, failed 0")
}

func TestRedact(t *testing.T) {
	t.Parallel()
	got := redact("nats://u:pw@h1:4222, nats://tok@h2:4222,nats://h3:4222")
	want := "nats://xxxxx@h1:4222,nats://xxxxx@h2:4222,nats://h3:4222"
	if got != want {
		t.Errorf("redact %q, want %q", got, want)
	}
}
