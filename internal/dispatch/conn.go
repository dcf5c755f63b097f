package dispatch

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The sender speaks HTTP/1.1 itself: the attempt's goroutine writes the
// request on a kept-alive connection and reads the answer from it.
// net/http's Transport hands each request to two goroutines of the
// connection and builds a Request and its header maps on the way, which
// cost a third of the client's CPU per small request. Responses are still
// parsed by http.ReadResponse.

// errHeadTooLong is returned for a response whose status line and headers
// exceed maxHeaderBytes.
var errHeadTooLong = fmt.Errorf("response headers exceed %d bytes", maxHeaderBytes)

// max1xx bounds the informational responses skipped before the answer.
const max1xx = 5

// aLongTimeAgo is a deadline in the past, which interrupts blocked I/O.
var aLongTimeAgo = time.Unix(1, 0)

// target is where a request goes, taken from its URL.
type target struct {
	https      bool
	addr       string // host:port dialled
	host       string // Host header
	serverName string // TLS server name
	uri        string // request target
	key        string // keep-alive pool key: scheme, host and port
}

func parseTarget(raw string) (target, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return target{}, err
	}
	var t target
	port := u.Port()
	switch u.Scheme {
	case "http":
		port = orDefault(port, "80")
	case "https":
		t.https, port = true, orDefault(port, "443")
	default:
		return target{}, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
	hostname := u.Hostname()
	if hostname == "" {
		return target{}, errors.New("URL has no host")
	}
	if t.host, err = httpguts.PunycodeHostPort(u.Host); err != nil {
		return target{}, fmt.Errorf("URL host: %w", err)
	}
	t.serverName = hostname
	t.addr = net.JoinHostPort(hostname, port)
	t.uri = u.RequestURI()
	t.key = u.Scheme + "://" + t.addr
	return t, nil
}

// orDefault returns s, or def when s is empty.
func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// persistConn is a kept-alive connection to one origin.
type persistConn struct {
	key  string
	conn net.Conn // what requests go through: TLS over tcp for https
	tcp  net.Conn // the TCP connection
	head headLimit
	br   *bufio.Reader
	out  []byte // the request being written, kept for the next one
	// idleAt is when the connection went back to the pool.
	idleAt time.Time
}

// headLimit bounds what a response's head may read from the connection,
// and counts what the connection gave.
type headLimit struct {
	r   io.Reader
	n   int64
	on  bool
	got int64
}

func (l *headLimit) Read(p []byte) (int, error) {
	if l.on {
		if l.n <= 0 {
			return 0, errHeadTooLong
		}
		if int64(len(p)) > l.n {
			p = p[:l.n]
		}
	}
	n, err := l.r.Read(p)
	l.got += int64(n)
	if l.on {
		l.n -= int64(n)
	}
	return n, err
}

// maxKeptOut is the largest request buffer a connection keeps for reuse.
const maxKeptOut = 64 << 10

// connPool keeps idle connections per origin, most recently used first,
// and closes those idle longer than idleConnTimeout.
type connPool struct {
	mu      sync.Mutex
	idle    map[string][]*persistConn
	maxIdle int
	sweep   *time.Timer
}

func newConnPool(maxIdle int) *connPool {
	return &connPool{idle: map[string][]*persistConn{}, maxIdle: maxIdle}
}

// get returns an idle connection to key that is still open, or nil.
func (p *connPool) get(key string, now time.Time) *persistConn {
	for {
		p.mu.Lock()
		list := p.idle[key]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		pc := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[key] = list[:len(list)-1]
		p.mu.Unlock()
		if now.Sub(pc.idleAt) < idleConnTimeout && pc.open() {
			return pc
		}
		_ = pc.conn.Close()
	}
}

// put keeps pc for the next request to its origin, unless the origin has
// maxIdle idle connections already.
func (p *connPool) put(pc *persistConn, now time.Time) {
	p.mu.Lock()
	if len(p.idle[pc.key]) >= p.maxIdle {
		p.mu.Unlock()
		_ = pc.conn.Close()
		return
	}
	pc.idleAt = now
	p.idle[pc.key] = append(p.idle[pc.key], pc)
	if p.sweep == nil {
		p.sweep = time.AfterFunc(idleConnTimeout, p.closeExpired)
	}
	p.mu.Unlock()
}

