package main

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// Standard Webhooks headers.
const (
	headerID        = "webhook-id"
	headerTimestamp = "webhook-timestamp"
	headerSignature = "webhook-signature"
	secretPrefix    = "whsec_"
)

// secretList is the --secret flag: whsec_ secrets, repeated or separated by
// commas. Set keeps them as given, so that flag errors never echo a secret;
// decode checks them.
type secretList struct {
	raw  []string
	keys [][]byte
}

// String tells how many secrets there are, never the secrets.
func (s *secretList) String() string {
	if s == nil || len(s.raw) == 0 {
		return ""
	}
	return fmt.Sprintf("%d secret(s)", len(s.raw))
}

// Set adds the secrets of one --secret flag.
func (s *secretList) Set(v string) error {
	for _, part := range strings.Split(v, ",") {
		s.raw = append(s.raw, strings.TrimSpace(part))
	}
	return nil
}

// decode turns every secret into its HMAC key.
func (s *secretList) decode() error {
	s.keys = make([][]byte, len(s.raw))
	for i, secret := range s.raw {
		var err error
		if s.keys[i], err = decodeSecret(secret); err != nil {
			return fmt.Errorf("--secret: secret %d %w", i+1, err)
		}
	}
	return nil
}

func decodeSecret(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, secretPrefix)
	if !ok {
		return nil, errors.New("does not start with " + secretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(key) == 0 {
		return nil, errors.New("is not base64 after " + secretPrefix)
	}
	return key, nil
}

// verified reports whether any v1 signature in h matches body under any of
// keys.
func verified(keys [][]byte, h http.Header, body []byte) bool {
	id, ts := h.Get(headerID), h.Get(headerTimestamp)
	if id == "" || ts == "" {
		return false
	}
	sigs := signatures(h.Get(headerSignature))
	for _, key := range keys {
		if anyEqual(sigs, sign(key, id, ts, body)) {
			return true
		}
	}
	return false
}

// anyEqual reports in constant time per signature whether one is want.
func anyEqual(sigs [][]byte, want []byte) bool {
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			return true
		}
	}
	return false
}

// signatures decodes the v1 signatures of a webhook-signature header.
func signatures(header string) [][]byte {
	var out [][]byte
	for _, field := range strings.Fields(header) {
		b64, ok := strings.CutPrefix(field, "v1,")
		if !ok {
			continue
		}
		if sig, err := base64.StdEncoding.DecodeString(b64); err == nil {
			out = append(out, sig)
		}
	}
	return out
}

// sign is the HMAC-SHA256 of "id.timestamp.body".
func sign(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return m.Sum(nil)
}
