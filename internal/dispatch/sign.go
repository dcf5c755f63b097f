// Package dispatch sends webhook deliveries: it signs payloads, refuses
// destinations that would reach internal networks, performs the HTTP request
// and decides whether a failed attempt is retried.
package dispatch

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Scheme names the signature format an endpoint expects.
type Scheme string

const (
	// SchemeStandard signs per the Standard Webhooks specification.
	SchemeStandard Scheme = "standard"
	// SchemeKMsg signs with a hex HMAC-SHA256 over "timestamp.body" in
	// X-Webhook-* headers, the format kmsg receivers verify.
	SchemeKMsg Scheme = "kmsg"
)

const (
	secretPrefix    = "whsec_"
	secretBytes     = 32
	minSecretBytes  = 24
	maxSecretBytes  = 64
	maxKMsgSecretSz = 1024
)

var (
	// ErrInvalidSecret reports a signing secret that a scheme cannot use.
	ErrInvalidSecret = errors.New("invalid secret")
	// ErrUnknownScheme reports a signature scheme this package does not know.
	ErrUnknownScheme = errors.New("unknown signature scheme")
	// ErrNoSecret reports a signing request without any secret.
	ErrNoSecret = errors.New("no signing secret")
)

// SecretError says why a secret is unusable; it never includes the secret
// itself so it is safe to log and to return to API clients.
type SecretError struct {
	Scheme Scheme
	Reason string
}

// Error implements error.
func (e *SecretError) Error() string {
	return fmt.Sprintf("invalid %s secret: %s", e.Scheme, e.Reason)
}

// Unwrap lets errors.Is match ErrInvalidSecret.
func (e *SecretError) Unwrap() error { return ErrInvalidSecret }

// GenerateSecret returns a new Standard Webhooks secret: "whsec_" followed
// by the standard base64 encoding of 32 random bytes.
func GenerateSecret() (string, error) {
	key := make([]byte, secretBytes)
	if _, err := rand.Read(key); err != nil {
		return "", fmt.Errorf("generate secret: %w", err)
	}
	return secretPrefix + base64.StdEncoding.EncodeToString(key), nil
}

// ValidateSecret reports whether secret can sign under scheme.
func ValidateSecret(scheme Scheme, secret string) error {
	switch scheme {
	case SchemeStandard:
		_, err := standardKey(secret)
		return err
	case SchemeKMsg:
		return validateKMsgSecret(secret)
	}
	return fmt.Errorf("%w: %q", ErrUnknownScheme, string(scheme))
}

// standardKey decodes a whsec_ secret into its HMAC key.
func standardKey(secret string) ([]byte, error) {
	encoded, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, &SecretError{Scheme: SchemeStandard, Reason: "missing whsec_ prefix"}
	}
	key, err := base64.StdEncoding.DecodeString(encoded)
	if err != nil {
		return nil, &SecretError{Scheme: SchemeStandard, Reason: "not valid base64"}
	}
	if len(key) < minSecretBytes || len(key) > maxSecretBytes {
		reason := fmt.Sprintf("key is %d bytes, want %d-%d",
			len(key), minSecretBytes, maxSecretBytes)
		return nil, &SecretError{Scheme: SchemeStandard, Reason: reason}
	}
	return key, nil
}

func validateKMsgSecret(secret string) error {
	switch {
	case secret == "":
		return &SecretError{Scheme: SchemeKMsg, Reason: "empty"}
	case len(secret) > maxKMsgSecretSz:
		reason := fmt.Sprintf("longer than %d bytes", maxKMsgSecretSz)
		return &SecretError{Scheme: SchemeKMsg, Reason: reason}
	}
	return nil
}

// SignatureHeaders builds the signature headers for one delivery. secrets[0]
// is the newest secret; the standard scheme signs with every secret so
// receivers keep verifying during rotation, kmsg signs with secrets[0] only
// because its header carries a single signature.
func SignatureHeaders(scheme Scheme, secrets []string, id, eventType string,
	ts time.Time, body []byte) (http.Header, error) {
	if len(secrets) == 0 {
		return nil, ErrNoSecret
	}
	switch scheme {
	case SchemeStandard:
		return standardHeaders(secrets, id, ts, body)
	case SchemeKMsg:
		return kmsgHeaders(secrets[0], id, eventType, ts, body)
	}
	return nil, fmt.Errorf("%w: %q", ErrUnknownScheme, string(scheme))
}

func standardHeaders(secrets []string, id string, ts time.Time, body []byte) (http.Header, error) {
	unix := strconv.FormatInt(ts.Unix(), 10)
	sigs := make([]string, 0, len(secrets))
	for i, secret := range secrets {
		key, err := standardKey(secret)
		if err != nil {
			return nil, fmt.Errorf("secret %d: %w", i, err)
		}
		mac := hmacSHA256(key, id+"."+unix+".", body)
		sigs = append(sigs, "v1,"+base64.StdEncoding.EncodeToString(mac))
	}
	// Keys in canonical form, as Set would write them, without its work.
	return http.Header{
		"Webhook-Id":        {id},
		"Webhook-Timestamp": {unix},
		"Webhook-Signature": {strings.Join(sigs, " ")},
	}, nil
}

func kmsgHeaders(secret, id, eventType string, ts time.Time, body []byte) (http.Header, error) {
	if err := validateKMsgSecret(secret); err != nil {
		return nil, fmt.Errorf("secret 0: %w", err)
	}
	unix := strconv.FormatInt(ts.Unix(), 10)
	mac := hmacSHA256([]byte(secret), unix+".", body)
	h := make(http.Header, 4)
	h.Set("X-Webhook-ID", id)
	h.Set("X-Webhook-Event", eventType)
	h.Set("X-Webhook-Timestamp", unix)
	h.Set("X-Webhook-Signature", "sha256="+hex.EncodeToString(mac))
	return h, nil
}

// hmacSHA256 signs prefix+body without concatenating them, so a large body
// is not copied once per secret.
func hmacSHA256(key []byte, prefix string, body []byte) []byte {
	pool := macs.pool(key)
	m := pool.Get().(hash.Hash)
	m.Reset()
	_, _ = io.WriteString(m, prefix)
	m.Write(body)
	sum := m.Sum(nil)
	pool.Put(m)
	return sum
}

// macs keeps HMAC-SHA256 states keyed with the secrets in use: keying one
// costs two SHA-256 blocks and several allocations, about what signing a
// small event costs, and every delivery to an endpoint signs with the same
// secrets.
var macs = macCache{m: map[string]*sync.Pool{}}

// macCacheMax bounds the keys kept; past it the cache starts over, so the
// keys of rotated-out secrets and deleted endpoints do not pile up.
const macCacheMax = 4096

type macCache struct {
	mu sync.Mutex
	m  map[string]*sync.Pool // key bytes → states keyed with them
}

// pool returns the pool of states keyed with key.
func (c *macCache) pool(key []byte) *sync.Pool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if p := c.m[string(key)]; p != nil {
		return p
	}
	if len(c.m) >= macCacheMax {
		c.m = map[string]*sync.Pool{}
	}
	k := string(key)
	p := &sync.Pool{New: func() any { return hmac.New(sha256.New, []byte(k)) }}
	c.m[k] = p
	return p
}