// closeExpired closes the connections idle for idleConnTimeout, and comes
// back while any are left.
func (p *connPool) closeExpired() {
	now := time.Now()
	var expired []*persistConn
	p.mu.Lock()
	for key, list := range p.idle {
		kept := list[:0]
		for _, pc := range list {
			if now.Sub(pc.idleAt) >= idleConnTimeout {
				expired = append(expired, pc)
			} else {
				kept = append(kept, pc)
			}
		}
		clear(list[len(kept):])
		if len(kept) == 0 {
			delete(p.idle, key)
		} else {
			p.idle[key] = kept
		}
	}
	p.sweep = nil
	if len(p.idle) > 0 {
		p.sweep = time.AfterFunc(idleConnTimeout/2, p.closeExpired)
	}
	p.mu.Unlock()
	for _, pc := range expired {
		_ = pc.conn.Close()
	}
}

// closeIdle closes every idle connection.
func (p *connPool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = map[string][]*persistConn{}
	if p.sweep != nil {
		p.sweep.Stop()
		p.sweep = nil
	}
	p.mu.Unlock()
	for _, list := range idle {
		for _, pc := range list {
			_ = pc.conn.Close()
		}
	}
}

// dial connects to t through the guarded dialer, with TLS for https.
func (s *Sender) dial(ctx context.Context, t *target) (*persistConn, error) {
	tcp, err := s.dialContext(ctx, "tcp", t.addr)
	if err != nil {
		return nil, err
	}
	conn := tcp
	if t.https {
		cfg := s.tlsConfig.Clone()
		cfg.ServerName = t.serverName
		tc := tls.Client(tcp, cfg)
		if err := tc.HandshakeContext(ctx); err != nil {
			_ = tcp.Close()
			return nil, err
		}
		conn = tc
	}
	pc := &persistConn{key: t.key, conn: conn, tcp: tcp}
	pc.head.r = conn
	pc.br = bufio.NewReader(&pc.head)
	return pc, nil
}

// open reports whether an idle connection can take a request: the server
// has neither closed it nor sent anything unasked (such as a TLS alert),
// and TLS holds no bytes it read past the last answer.
func (pc *persistConn) open() bool {
	if !socketQuiet(pc.tcp) {
		return false
	}
	if pc.conn == pc.tcp {
		return true
	}
	// With the deadline past, TLS reads only what it holds already.
	if pc.conn.SetReadDeadline(aLongTimeAgo) != nil {
		return false
	}
	_, err := pc.br.Peek(1)
	return errors.Is(err, os.ErrDeadlineExceeded)
}

// roundTrip sends req to t on a kept-alive connection or a new one, and
// reads the answer within ctx. Nothing is sent once ctx is done. A request
// that finds its kept-alive connection closed by the endpoint before any
// byte of an answer (the endpoint closed it as the request went out) is
// sent once more, on a new connection.
func (s *Sender) roundTrip(ctx context.Context, t *target, req *Request) (Response, error) {
	if err := ctx.Err(); err != nil {
		return Response{}, err
	}
	if pc := s.conns.get(t.key, time.Now()); pc != nil {
		resp, unanswered, err := s.exchangeOn(ctx, pc, t, req)
		if !unanswered || ctx.Err() != nil {
			return resp, cancelled(ctx, err)
		}
	}
	pc, err := s.dial(ctx, t)
	if err != nil {
		return Response{}, err
	}
	resp, _, err := s.exchangeOn(ctx, pc, t, req)
	return resp, cancelled(ctx, err)
}

// cancelled returns ctx's error in place of err when ctx was cancelled,
// which cut the connection's I/O short.
func cancelled(ctx context.Context, err error) error {
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		return ctx.Err()
	}
	return err
}

// exchangeOn sends req on pc within ctx and reads its answer. pc goes back
// to the pool only when the answer was read to its end and the server keeps
// it open. unanswered is set when the connection turned out closed before
// any byte of an answer came.
func (s *Sender) exchangeOn(ctx context.Context, pc *persistConn, t *target, req *Request) (
	resp Response, unanswered bool, err error) {
	// The deadline is set before a cancel may interrupt the connection's
	// I/O by moving it into the past, and so never undoes the cancel.
	dl, _ := ctx.Deadline()
	if err := pc.conn.SetDeadline(dl); err != nil {
		_ = pc.conn.Close()
		return Response{}, false, err
	}
	stop := context.AfterFunc(ctx, func() { _ = pc.conn.SetDeadline(aLongTimeAgo) })
	var reusable bool
	err = ctx.Err() // a cancel that came meanwhile sends nothing
	got := pc.head.got
	if err == nil {
		resp, reusable, err = s.exchange(pc, t, req)
	}
	if stop() && reusable && pc.conn.SetDeadline(time.Time{}) == nil {
		s.conns.put(pc, time.Now())
	} else {
		_ = pc.conn.Close()
	}
	return resp, err != nil && pc.head.got == got && closedByPeer(err), err
}

