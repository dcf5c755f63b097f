package db

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// encryptedPrefix marks a secret stored encrypted.
const encryptedPrefix = "enc:v1:"

// ErrSecretKey is returned when stored secrets cannot be read with the key
// given (or without one).
var ErrSecretKey = errors.New("endpoint secrets cannot be decrypted")

// UseSecretKey makes the store encrypt endpoint secrets at rest with
// AES-256-GCM under key, the base64 of 32 bytes. Secrets stored before the
// key was set are still read, and encrypted when next written. Call it
// before the store is used.
func (s *Store) UseSecretKey(key string) error {
	raw, err := base64.StdEncoding.DecodeString(key)
	if err != nil || len(raw) != 32 {
		return errors.New("secret key must be the base64 of 32 bytes")
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return fmt.Errorf("secret key: %w", err)
	}
	s.aead, err = cipher.NewGCM(block)
	return err
}

func (s *Store) sealAll(secrets []string) []string {
	if s.aead == nil {
		return secrets
	}
	out := make([]string, len(secrets))
	for i, sec := range secrets {
		nonce := make([]byte, s.aead.NonceSize())
		_, _ = rand.Read(nonce)
		sealed := s.aead.Seal(nonce, nonce, []byte(sec), nil)
		out[i] = encryptedPrefix + base64.StdEncoding.EncodeToString(sealed)
	}
	return out
}

func (s *Store) openAll(secrets []string) ([]string, error) {
	out := make([]string, len(secrets))
	for i, sec := range secrets {
		plain, err := s.open(sec)
		if err != nil {
			return nil, err
		}
		out[i] = plain
	}
	return out, nil
}

func (s *Store) open(sec string) (string, error) {
	if !strings.HasPrefix(sec, encryptedPrefix) {
		return sec, nil
	}
	if s.aead == nil {
		return "", fmt.Errorf("%w: they are encrypted and no secret key is set", ErrSecretKey)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, encryptedPrefix))
	ns := s.aead.NonceSize()
	if err != nil || len(raw) < ns {
		return "", fmt.Errorf("%w: stored value is malformed", ErrSecretKey)
	}
	plain, err := s.aead.Open(nil, raw[:ns], raw[ns:], nil)
	if err != nil {
		return "", fmt.Errorf("%w: wrong secret key", ErrSecretKey)
	}
	return string(plain), nil
}

// CheckSecrets reports whether the endpoint secrets stored encrypted can be
// read with the key in use (or without one): a consumer that cannot read
// them must not start, or it would hold back every delivery to those
// endpoints.
func (s *Store) CheckSecrets(ctx context.Context) error {
	row, err := s.q.EndpointEncryptedSecrets(ctx, s.pool)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("check endpoint secrets: %w", err)
	}
	if _, err := s.openAll(row.Secrets); err != nil {
		return fmt.Errorf("endpoint %s: %w", row.ID, err)
	}
	return nil
}
