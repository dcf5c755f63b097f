package dispatch

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const kmsgBody = `{"id":"evt_1","type":"message.sent","timestamp":"2023-11-14T22:13:20.123Z",` +
	`"data":{"messageId":"msg_1","status":"sent"},` +
	`"metadata":{"providerId":"iwinv","messageId":"msg_1"},"version":"1.0"}`

func TestKMsgSignatureMatchesVector(t *testing.T) {
	t.Parallel()
	ts := time.Unix(1700000000, 0)
	h, err := SignatureHeaders(SchemeKMsg, []string{"whsec_test", "older"}, "evt_1",
		"message.sent", ts, []byte(kmsgBody))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"X-Webhook-Signature": "sha256=" +
			"71f0f6c572f85e872d912a480d14541e9a935d08386b93d225a8e242900554b8",
		"X-Webhook-Timestamp": "1700000000",
		"X-Webhook-Id":        "evt_1",
		"X-Webhook-Event":     "message.sent",
	}
	for k, v := range want {
		if got := h.Get(k); got != v {
			t.Errorf("%s = %q, want %q", k, got, v)
		}
	}
}

func TestStandardSignatureVerifiesWithReferenceLibrary(t *testing.T) {
	t.Parallel()
	newest, older := mustSecret(t), mustSecret(t)
	bodies := map[string]string{
		"plain json":      `{"type":"ping"}`,
		"html characters": `{"q":"a&b<c>d","u":"\u0026"}`,
		"korean text":     `{"msg":"안녕하세요, 웹훅입니다"}`,
		"emoji":           `{"msg":"🚀🎉 done ✅"}`,
		"empty body":      ``,
	}
	for name, body := range bodies {
		t.Run(name+" verifies with each secret", func(t *testing.T) {
			t.Parallel()
			h, err := SignatureHeaders(SchemeStandard, []string{newest, older}, "msg_1",
				"x.y", time.Now(), []byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if n := len(strings.Fields(h.Get("webhook-signature"))); n != 2 {
				t.Fatalf("got %d signatures, want 2", n)
			}
			for i, secret := range []string{newest, older} {
				wh, err := standardwebhooks.NewWebhook(secret)
				if err != nil {
					t.Fatal(err)
				}
				if err := wh.Verify([]byte(body), h); err != nil {
					t.Errorf("secret %d: %v", i, err)
				}
			}
		})
	}
}

func TestStandardSignatureRejectsTamperedBody(t *testing.T) {
	t.Parallel()
	secret := mustSecret(t)
	h, err := SignatureHeaders(SchemeStandard, []string{secret}, "msg_1", "", time.Now(),
		[]byte(`{"a":1}`))
	if err != nil {
		t.Fatal(err)
	}
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	if err := wh.Verify([]byte(`{"a":2}`), h); err == nil {
		t.Fatal("tampered body verified")
	}
}

func TestGenerateSecretIsValidAndUnique(t *testing.T) {
	t.Parallel()
	a, b := mustSecret(t), mustSecret(t)
	if a == b {
		t.Fatal("two generated secrets are equal")
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(a, "whsec_"))
	if err != nil || len(key) != 32 {
		t.Fatalf("decoded %d bytes, err %v; want 32 bytes", len(key), err)
	}
	if err := ValidateSecret(SchemeStandard, a); err != nil {
		t.Fatal(err)
	}
}

func TestValidateSecret(t *testing.T) {
	t.Parallel()
	b64 := func(n int) string {
		return "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, n))
	}
	tests := []struct {
		name   string
		scheme Scheme
		secret string
		want   error
		reason string
	}{
		{"standard 24 bytes is accepted", SchemeStandard, b64(24), nil, ""},
		{"standard 64 bytes is accepted", SchemeStandard, b64(64), nil, ""},
		{"standard 23 bytes is too short", SchemeStandard, b64(23), ErrInvalidSecret, "23 bytes"},
		{"standard 65 bytes is too long", SchemeStandard, b64(65), ErrInvalidSecret, "65 bytes"},
		{"standard without prefix is refused", SchemeStandard,
			strings.TrimPrefix(b64(32), "whsec_"), ErrInvalidSecret, "prefix"},
		{"standard bad base64 is refused", SchemeStandard, "whsec_!!!", ErrInvalidSecret, "base64"},
		{"kmsg any text is accepted", SchemeKMsg, "whsec_test", nil, ""},
		{"kmsg empty is refused", SchemeKMsg, "", ErrInvalidSecret, "empty"},
		{"kmsg over 1024 bytes is refused", SchemeKMsg, strings.Repeat("a", 1025),
			ErrInvalidSecret, "1024"},
		{"unknown scheme is refused", Scheme("hmac"), "x", ErrUnknownScheme, "hmac"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidateSecret(tt.scheme, tt.secret)
			if !errors.Is(err, tt.want) || tt.want == nil && err != nil {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if err != nil && !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q does not mention %q", err, tt.reason)
			}
		})
	}
}

func TestSignatureHeadersRefusesBadInput(t *testing.T) {
	t.Parallel()
	good := mustSecret(t)
	tests := []struct {
		name    string
		scheme  Scheme
		secrets []string
		want    error
	}{
		{"no secrets is refused", SchemeStandard, nil, ErrNoSecret},
		{"a bad older secret is refused", SchemeStandard, []string{good, "nope"}, ErrInvalidSecret},
		{"an empty kmsg secret is refused", SchemeKMsg, []string{""}, ErrInvalidSecret},
		{"an unknown scheme is refused", Scheme("x"), []string{good}, ErrUnknownScheme},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := SignatureHeaders(tt.scheme, tt.secrets, "id", "t", time.Now(), nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), good) {
				t.Error("error message leaks the secret")
			}
		})
	}
}

func mustSecret(t *testing.T) string {
	t.Helper()
	s, err := GenerateSecret()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// Signing reuses keyed states: each signature must still be the HMAC of its
// own key and message, from many goroutines at once and across keys.
func TestHMACReusedStatesSignEachMessageAlone(t *testing.T) {
	keys := [][]byte{[]byte("key-one"), []byte("key-two"), make([]byte, 100)}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 200 {
				key := keys[(g+i)%len(keys)]
				prefix := fmt.Sprintf("evt_%d_%d.1700000000.", g, i)
				body := []byte(strings.Repeat("본문", i%7))
				fresh := hmac.New(sha256.New, key)
				fresh.Write([]byte(prefix))
				fresh.Write(body)
				if got, want := hmacSHA256(key, prefix, body), fresh.Sum(nil); !hmac.Equal(got, want) {
					t.Errorf("key %q, message %q: %x, want %x", key, prefix, got, want)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestHMACCacheStaysBounded(t *testing.T) {
	for i := range macCacheMax + 10 {
		hmacSHA256([]byte(fmt.Sprintf("key-%d", i)), "p.", nil)
	}
	macs.mu.Lock()
	n := len(macs.m)
	macs.mu.Unlock()
	if n > macCacheMax {
		t.Errorf("%d keys cached, want at most %d", n, macCacheMax)
	}
}

// BenchmarkStandardSignatureHeaders signs a fixture-sized event with one
// secret, as each attempt to a Standard Webhooks endpoint does.
func BenchmarkStandardSignatureHeaders(b *testing.B) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))
	body := []byte(strings.Repeat(kmsgBody, 3))
	ts := time.Unix(1700000000, 0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := SignatureHeaders(SchemeStandard, []string{secret}, "evt_1", "message.sent",
			ts, body); err != nil {
			b.Fatal(err)
		}
	}
}
