package dispatch

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var testAllow = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"),
	netip.MustParsePrefix("::1/128"),
}

// fakeDNS answers from a fixed table so no test ever resolves a real name.
func fakeDNS(table map[string][]netip.Addr) func(context.Context, string) ([]netip.Addr, error) {
	return func(_ context.Context, host string) ([]netip.Addr, error) {
		ips, ok := table[host]
		if !ok {
			return nil, fmt.Errorf("fake dns: no such host %q", host)
		}
		return ips, nil
	}
}

func newTestSender(t *testing.T, g *Guard, opts ...SenderOption) *Sender {
	t.Helper()
	opts = append([]SenderOption{WithResolver(fakeDNS(nil))}, opts...)
	s, err := NewSender(g, opts...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

// newServer starts a loopback server counting requests.
func newServer(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body) // lets the server notice a client hang-up
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

func serverIP(t *testing.T, srv *httptest.Server) (netip.Addr, string) {
	t.Helper()
	ap := netip.MustParseAddrPort(srv.Listener.Addr().String())
	return ap.Addr(), fmt.Sprint(ap.Port())
}

func TestSendPostsJSONWithHeaders(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	bodies := make(chan string, 1)
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		got <- r
		w.WriteHeader(http.StatusAccepted)
		_, _ = io.WriteString(w, "ok")
	})
	srv.Config.Handler = captureBody(srv.Config.Handler, bodies)
	s := newTestSender(t, NewGuard(testAllow))
	header := http.Header{"X-Custom": {"v"}, "Content-Type": {"text/plain"}}
	resp, err := s.Send(context.Background(), Request{
		URL: srv.URL + "/hook", Body: []byte(`{"a":1}`), Header: header, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	r := <-got
	checks := map[string][2]string{
		"method":       {r.Method, http.MethodPost},
		"content type": {r.Header.Get("Content-Type"), "application/json"},
		"user agent":   {r.Header.Get("User-Agent"), DefaultUserAgent},
		"custom":       {r.Header.Get("X-Custom"), "v"},
		"request body": {<-bodies, `{"a":1}`},
		"resp body":    {string(resp.Body), "ok"},
		"status":       {fmt.Sprint(resp.StatusCode), "202"},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	if resp.Truncated || resp.Duration <= 0 {
		t.Errorf("Truncated = %v, Duration = %v", resp.Truncated, resp.Duration)
	}
}

// captureBody records the request body before the counting wrapper drains it.
func captureBody(next http.Handler, out chan<- string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		out <- string(b)
		r.Body = io.NopCloser(strings.NewReader(""))
		next.ServeHTTP(w, r)
	})
}

func TestSendDoesNotFollowRedirects(t *testing.T) {
	t.Parallel()
	var followed atomic.Int32
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/next" {
			followed.Add(1)
			return
		}
		w.Header().Set("Location", "/next")
		w.WriteHeader(http.StatusFound)
	})
	s := newTestSender(t, NewGuard(testAllow))
	resp, err := s.Send(context.Background(), Request{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusFound || resp.Location != "/next" {
		t.Errorf("status %d location %q, want 302 /next", resp.StatusCode, resp.Location)
	}
	if n := followed.Load(); n != 0 {
		t.Errorf("redirect was followed %d times", n)
	}
}

func TestSendCapturesRetryAfter(t *testing.T) {
	t.Parallel()
	srv, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Retry-After", "120")
		w.WriteHeader(http.StatusServiceUnavailable)
	})
	s := newTestSender(t, NewGuard(testAllow))
	resp, err := s.Send(context.Background(), Request{URL: srv.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 503 || resp.RetryAfter != 2*time.Minute {
		t.Errorf("status %d retry-after %v, want 503 2m0s", resp.StatusCode, resp.RetryAfter)
	}
}

func TestSendTruncatesHugeBody(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		opts  []SenderOption
		limit int
	}{
		{"default limit keeps 16 KiB", nil, DefaultBodyLimit},
		{"custom limit keeps 100 bytes", []SenderOption{WithBodyLimit(100)}, 100},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			done := make(chan struct{})
			srv, _ := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
				defer close(done)
				writeHuge(w, 10<<20)
			})
			s := newTestSender(t, NewGuard(testAllow), tt.opts...)
			req := Request{URL: srv.URL, Timeout: 10 * time.Second}
			resp, err := s.Send(context.Background(), req)
			if err != nil {
				t.Fatal(err)
			}
			if len(resp.Body) != tt.limit || !resp.Truncated {
				t.Errorf("body %d bytes, truncated %v; want %d, true", len(resp.Body),
					resp.Truncated, tt.limit)
			}
			waitClosed(t, done, "handler still writing after the client gave up")
		})
	}
}