// closedByPeer reports whether err is the end of a connection the other
// side closed or reset.
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (s *Sender) exchange(pc *persistConn, t *target, req *Request) (
	resp Response, reusable bool, err error) {
	out, err := s.appendRequest(pc.out[:0], t, req)
	if err != nil {
		return Response{}, false, err
	}
	if cap(out) <= maxKeptOut {
		pc.out = out
	} else {
		pc.out = nil
	}
	if _, err := pc.conn.Write(out); err != nil {
		return Response{}, false, err
	}
	hresp, err := readResponseHead(pc)
	if err != nil {
		return Response{}, false, err
	}
	resp, complete, err := s.readAnswer(hresp)
	return resp, err == nil && complete && !hresp.Close && pc.br.Buffered() == 0, err
}

// readResponseHead reads the status line and headers of the answer, past
// any informational (1xx) responses.
func readResponseHead(pc *persistConn) (*http.Response, error) {
	pc.head.on, pc.head.n = true, maxHeaderBytes
	defer func() { pc.head.on = false }()
	for range max1xx + 1 {
		hresp, err := http.ReadResponse(pc.br, nil)
		if err != nil {
			return nil, err
		}
		switch {
		case hresp.StatusCode == http.StatusSwitchingProtocols:
			return nil, errors.New("unexpected 101 Switching Protocols")
		case hresp.StatusCode >= 200, hresp.StatusCode < 100:
			return hresp, nil
		}
		pc.head.n = maxHeaderBytes
	}
	return nil, fmt.Errorf("more than %d informational responses", max1xx)
}

// readAnswer keeps up to the body limit of the answer's body, and reads a
// bounded tail past it so that the connection can be used again; complete
// is set when the body was read to its end.
func (s *Sender) readAnswer(hresp *http.Response) (resp Response, complete bool, err error) {
	resp = Response{
		StatusCode: hresp.StatusCode,
		Location:   hresp.Header.Get("Location"),
		RetryAfter: parseRetryAfter(hresp.Header.Get("Retry-After"), time.Now()),
	}
	body, err := io.ReadAll(io.LimitReader(hresp.Body, int64(s.bodyLimit)))
	if err != nil {
		return resp, false, fmt.Errorf("read body: %w", err)
	}
	resp.Body = body
	if hresp.ContentLength > int64(s.bodyLimit)+drainLimit {
		// Too long to read past: the connection is dropped.
		resp.Truncated = true
		return resp, false, nil
	}
	// Errors past the limit are ignored: the answer is already in hand.
	n, err := io.CopyN(io.Discard, hresp.Body, drainLimit)
	resp.Truncated = n > 0
	return resp, errors.Is(err, io.EOF), nil
}

// headersNotCopied are written by appendRequest itself, or belong to the
// connection; a request's own values for them are not sent.
var headersNotCopied = map[string]bool{
	"Host": true, "User-Agent": true, "Content-Type": true, "Content-Length": true,
	"Transfer-Encoding": true, "Trailer": true, "Connection": true,
}

// appendRequest appends req as an HTTP/1.1 POST to t. Header names and
// values are checked as net/http checks them, so that nothing a header
// holds can end the head early.
func (s *Sender) appendRequest(b []byte, t *target, req *Request) ([]byte, error) {
	b = append(b, "POST "...)
	b = append(b, t.uri...)
	b = append(b, " HTTP/1.1\r\nHost: "...)
	b = append(b, t.host...)
	b = append(b, "\r\nUser-Agent: "...)
	b = append(b, s.userAgent...)
	b = append(b, "\r\nContent-Type: application/json\r\nContent-Length: "...)
	b = strconv.AppendInt(b, int64(len(req.Body)), 10)
	b = append(b, "\r\n"...)
	for name, values := range req.Header {
		if headersNotCopied[textproto.CanonicalMIMEHeaderKey(name)] {
			continue
		}
		if !httpguts.ValidHeaderFieldName(name) {
			return nil, fmt.Errorf("invalid header field name %q", name)
		}
		for _, v := range values {
			if !httpguts.ValidHeaderFieldValue(v) {
				return nil, fmt.Errorf("invalid header field value for %q", name)
			}
			b = append(b, name...)
			b = append(b, ": "...)
			b = append(b, v...)
			b = append(b, "\r\n"...)
		}
	}
	b = append(b, "\r\n"...)
	return append(b, req.Body...), nil
}
