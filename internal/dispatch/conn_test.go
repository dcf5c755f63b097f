package dispatch

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// Tests of the sender's own HTTP/1.1 client (conn.go): TLS, connections
// the server closed while idle, informational responses, limits and
// cancellation.

func TestSendOverTLS(t *testing.T) {
	t.Parallel()
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		_, _ = io.WriteString(w, "tls "+r.Host)
	}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s := newTestSender(t, NewGuard(testAllow))
	roots := x509.NewCertPool()
	roots.AddCert(srv.Certificate())
	s.tlsConfig.RootCAs = roots
	for range 3 {
		resp, err := s.Send(context.Background(), Request{URL: srv.URL + "/hook", Body: []byte(`{}`),
			Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if want := "tls " + strings.TrimPrefix(srv.URL, "https://"); string(resp.Body) != want {
			t.Errorf("body %q, want %q", resp.Body, want)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("opened %d TLS connections, want 1 reused", n)
	}

	// A certificate that does not verify is a connect failure.
	other := newTestSender(t, NewGuard(testAllow))
	_, err := other.Send(context.Background(), Request{URL: srv.URL, Timeout: 5 * time.Second})
	assertKind(t, err, KindConnect)
}

// TestSendRedialsWhenTheServerClosedAnIdleConnection closes the server's
// side of every kept-alive connection between two requests, as servers with
// a short keep-alive timeout do: the second request goes out on a new
// connection instead of failing on the closed one.
func TestSendRedialsWhenTheServerClosedAnIdleConnection(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	s := newTestSender(t, NewGuard(testAllow))
	send := func() {
		t.Helper()
		resp, err := s.Send(context.Background(), Request{URL: srv.URL, Timeout: 5 * time.Second})
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("send: %v, %+v", err, resp)
		}
	}
	send()
	srv.CloseClientConnections()
	time.Sleep(50 * time.Millisecond) // the FIN reaches the client's socket
	send()
	if n := hits.Load(); n != 2 {
		t.Errorf("server saw %d requests, want 2", n)
	}
}

// loopServer serves each connection on a listener of its own with serve,
// and closes the connections left when the test ends; it returns the
// listener's address and how many connections it took.
func loopServer(t *testing.T, serve func(net.Conn)) (addr string, conns *atomic.Int32) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conns = &atomic.Int32{}
	done := make(chan struct{})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns.Add(1)
			go func() {
				<-done
				_ = c.Close()
			}()
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
	t.Cleanup(func() {
		close(done)
		_ = ln.Close()
	})
	return ln.Addr().String(), conns
}

// rawServer answers every request with reply, and counts connections.
func rawServer(t *testing.T, reply string) (url string, conns *atomic.Int32) {
	t.Helper()
	addr, conns := loopServer(t, func(c net.Conn) {
		answerEach(c, func(w io.Writer) error {
			_, err := io.WriteString(w, reply)
			return err
		})
	})
	return "http://" + addr + "/hook", conns
}

// answerEach reads requests from rw and answers each with answer, until
// either fails.
func answerEach(rw io.ReadWriter, answer func(io.Writer) error) {
	br := bufio.NewReader(rw)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			return
		}
		_, _ = io.Copy(io.Discard, req.Body)
		if answer(rw) != nil {
			return
		}
	}
}

