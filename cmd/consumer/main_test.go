package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestBadSettingsNameTheFlagAndExitTwo(t *testing.T) {
	cases := map[string][]string{
		"batch-size":      {"--batch-size", "0"},
		"request-timeout": {"--request-timeout", "-1s"},
		"log-format":      {"--log-format", "xml"},
		"prefix":          {"--prefix", "a.b"},
		"unexpected":      {"extra"},
		"http-addr":       {"--http-addr", "0.0.0.0:8080"},
		"allow-cidrs":     {"--allow-cidrs", "0.0.0.0/1,128.0.0.0/1"},
		"retry-schedule":  {"--retry-schedule", "5s,100h"},
		"secret-key":      {"--secret-key", "abc"},
		"pprof-addr":      {"--pprof-addr", "0.0.0.0:6060"},
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
	t.Run("an IPv4-mapped allow prefix is judged as the IPv4 range it allows", func(t *testing.T) {
		for _, cidr := range []string{"::ffff:0:0/96", "::ffff:0:0/100", "::ffff:128.0.0.0/97"} {
			var stderr bytes.Buffer
			if code := run([]string{"--allow-cidrs", cidr}, &stderr); code != 2 ||
				!strings.Contains(stderr.String(), "allow-cidrs") {
				t.Errorf("%s: exit %d, stderr %q", cidr, code, stderr.String())
			}
		}
	})
	t.Run("an environment value that does not parse is named too", func(t *testing.T) {
		t.Setenv("HOOKRELAY_CONCURRENCY", "many")
		var stderr bytes.Buffer
		if code := run(nil, &stderr); code != 2 || !strings.Contains(stderr.String(),
			"HOOKRELAY_CONCURRENCY") {
			t.Errorf("exit %d, stderr %q", code, stderr.String())
		}
	})
}
