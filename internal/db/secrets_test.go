package db_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/db/dbtest"
)

const (
	testKey  = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=" // 32 bytes
	otherKey = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="
)

func TestSecretsAreEncryptedAtRest(t *testing.T) {
	t.Parallel()
	pool, _ := dbtest.Open(t)
	ctx := t.Context()
	store := db.NewStore(pool)
	if err := store.UseSecretKey(testKey); err != nil {
		t.Fatal(err)
	}
	_, err := store.CreateEndpoint(ctx, db.Endpoint{
		ID: "ep_enc", URL: "https://example.com/", EventTypes: []string{"*"},
		SignatureScheme: "standard", Secrets: []string{"whsec_plain"}, Active: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.RotateSecret(ctx, "ep_enc", "whsec_next", time.Hour); err != nil {
		t.Fatal(err)
	}

	t.Run("the column holds no plain secret", func(t *testing.T) {
		var stored []string
		err := pool.QueryRow(ctx, "SELECT secrets FROM endpoints WHERE id = 'ep_enc'").Scan(&stored)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range stored {
			if !strings.HasPrefix(s, "enc:v1:") || strings.Contains(s, "whsec_") {
				t.Errorf("stored secret %q is not encrypted", s)
			}
		}
	})
	t.Run("the store reads them back in plain text", func(t *testing.T) {
		e, err := store.GetEndpoint(ctx, "ep_enc")
		if err != nil {
			t.Fatal(err)
		}
		if len(e.Secrets) != 2 || e.Secrets[0] != "whsec_next" || e.Secrets[1] != "whsec_plain" {
			t.Fatalf("secrets = %v", e.Secrets)
		}
	})
	t.Run("without the key or with another the read fails clearly", func(t *testing.T) {
		other := db.NewStore(pool)
		if _, err := other.GetEndpoint(ctx, "ep_enc"); !errors.Is(err, db.ErrSecretKey) {
			t.Errorf("no key: err = %v, want ErrSecretKey", err)
		}
		if err := other.UseSecretKey(otherKey); err != nil {
			t.Fatal(err)
		}
		if _, err := other.GetEndpoint(ctx, "ep_enc"); !errors.Is(err, db.ErrSecretKey) {
			t.Errorf("wrong key: err = %v, want ErrSecretKey", err)
		}
	})
	t.Run("a start-up check tells whether the key in use reads them", func(t *testing.T) {
		if err := store.CheckSecrets(ctx); err != nil {
			t.Errorf("right key: %v", err)
		}
		if err := db.NewStore(pool).CheckSecrets(ctx); !errors.Is(err, db.ErrSecretKey) {
			t.Errorf("no key: err = %v, want ErrSecretKey", err)
		}
		plainPool, _ := dbtest.Open(t)
		if err := db.NewStore(plainPool).CheckSecrets(ctx); err != nil {
			t.Errorf("nothing encrypted: %v", err)
		}
	})
	t.Run("a malformed key is refused", func(t *testing.T) {
		if err := db.NewStore(pool).UseSecretKey("c2hvcnQ="); err == nil {
			t.Error("a 5-byte key was accepted")
		}
	})
}
