package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestAdminAPIIsNotExposedWithoutAToken(t *testing.T) {
	t.Parallel()
	cases := []struct {
		addr, token string
		ok          bool
	}{
		{"127.0.0.1:8080", "", true},
		{"[::1]:8080", "", true},
		{"localhost:8080", "", true},
		{"0.0.0.0:8080", "", false},
		{":8080", "", false},
		{"[::]:8080", "", false},
		{"192.0.2.10:8080", "", false},
		{"0.0.0.0:8080", "s3cret", true},
		{"no-port", "", false},
	}
	for _, c := range cases {
		err := checkExposure(c.addr, c.token)
		if (err == nil) != c.ok {
			t.Errorf("checkExposure(%q, token %v) = %v, want ok %v", c.addr, c.token != "", err, c.ok)
		}
	}
}

func TestBadSettingsNameTheFlagAndExitTwo(t *testing.T) {
	cases := map[string][]string{
		"batch-size":      {"--batch-size", "0"},
		"request-timeout": {"--request-timeout", "-1s"},
		"log-format":      {"--log-format", "xml"},
		"prefix":          {"--prefix", "a.b"},
		"unexpected":      {"extra"},
	}
	for want, args := range cases {
		var stderr bytes.Buffer
		if code := run(args, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2", args, code)
		}
		if !strings.Contains(stderr.String(), want) {
			t.Errorf("%v: stderr %q does not name %s", args, stderr.String(), want)
		}
	}
	t.Run("an environment value that does not parse is named too", func(t *testing.T) {
		t.Setenv("HOOKRELAY_CONCURRENCY", "many")
		var stderr bytes.Buffer
		if code := run(nil, &stderr); code != 2 || !strings.Contains(stderr.String(),
			"HOOKRELAY_CONCURRENCY") {
			t.Errorf("exit %d, stderr %q", code, stderr.String())
		}
	})
}
