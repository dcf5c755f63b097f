package dispatch

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"
)

const (
	// DefaultBodyLimit is how many response body bytes Send keeps.
	DefaultBodyLimit = 16384
	// DefaultUserAgent identifies deliveries to receivers.
	DefaultUserAgent = "hookrelay/1 (+https://github.com/hookrelay/hookrelay)"
	// DefaultTimeout applies when a Request has no Timeout.
	DefaultTimeout = 30 * time.Second
	// DefaultMaxIdlePerHost is the keep-alive pool size per host.
	DefaultMaxIdlePerHost = 256

	// drainLimit bounds how much of an over-long body is read and thrown
	// away to keep the connection reusable.
	drainLimit      = 64 << 10
	maxHeaderBytes  = 64 << 10
	maxRetryAfter   = 30 * 24 * time.Hour
	idleConnTimeout = 90 * time.Second
)

// ErrInvalidOption reports a SenderOption with an unusable value.
var ErrInvalidOption = errors.New("invalid sender option")

// Request is one delivery attempt.
type Request struct {
	URL string
	// Body is sent as application/json.
	Body []byte
	// Header holds custom and signature headers, already built.
	Header http.Header
	// Timeout bounds the whole attempt: connect, TLS, headers and body.
	Timeout time.Duration
}

// Response is what the receiver answered.
type Response struct {
	StatusCode int
	// Body holds at most the sender's body limit.
	Body []byte
	// Truncated is set when the receiver sent more than Body holds.
	Truncated bool
	// Location is the redirect target, which is never followed.
	Location string
	// RetryAfter is the parsed Retry-After header, 0 if absent.
	RetryAfter time.Duration
	// Duration covers the attempt from start to the end of the body.
	Duration time.Duration
}

// Kind groups send failures by what the retry policy cares about.
type Kind int

const (
	// KindOther is any failure not covered by the other kinds.
	KindOther Kind = iota
	// KindBlocked means the guard refused the destination address.
	KindBlocked
	// KindTimeout means the attempt exceeded its deadline.
	KindTimeout
	// KindConnect covers DNS, refused or reset connections and TLS failures.
	KindConnect
)

// String returns the kind's lowercase name.
func (k Kind) String() string {
	switch k {
	case KindBlocked:
		return "blocked"
	case KindTimeout:
		return "timeout"
	case KindConnect:
		return "connect"
	}
	return "other"
}

// SendError is returned by Send. Its message never holds the URL, headers
// or bodies, since those may carry secrets.
type SendError struct {
	Kind Kind
	Err  error
}

// Error implements error.
func (e *SendError) Error() string {
	if e.Err == nil {
		return e.Kind.String()
	}
	return e.Err.Error()
}

// Unwrap returns the cause.
func (e *SendError) Unwrap() error { return e.Err }

// timeoutError phrases a deadline failure the way operators think of it.
type timeoutError struct {
	after time.Duration
	err   error
}

func (e *timeoutError) Error() string { return "timeout after " + e.after.String() }

func (e *timeoutError) Unwrap() error { return e.err }

// connectError marks failures from our own dialer, whose causes (such as a
// custom resolver's error) carry no type that says "connect".
type connectError struct{ err error }

func (e *connectError) Error() string { return e.err.Error() }

func (e *connectError) Unwrap() error { return e.err }

// SenderOption configures a Sender.
type SenderOption func(*Sender) error

// WithBodyLimit sets how many response body bytes are kept.
func WithBodyLimit(n int) SenderOption {
	return func(s *Sender) error {
		if n <= 0 {
			return fmt.Errorf("%w: body limit %d is not positive", ErrInvalidOption, n)
		}
		s.bodyLimit = n
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) SenderOption {
	return func(s *Sender) error {
		if ua == "" || strings.ContainsAny(ua, "\r\n") {
			return fmt.Errorf("%w: user agent is empty or has line breaks", ErrInvalidOption)
		}
		s.userAgent = ua
		return nil
	}
}

// WithResolver replaces DNS resolution, mainly so tests never query real
// names.
func WithResolver(fn func(ctx context.Context, host string) ([]netip.Addr, error)) SenderOption {
	return func(s *Sender) error {
		if fn == nil {
			return fmt.Errorf("%w: nil resolver", ErrInvalidOption)
		}
		s.resolve = fn
		return nil
	}
}

// WithMaxIdlePerHost sets the keep-alive pool size per host.
func WithMaxIdlePerHost(n int) SenderOption {
	return func(s *Sender) error {
		if n <= 0 {
			return fmt.Errorf("%w: max idle per host %d is not positive", ErrInvalidOption, n)
		}
		s.maxIdle = n
		return nil
	}
}

// Sender performs delivery attempts. It is safe for concurrent use.
type Sender struct {
	guard     *Guard
	bodyLimit int
	userAgent string
	resolve   func(ctx context.Context, host string) ([]netip.Addr, error)
	maxIdle   int
	tlsConfig *tls.Config
	conns     *connPool
}

// NewSender returns a Sender whose connections only reach addresses guard
// accepts; a nil guard blocks every non-public address.
func NewSender(guard *Guard, opts ...SenderOption) (*Sender, error) {
	if guard == nil {
		guard = NewGuard(nil)
	}
	s := &Sender{
		guard:     guard,
		bodyLimit: DefaultBodyLimit,
		userAgent: DefaultUserAgent,
		resolve:   lookupNetIP,
		maxIdle:   DefaultMaxIdlePerHost,
	}
	for _, opt := range opts {
		if err := opt(s); err != nil {
			return nil, err
		}
	}
	// HTTP/1.1 only, no proxy (an environment proxy would dial for us,
	// past the guard), no compression (acks are small; gzip would only
	// let a tiny reply expand), redirects returned and never followed.
	s.tlsConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	s.conns = newConnPool(s.maxIdle)
	return s, nil
}

func lookupNetIP(ctx context.Context, host string) ([]netip.Addr, error) {
	return net.DefaultResolver.LookupNetIP(ctx, "ip", host)
}

// Close drops idle keep-alive connections.
func (s *Sender) Close() {
	s.conns.closeIdle()
}

// dialContext resolves the host itself so that the address checked is the
// address dialled; letting the dialer resolve would allow DNS rebinding.
func (s *Sender) dialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, &connectError{err}
	}
	ips, err := s.lookup(ctx, host)
	if err != nil {
		return nil, err
	}
	ips, err = s.permitted(ips)
	if err != nil {
		return nil, err
	}
	return s.dialFirst(ctx, network, ips, port)
}