func TestSendSkipsInformationalResponses(t *testing.T) {
	t.Parallel()
	url, conns := rawServer(t, "HTTP/1.1 100 Continue\r\n\r\n"+
		"HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n"+
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
	s := newTestSender(t, NewGuard(testAllow))
	for range 2 {
		resp, err := s.Send(context.Background(), Request{URL: url, Timeout: 5 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || string(resp.Body) != "ok" {
			t.Errorf("status %d body %q, want 200 ok", resp.StatusCode, resp.Body)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Errorf("opened %d connections, want 1 reused", n)
	}
}

func TestSendReadsChunkedAndClosingAnswers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, reply string
		conns       int32
	}{
		{"chunked body, kept alive",
			"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", 1},
		{"Connection: close",
			"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", 2},
		{"HTTP/1.0 without keep-alive",
			"HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			url, conns := rawServer(t, tt.reply)
			s := newTestSender(t, NewGuard(testAllow))
			for range 2 {
				resp, err := s.Send(context.Background(), Request{URL: url, Timeout: 5 * time.Second})
				if err != nil {
					t.Fatal(err)
				}
				if string(resp.Body) != "ok" {
					t.Errorf("body %q, want ok", resp.Body)
				}
			}
			if n := conns.Load(); n != tt.conns {
				t.Errorf("opened %d connections, want %d", n, tt.conns)
			}
		})
	}
}

func TestSendRefusesOverlongResponseHeaders(t *testing.T) {
	t.Parallel()
	url, _ := rawServer(t, "HTTP/1.1 200 OK\r\nX-Big: "+strings.Repeat("x", maxHeaderBytes)+
		"\r\nContent-Length: 0\r\n\r\n")
	s := newTestSender(t, NewGuard(testAllow))
	_, err := s.Send(context.Background(), Request{URL: url, Timeout: 5 * time.Second})
	if !errors.Is(err, errHeadTooLong) {
		t.Errorf("error %v, want %v", err, errHeadTooLong)
	}
}

func TestSendRefusesHeaderValuesThatWouldSplitTheRequest(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	s := newTestSender(t, NewGuard(testAllow))
	for _, h := range []http.Header{
		{"X-Evil": {"v\r\nX-Injected: 1"}},
		{"X Evil": {"v"}},
	} {
		_, err := s.Send(context.Background(), Request{URL: srv.URL, Header: h,
			Timeout: 5 * time.Second})
		if err == nil || !strings.Contains(err.Error(), "invalid header field") {
			t.Errorf("header %q: error %v, want an invalid header field", h, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("server saw %d requests", n)
	}
}

func TestSendReturnsPromptlyWhenCancelled(t *testing.T) {
	t.Parallel()
	stop := make(chan struct{})
	srv, _ := newServer(t, func(w http.ResponseWriter, r *http.Request) { hang(stop)(w, r) })
	t.Cleanup(func() { close(stop) })
	s := newTestSender(t, NewGuard(testAllow))
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	start := time.Now()
	_, err := s.Send(ctx, Request{URL: srv.URL, Timeout: 10 * time.Second})
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v to give up after cancel", d)
	}
}

func TestConnPoolClosesExpiredIdleConnections(t *testing.T) {
	t.Parallel()
	p := newConnPool(4)
	a, b := net.Pipe()
	defer b.Close()
	old := &persistConn{key: "http://x:80", conn: a, tcp: a}
	p.put(old, time.Now().Add(-idleConnTimeout))
	p.closeExpired()
	if pc := p.get("http://x:80", time.Now()); pc != nil {
		t.Error("an expired connection was handed out")
	}
	if _, err := a.Write([]byte("x")); err == nil {
		t.Error("expired connection still open")
	}
	p.closeIdle()
}

func TestSendWritesItsOwnFramingHeadersWhateverTheCaseOfOthers(t *testing.T) {
	t.Parallel()
	got := make(chan *http.Request, 1)
	srv, _ := newServer(t, func(_ http.ResponseWriter, r *http.Request) { got <- r })
	s := newTestSender(t, NewGuard(testAllow))
	header := http.Header{"host": {"evil.example"}, "content-length": {"1"},
		"user-agent": {"other"}, "x-lower": {"kept"}}
	if _, err := s.Send(context.Background(), Request{URL: srv.URL, Body: []byte(`{"a":1}`),
		Header: header, Timeout: 5 * time.Second}); err != nil {
		t.Fatal(err)
	}
	r := <-got
	if want := strings.TrimPrefix(srv.URL, "http://"); r.Host != want {
		t.Errorf("Host %q, want %q", r.Host, want)
	}
	if r.ContentLength != 7 || r.UserAgent() != DefaultUserAgent || r.Header.Get("X-Lower") != "kept" {
		t.Errorf("Content-Length %d, User-Agent %q, X-Lower %q", r.ContentLength, r.UserAgent(),
			r.Header.Get("X-Lower"))
	}
}

// tlsLoop serves TLS on a listener of its own with the certificate of an
// httptest server; after the handshake, what reply writes for a request
// reaches the socket in one write, and so arrives as one segment. It
// returns the URL and the roots that trust it.
func tlsLoop(t *testing.T, reply func(io.Writer) error) (string, *x509.CertPool) {
	t.Helper()
	ts := httptest.NewUnstartedServer(nil)
	ts.StartTLS()
	cert := ts.TLS.Certificates[0]
	roots := x509.NewCertPool()
	roots.AddCert(ts.Certificate())
	ts.Close()
	cfg := &tls.Config{Certificates: []tls.Certificate{cert}}
	addr, _ := loopServer(t, func(c net.Conn) { serveTLSBatched(c, cfg, reply) })
	return "https://" + addr + "/hook", roots
}

func serveTLSBatched(c net.Conn, cfg *tls.Config, reply func(io.Writer) error) {
	bc := &batchConn{Conn: c}
	tc := tls.Server(bc, cfg)
	if tc.Handshake() != nil {
		return
	}
	answerEach(tc, func(w io.Writer) error {
		bc.batching = true
		err := reply(w)
		bc.batching = false
		if err != nil {
			return err
		}
		return bc.flush()
	})
}

// batchConn holds what is written while batching, until flush.
type batchConn struct {
	net.Conn
	batching bool
	held     []byte
}

func (b *batchConn) Write(p []byte) (int, error) {
	if !b.batching {
		return b.Conn.Write(p)
	}
	b.held = append(b.held, p...)
	return len(p), nil
}

func (b *batchConn) flush() error {
	_, err := b.Conn.Write(b.held)
	b.held = b.held[:0]
	return err
}

// TestSendDropsAConnectionWithBytesPastTheAnswer answers each request and
// then a forged second answer in the same segment: over TLS in a record of
// its own, which TLS reads ahead with the first. The next request must not
// take the forged answer for its own.
func TestSendDropsAConnectionWithBytesPastTheAnswer(t *testing.T) {
	t.Parallel()
	const answer, forged = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
		"HTTP/1.1 299 Forged\r\nContent-Length: 4\r\n\r\nevil"
	tlsURL, roots := tlsLoop(t, func(w io.Writer) error {
		if _, err := io.WriteString(w, answer); err != nil {
			return err
		}
		_, err := io.WriteString(w, forged)
		return err
	})
	plainURL, _ := rawServer(t, answer+forged)
	s := newTestSender(t, NewGuard(testAllow))
	s.tlsConfig.RootCAs = roots
	for _, url := range []string{tlsURL, plainURL} {
		bad := 0
		for range 30 {
			resp, err := s.Send(context.Background(), Request{URL: url, Timeout: 2 * time.Second})
			if err != nil || string(resp.Body) != "ok" {
				bad++
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d of 30 requests read bytes that were not their answer", url, bad)
		}
	}
}

// TestSendSendsNothingOnceCancelled cancels before sending with a kept-
// alive connection in the pool: nothing reaches the server.
func TestSendSendsNothingOnceCancelled(t *testing.T) {
	t.Parallel()
	srv, counted := newServer(t, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = io.WriteString(w, "ok")
	})
	s := newTestSender(t, NewGuard(testAllow))
	if _, err := s.Send(context.Background(), Request{URL: srv.URL, Timeout: time.Second}); err != nil {
		t.Fatal(err)
	}
	for range 20 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err := s.Send(ctx, Request{URL: srv.URL, Timeout: time.Second})
		if !errors.Is(err, context.Canceled) {
			t.Errorf("cancelled send: error %v, want context.Canceled", err)
		}
	}
	time.Sleep(50 * time.Millisecond)
	if n := counted.Load(); n != 1 {
		t.Errorf("server saw %d requests, want only the first", n)
	}
}

// TestSendAgainWhenTheEndpointClosedTheConnectionAsItWentOut answers each
// request and closes the connection without saying so (no Connection:
// close): the next request may go out on it before the close arrives, and
// is then sent once more on a new connection instead of failing.
func TestSendAgainWhenTheEndpointClosedTheConnectionAsItWentOut(t *testing.T) {
	t.Parallel()
	var served atomic.Int32
	addr, _ := loopServer(t, func(c net.Conn) {
		answerEach(c, func(w io.Writer) error {
			served.Add(1)
			_, _ = io.WriteString(w, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
			return io.EOF // and close, without saying so
		})
	})
	s := newTestSender(t, NewGuard(testAllow))
	url := "http://" + addr + "/hook"
	const n = 200
	failed := 0
	for range n {
		resp, err := s.Send(context.Background(), Request{URL: url, Timeout: 2 * time.Second})
		if err != nil || string(resp.Body) != "ok" {
			failed++
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d requests failed", failed, n)
	}
	if got := served.Load(); got != n {
		t.Errorf("endpoint answered %d requests, want %d", got, n)
	}
}
