package pipeline

import (
	"slices"
	"testing"
	"time"

	"github.com/hookrelay/hookrelay/internal/db"
)

func TestSigningSecretsDuringAndAfterTheGracePeriod(t *testing.T) {
	now := time.Now()
	later, earlier := now.Add(time.Hour), now.Add(-time.Hour)
	for _, tt := range []struct {
		name    string
		scheme  string
		secrets []string
		expires *time.Time
		want    []string
	}{
		{"standard, one secret", "standard", []string{"new"}, nil, []string{"new"}},
		{"standard, in the grace period", "standard", []string{"new", "old"}, &later,
			[]string{"new", "old"}},
		{"standard, after it", "standard", []string{"new", "old"}, &earlier, []string{"new"}},
		{"kmsg, one secret", "kmsg", []string{"new"}, nil, []string{"new"}},
		{"kmsg, in the grace period", "kmsg", []string{"new", "old"}, &later, []string{"old"}},
		{"kmsg, after it", "kmsg", []string{"new", "old"}, &earlier, []string{"new"}},
	} {
		e := &db.Endpoint{SignatureScheme: tt.scheme, Secrets: tt.secrets, SecretsExpireAt: tt.expires}
		if got := signingSecrets(e, now); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.name, got, tt.want)
		}
	}
}