// permitted keeps the addresses the guard accepts. Dropping the others rather
// than refusing the name keeps "localhost" usable when only 127.0.0.0/8 is
// allowed but the resolver also answers ::1; a rebinding answer that mixes in
// internal addresses still never gets them dialled.
func (s *Sender) permitted(ips []netip.Addr) ([]netip.Addr, error) {
	var ok []netip.Addr
	var firstErr error
	for _, ip := range ips {
		err := s.guard.CheckIP(ip)
		if err == nil {
			ok = append(ok, ip)
		} else if firstErr == nil {
			firstErr = err
		}
	}
	if len(ok) == 0 {
		return nil, firstErr
	}
	return ok, nil
}

func (s *Sender) lookup(ctx context.Context, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{ip.Unmap()}, nil
	}
	ips, err := s.resolve(ctx, host)
	if err != nil {
		return nil, &connectError{fmt.Errorf("resolve %s: %w", host, err)}
	}
	if len(ips) == 0 {
		return nil, &connectError{fmt.Errorf("resolve %s: no addresses", host)}
	}
	for i, ip := range ips {
		ips[i] = ip.Unmap() // resolvers may answer IPv4 in its IPv6-mapped form
	}
	return ips, nil
}

func (s *Sender) dialFirst(ctx context.Context, network string, ips []netip.Addr,
	port string) (net.Conn, error) {
	d := &net.Dialer{Control: s.control}
	var lastErr error
	for _, ip := range ips {
		conn, err := d.DialContext(ctx, network, net.JoinHostPort(ip.String(), port))
		if err == nil {
			return conn, nil
		}
		lastErr = err
	}
	return nil, &connectError{lastErr}
}

// control checks the socket's actual peer address right before connect, a
// second line of defence should an address reach the dialer unchecked.
func (s *Sender) control(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("parse dial address: %w", err)
	}
	return s.guard.CheckIP(ap.Addr())
}

// Send POSTs req.Body to req.URL and reads the response within req.Timeout.
// Its own Content-Type and User-Agent replace any in req.Header.
// Redirects are returned, not followed. On failure the returned Response
// still carries Duration.
func (s *Sender) Send(ctx context.Context, req Request) (Response, error) {
	timeout := req.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := s.do(ctx, req)
	resp.Duration = time.Since(start)
	if err != nil {
		return resp, classifyErr(ctx, err, timeout)
	}
	return resp, nil
}

func (s *Sender) do(ctx context.Context, req Request) (Response, error) {
	t, err := parseTarget(req.URL)
	if err != nil {
		return Response{}, err
	}
	return s.roundTrip(ctx, &t, &req)
}

// parseRetryAfter accepts delay-seconds or an HTTP-date; anything else, or a
// date in the past, means no hint.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseUint(v, 10, 64); err == nil {
		return time.Duration(min(secs, uint64(maxRetryAfter/time.Second))) * time.Second
	}
	t, err := http.ParseTime(v)
	if err != nil || !t.After(now) {
		return 0
	}
	return min(t.Sub(now), maxRetryAfter)
}

func classifyErr(ctx context.Context, err error, timeout time.Duration) *SendError {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err // url.Error repeats the URL, which may hold a token
	}
	switch {
	case errors.Is(err, ErrBlocked):
		return &SendError{Kind: KindBlocked, Err: err}
	case isTimeout(ctx, err):
		return &SendError{Kind: KindTimeout, Err: &timeoutError{after: timeout, err: err}}
	case isConnect(err):
		return &SendError{Kind: KindConnect, Err: err}
	}
	return &SendError{Kind: KindOther, Err: err}
}

func isTimeout(ctx context.Context, err error) bool {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func isConnect(err error) bool {
	var (
		ce     *connectError
		opErr  *net.OpError
		dnsErr *net.DNSError
		recErr tls.RecordHeaderError
		alert  tls.AlertError
		verify *tls.CertificateVerificationError
	)
	return errors.As(err, &ce) || errors.As(err, &opErr) || errors.As(err, &dnsErr) ||
		errors.As(err, &recErr) || errors.As(err, &alert) || errors.As(err, &verify) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED)
}
