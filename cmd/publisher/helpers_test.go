package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/hookrelay/hookrelay/internal/stream"
)

// noServer is a URL that no test server listens on: tests that must fail
// before connecting name it, so that a mistake never reaches a real server.
const noServer = "nats://127.0.0.1:1"

// startJetStream starts an embedded JetStream server on a random loopback
// port and returns its URL. tune may change the options first.
func startJetStream(t *testing.T, tune ...func(*server.Options)) string {
	t.Helper()
	opts := &server.Options{
		Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(),
		NoLog: true, NoSigs: true,
	}
	for _, f := range tune {
		f(opts)
	}
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready within 10s")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s.ClientURL()
}

// result is what one run of the command did.
type result struct {
	code           int
	stdout, stderr string
}

// send runs "publisher send" against url with args after the settings.
func send(t *testing.T, url, stdin string, args ...string) result {
	t.Helper()
	full := append([]string{"send", "--nats-url", url, "--prefix", "hookrelay",
		"--replicas", "1"}, args...)
	return runArgs(t, stdin, full...)
}

func runArgs(t *testing.T, stdin string, args ...string) result {
	t.Helper()
	var out, errs bytes.Buffer
	code := run(t.Context(), args, strings.NewReader(stdin), &out, &errs)
	return result{code: code, stdout: out.String(), stderr: errs.String()}
}

// events opens the events stream of the default prefix on url.
func events(t *testing.T, url string) jetstream.Stream {
	t.Helper()
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, stream.Names{Prefix: "hookrelay"}.EventsStream())
	if err != nil {
		t.Fatalf("events stream: %v", err)
	}
	return s
}

// streamState is the state of the events stream.
func streamState(t *testing.T, s jetstream.Stream) jetstream.StreamState {
	t.Helper()
	info, err := s.Info(t.Context())
	if err != nil {
		t.Fatalf("stream info: %v", err)
	}
	return info.State
}

// storedMsgs returns every message of the events stream, in order.
func storedMsgs(t *testing.T, url string) []*jetstream.RawStreamMsg {
	t.Helper()
	s := events(t, url)
	st := streamState(t, s)
	var msgs []*jetstream.RawStreamMsg
	for seq := st.FirstSeq; st.Msgs > 0 && seq <= st.LastSeq; seq++ {
		m, err := s.GetMsg(t.Context(), seq)
		if err != nil {
			t.Fatalf("get message %d: %v", seq, err)
		}
		msgs = append(msgs, m)
	}
	return msgs
}

// wantLines fails unless text holds every one of lines.
func wantLines(t *testing.T, text string, lines ...string) {
	t.Helper()
	for _, l := range lines {
		if !strings.Contains(text, l) {
			t.Errorf("missing %q in:\n%s", l, text)
		}
	}
}