// writeHuge writes n bytes without Content-Length, stopping at the first
// error, i.e. once the client has closed the connection.
func writeHuge(w http.ResponseWriter, n int) {
	chunk := []byte(strings.Repeat("x", 32<<10))
	for written := 0; written < n; written += len(chunk) {
		if _, err := w.Write(chunk); err != nil {
			return
		}
	}
}

func waitClosed(t *testing.T, ch <-chan struct{}, msg string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal(msg)
	}
}

func TestSendReusesConnectionAfterSmallOverflow(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter,
		r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, strings.Repeat("y", 1000))
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	s := newTestSender(t, NewGuard(testAllow), WithBodyLimit(16))
	for range 3 {
		resp, err := s.Send(context.Background(), Request{URL: srv.URL, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if len(resp.Body) != 16 || !resp.Truncated {
			t.Fatalf("body %d bytes, truncated %v", len(resp.Body), resp.Truncated)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("opened %d connections, want 1 reused", n)
	}
}

func TestSendTimesOut(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		handler func(stop <-chan struct{}) http.HandlerFunc
	}{
		{"a server that never answers times out", hang},
		{"a server that trickles its body times out", trickle},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stop := make(chan struct{})
			srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) {
				tt.handler(stop)(w, r)
			})
			t.Cleanup(func() { close(stop) }) // runs before srv.Close, freeing the handler
			s := newTestSender(t, NewGuard(testAllow))
			const timeout = 300 * time.Millisecond
			start := time.Now()
			_, err := s.Send(context.Background(), Request{URL: srv.URL, Timeout: timeout})
			elapsed := time.Since(start)
			assertKind(t, err, KindTimeout)
			if err.Error() != "timeout after 300ms" {
				t.Errorf("message %q", err)
			}
			if elapsed < timeout || elapsed > timeout+2*time.Second {
				t.Errorf("took %v for a %v timeout", elapsed, timeout)
			}
		})
	}
}

func hang(stop <-chan struct{}) http.HandlerFunc {
	return func(_ http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-stop:
		}
	}
}

func trickle(stop <-chan struct{}) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-r.Context().Done():
				return
			case <-stop:
				return
			case <-tick.C:
				_, _ = w.Write([]byte("x"))
				w.(http.Flusher).Flush()
			}
		}
	}
}

func TestSendBlocksLoopbackWhenNotAllowed(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	s := newTestSender(t, NewGuard(nil))
	req := Request{URL: srv.URL + "/?token=s3cret", Timeout: time.Second}
	_, err := s.Send(context.Background(), req)
	assertKind(t, err, KindBlocked)
	if !errors.Is(err, ErrBlocked) {
		t.Errorf("err %v does not match ErrBlocked", err)
	}
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("message %q leaks the URL", err)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server got %d requests", n)
	}
}

func TestSendBlocksRebindingNames(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	_, port := serverIP(t, srv)
	tests := []struct {
		name string
		ips  []netip.Addr
	}{
		{"a name resolving to metadata is blocked", addrs("169.254.169.254")},
		{"a mapped metadata address is blocked", addrs("::ffff:169.254.169.254")},
		{"a name resolving to unique-local is blocked", addrs("fd00::1")},
		{"a name resolving only to private addresses is blocked",
			addrs("10.0.0.1", "192.168.1.1", "fd00::1")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dns := fakeDNS(map[string][]netip.Addr{"rebind.test": tt.ips})
			s := newTestSender(t, NewGuard(testAllow), WithResolver(dns))
			_, err := s.Send(context.Background(), Request{
				URL: "http://rebind.test:" + port + "/", Timeout: time.Second,
			})
			assertKind(t, err, KindBlocked)
		})
	}
	t.Cleanup(func() {
		if n := hits.Load(); n != 0 {
			t.Errorf("server got %d requests", n)
		}
	})
}

