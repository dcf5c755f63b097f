package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestLoopbackAddresses(t *testing.T) {
	t.Parallel()
	for _, addr := range []string{"127.0.0.1:9000", "127.1.2.3:0", "[::1]:9000", "localhost:0"} {
		if err := checkLoopback(addr); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
	for _, addr := range []string{":9000", "0.0.0.0:9000", "[::]:9000", "10.0.0.7:9000",
		"192.168.1.2:80", "example.com:80", "127.0.0.1"} {
		if err := checkLoopback(addr); err == nil {
			t.Errorf("%s accepted", addr)
		}
	}
}

func TestNonLoopbackAddrIsRefused(t *testing.T) {
	t.Parallel()
	var out, errs bytes.Buffer
	code := run(t.Context(), []string{"--addr", "0.0.0.0:0"}, &out, &errs)
	refused := strings.Contains(errs.String(), `"0.0.0.0" is not a loopback address`)
	if code != exitUsage || out.Len() > 0 || !refused {
		t.Errorf("exit %d, stdout %q, stderr %q", code, out.String(), errs.String())
	}
}

func TestParseArgs(t *testing.T) {
	t.Parallel()
	o, err := parseArgs([]string{"--secret", secretA + ", " + secretB, "--secret", secretA,
		"--status", "503", "--delay", "250ms"})
	if err != nil {
		t.Fatal(err)
	}
	if len(o.secrets.keys) != 3 || o.status != 503 || o.delay != 250*time.Millisecond ||
		o.addr != defaultAddr {
		t.Errorf("options %+v", o)
	}
	cases := map[string][]string{
		"--secret: secret 2 does not start with whsec_": {"--secret", secretA + ",abc"},
		"--secret: secret 1 is not base64 after whsec_": {"--secret", "whsec_%%%"},
		"--status 700: must be an HTTP status":          {"--status", "700"},
		"--delay -1s: must not be negative":             {"--delay", "-1s"},
		`unexpected argument "x"`:                       {"x"},
	}
	for want, args := range cases {
		_, err := parseArgs(args)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%v: error %v, want %q", args, err, want)
		}
		if err != nil && strings.Contains(err.Error(), secretA) {
			t.Errorf("%v: error shows a secret: %v", args, err)
		}
	}
}

func TestHelp(t *testing.T) {
	t.Parallel()
	var out bytes.Buffer
	if code := run(t.Context(), []string{"-h"}, &out, io.Discard); code != exitOK {
		t.Errorf("exit %d", code)
	}
	for _, want := range []string{"Usage: receiver", "GET  /stats", "-secret secret", "-delay"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("usage lacks %q:\n%s", want, out.String())
		}
	}
}

// startReceiver runs the command on a free loopback port until the test
// ends, and returns its URL and the channel of its exit status.
func startReceiver(t *testing.T, ctx context.Context, args ...string) (string, <-chan int) {
	t.Helper()
	pr, pw := io.Pipe()
	exit := make(chan int, 1)
	go func() {
		exit <- run(ctx, append([]string{"--addr", "127.0.0.1:0"}, args...), pw, io.Discard)
		_ = pw.Close()
	}()
	lines := bufio.NewScanner(pr)
	if !lines.Scan() {
		t.Fatalf("no output: %v", lines.Err())
	}
	go func() { _, _ = io.Copy(io.Discard, pr) }()
	url, ok := strings.CutPrefix(lines.Text(), "listening on ")
	if !ok {
		t.Fatalf("first line %q", lines.Text())
	}
	return url, exit
}

func TestRunServesUntilCancelled(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	url, exit := startReceiver(t, ctx, "--secret", secretA)
	body := `{"id":"evt_1","timestamp":"2026-11-30T00:00:00Z"}`
	req, _ := http.NewRequest(http.MethodPost, url+"/hooks/a", strings.NewReader(body))
	req.Header = signedHeaders(t, secretA, "evt_1", body)
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("answered %d", resp.StatusCode)
	}
	resp, err = client.Get(url + "/ids?path=/hooks/a")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if strings.Join(strings.Fields(string(got)), "") != `["evt_1"]` {
		t.Errorf("ids %s", got)
	}
	cancel()
	select {
	case code := <-exit:
		if code != exitOK {
			t.Errorf("exit %d", code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("still running 10s after cancel")
	}
}

func TestShutdownAbortsDelayedAnswers(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	url, exit := startReceiver(t, ctx, "--delay", "1h")
	answered := make(chan error, 1)
	go func() {
		resp, err := http.Post(url+"/slow", "application/json", strings.NewReader("{}"))
		if err == nil {
			_ = resp.Body.Close()
		}
		answered <- err
	}()
	waitFor(t, func() bool { return requestsOn(t, url, "/slow") == 1 })
	cancel()
	if err := <-answered; err == nil {
		t.Error("a delayed request was answered at shutdown")
	}
	if code := <-exit; code != exitOK {
		t.Errorf("exit %d", code)
	}
}

// requestsOn is the request count of path on the receiver at url.
func requestsOn(t *testing.T, url, path string) int64 {
	t.Helper()
	resp, err := http.Get(url + "/stats")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = resp.Body.Close() }()
	var doc statsDoc
	if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
		t.Fatal(err)
	}
	return doc.Paths[path].Requests
}

// waitFor polls cond until it holds, for at most 10 seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	deadline := time.After(10 * time.Second)
	for !cond() {
		select {
		case <-tick.C:
		case <-deadline:
			t.Fatal("condition not met within 10s")
		}
	}
}
