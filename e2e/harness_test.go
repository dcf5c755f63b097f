// Package e2e runs hookrelay's built binaries as separate processes: the
// consumer, the publisher and, where a test needs it, several consumers at
// once, killed and restarted.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// binDir holds the binaries built once for the package.
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "hookrelay-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	if err := build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func build(dir string) error {
	cmd := exec.Command("go", "build", "-o", dir+string(os.PathSeparator),
		"../cmd/consumer", "../cmd/publisher")
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("go build: %v\n%s", err, out)
	}
	return nil
}

// consumer is one running consumer process.
type consumer struct {
	t    *testing.T
	name string
	addr string
	env  []string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startConsumer runs a consumer with env (KEY=value settings) on a free
// port, and waits until it is ready.
func startConsumer(t *testing.T, name string, env ...string) *consumer {
	t.Helper()
	c := &consumer{t: t, name: name, env: env, addr: freeAddr(t),
		log: filepath.Join(t.TempDir(), name+".log")}
	c.start()
	t.Cleanup(c.kill)
	return c
}

func (c *consumer) start() {
	c.t.Helper()
	logf, err := os.OpenFile(c.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		c.t.Fatal(err)
	}
	c.cmd = exec.Command(filepath.Join(binDir, "consumer"))
	c.cmd.Env = append(append(os.Environ(), "HOOKRELAY_HTTP_ADDR="+c.addr,
		"HOOKRELAY_ALLOW_CIDRS=127.0.0.0/8", "HOOKRELAY_API_TOKEN="), c.env...)
	c.cmd.Stdout, c.cmd.Stderr = logf, logf
	if err := c.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	c.done = make(chan struct{})
	go func() { _ = c.cmd.Wait(); logf.Close(); close(c.done) }()
	eventually(c.t, 30*time.Second, c.name+" ready", c.ready)
}

func (c *consumer) ready() bool {
	select {
	case <-c.done:
		c.t.Fatalf("%s exited during start-up:\n%s", c.name, c.tail())
	default:
	}
	resp, err := http.Get("http://" + c.addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// kill ends the process with SIGKILL, as a crash would.
func (c *consumer) kill() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	_ = c.cmd.Process.Kill()
	<-c.done
}

// terminate sends SIGTERM and waits for the exit status.
func (c *consumer) terminate() int {
	c.t.Helper()
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(60 * time.Second):
		c.t.Fatalf("%s did not stop on SIGTERM", c.name)
	}
	return c.cmd.ProcessState.ExitCode()
}

func (c *consumer) tail() string {
	b, _ := os.ReadFile(c.log)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(b)
}

// api calls the consumer's admin API and decodes the answer into out.
func (c *consumer) api(method, path string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, "http://"+c.addr+path, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	if out != nil {
		_ = json.NewDecoder(resp.Body).Decode(out)
	}
	return resp.StatusCode
}

// metric reads one value from the consumer's /metrics.
func (c *consumer) metric(series string) float64 {
	c.t.Helper()
	resp, err := http.Get("http://" + c.addr + "/metrics")
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, series+" ") {
			v, _ := strconv.ParseFloat(strings.TrimPrefix(line, series+" "), 64)
			return v
		}
	}
	return 0
}

// publish runs the publisher binary on an NDJSON file.
func publish(t *testing.T, file string, env ...string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "publisher"), "send", "--file", file)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("publisher: %v\n%s", err, out)
	}
	return string(out)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// eventually polls cond until it holds or timeout passes: the one wait
// helper of these tests.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// receiver is a webhook endpoint that verifies signatures and counts what
// each path received.
type receiver struct {
	url     string
	delay   time.Duration
	mu      sync.Mutex
	secrets map[string]string
	got     map[string]map[string]int
	bad     int
}

func newReceiver(t *testing.T, delay time.Duration) *receiver {
	r := &receiver{delay: delay, secrets: map[string]string{}, got: map[string]map[string]int{}}
	srv := httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	if r.delay > 0 {
		select {
		case <-time.After(r.delay):
		case <-req.Context().Done():
			return
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	wh, err := standardwebhooks.NewWebhook(r.secrets[req.URL.Path])
	if err != nil || wh.Verify(body, req.Header) != nil {
		r.bad++
	}
	if r.got[req.URL.Path] == nil {
		r.got[req.URL.Path] = map[string]int{}
	}
	r.got[req.URL.Path][req.Header.Get("webhook-id")]++
}

func (r *receiver) ids(path string) map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(map[string]int, len(r.got[path]))
	for k, v := range r.got[path] {
		out[k] = v
	}
	return out
}

func (r *receiver) unique(path string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.got[path])
}

func (r *receiver) badSignatures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bad
}

// endpoint registers an endpoint through the API and tells the receiver its
// secret.
func (r *receiver) endpoint(t *testing.T, c *consumer, path string, body map[string]any) string {
	t.Helper()
	body["url"] = r.url + path
	var out struct{ ID, Secret string }
	if code := c.api("POST", "/v1/endpoints", body, &out); code != http.StatusCreated {
		t.Fatalf("create endpoint %s: status %d", path, code)
	}
	r.mu.Lock()
	r.secrets[path] = out.Secret
	r.mu.Unlock()
	return out.ID
}

// countDeliveries pages through GET /v1/deliveries with query q.
func countDeliveries(t *testing.T, c *consumer, q string) int {
	t.Helper()
	n, cursor := 0, ""
	for {
		var page struct {
			Data       []json.RawMessage
			NextCursor *string `json:"next_cursor"`
		}
		path := "/v1/deliveries?limit=500&" + q
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		if code := c.api("GET", path, nil, &page); code != http.StatusOK {
			t.Fatalf("GET %s: status %d", path, code)
		}
		n += len(page.Data)
		if page.NextCursor == nil || *page.NextCursor == "" {
			return n
		}
		cursor = *page.NextCursor
	}
}

var _ = context.Background