func TestSendConnectFailures(t *testing.T) {
	t.Parallel()
	tlsSrv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter,
		*http.Request) {
	}))
	tlsSrv.Config.ErrorLog = log.New(io.Discard, "", 0) // the refused handshake is expected
	tlsSrv.StartTLS()
	t.Cleanup(tlsSrv.Close)
	tests := []struct {
		name string
		url  string
		dns  map[string][]netip.Addr
	}{
		{"a closed port is a connect failure", "http://" + closedAddr(t) + "/", nil},
		{"a failed lookup is a connect failure", "http://nowhere.test/", nil},
		{"an empty lookup is a connect failure", "http://empty.test/",
			map[string][]netip.Addr{"empty.test": {}}},
		{"an untrusted certificate is a connect failure", tlsSrv.URL, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := newTestSender(t, NewGuard(testAllow), WithResolver(fakeDNS(tt.dns)))
			_, err := s.Send(context.Background(), Request{URL: tt.url, Timeout: 5 * time.Second})
			assertKind(t, err, KindConnect)
		})
	}
}

func closedAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// Not parallel: t.Setenv changes the whole process environment.
func TestSendDialsOnlyPermittedAddressesOfAMixedAnswer(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	ip, port := serverIP(t, srv)
	// The blocked address comes first; were it dialled, the dialer's Control
	// check would still refuse it before any packet leaves.
	dns := fakeDNS(map[string][]netip.Addr{"mixed.test": append(addrs("10.0.0.1"), ip)})
	s := newTestSender(t, NewGuard(testAllow), WithResolver(dns))
	_, err := s.Send(context.Background(), Request{URL: "http://mixed.test:" + port + "/",
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("server got %d requests, want 1", n)
	}
}

func TestSendIgnoresProxyEnvironment(t *testing.T) {
	proxy, proxyHits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	for _, k := range []string{"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy"} {
		t.Setenv(k, proxy.URL)
	}
	t.Setenv("NO_PROXY", "")
	t.Setenv("no_proxy", "")
	srv, hits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	ip, port := serverIP(t, srv)
	dns := fakeDNS(map[string][]netip.Addr{"hooks.test": {ip}})
	s := newTestSender(t, NewGuard(testAllow), WithResolver(dns))
	_, err := s.Send(context.Background(), Request{URL: "http://hooks.test:" + port + "/",
		Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 || proxyHits.Load() != 0 {
		t.Errorf("target got %d, proxy got %d; want 1, 0", hits.Load(), proxyHits.Load())
	}
}

func TestDialControlChecksActualAddress(t *testing.T) {
	t.Parallel()
	s := newTestSender(t, NewGuard(testAllow))
	tests := []struct {
		addr    string
		blocked bool
	}{
		{"169.254.169.254:80", true},
		{"[fe80::1%eth0]:443", true},
		{"10.0.0.1:443", true},
		{"127.0.0.1:8080", false},
		{"[::1]:8080", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr+" blocked is "+boolWord(tt.blocked), func(t *testing.T) {
			t.Parallel()
			err := s.control("tcp", tt.addr, nil)
			if got := errors.Is(err, ErrBlocked); got != tt.blocked {
				t.Errorf("err = %v", err)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		in   string
		want time.Duration
	}{
		{"absent is zero", "", 0},
		{"seconds are parsed", "120", 2 * time.Minute},
		{"zero seconds is zero", "0", 0},
		{"padded seconds are parsed", " 5 ", 5 * time.Second},
		{"a future date is the wait until it", "Mon, 01 Jan 2024 00:01:30 GMT", 90 * time.Second},
		{"a past date is zero", "Sun, 31 Dec 2023 23:00:00 GMT", 0},
		{"negative seconds are ignored", "-5", 0},
		{"garbage is ignored", "soon", 0},
		{"huge seconds are capped", "99999999999999999", maxRetryAfter},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := parseRetryAfter(tt.in, now); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestNewSenderRejectsBadOptions(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		opt  SenderOption
	}{
		{"zero body limit is refused", WithBodyLimit(0)},
		{"empty user agent is refused", WithUserAgent("")},
		{"user agent with newline is refused", WithUserAgent("a\r\nX-Evil: 1")},
		{"nil resolver is refused", WithResolver(nil)},
		{"zero idle pool is refused", WithMaxIdlePerHost(0)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewSender(nil, tt.opt); !errors.Is(err, ErrInvalidOption) {
				t.Errorf("err = %v, want ErrInvalidOption", err)
			}
		})
	}
}

func assertKind(t *testing.T, err error, want Kind) {
	t.Helper()
	var se *SendError
	if !errors.As(err, &se) {
		t.Fatalf("err = %v, want *SendError", err)
	}
	if se.Kind != want {
		t.Fatalf("kind = %v, want %v (err %v)", se.Kind, want, err)
	}
}

func addrs(ss ...string) []netip.Addr {
	out := make([]netip.Addr, len(ss))
	for i, s := range ss {
		out[i] = netip.MustParseAddr(s)
	}
	return out
}
