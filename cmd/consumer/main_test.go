package main

import (
	"bytes"
	"runtime/debug"
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
	t.Run("an IPv6 prefix embedding IPv4 is judged as the IPv4 range it allows", func(t *testing.T) {
		for _, cidr := range []string{"::ffff:0:0/96", "::ffff:0:0/100", "::ffff:128.0.0.0/97",
			"64:ff9b::/96", "64:ff9b::/100", "::/96", "::/8", "2002::/16", "2002::/20",
			"2001::/32", "64:ff9b:1::/48"} {
			var stderr bytes.Buffer
			if code := run([]string{"--allow-cidrs", "127.0.0.0/8, " + cidr}, &stderr); code != 2 ||
				!strings.Contains(stderr.String(), "allow-cidrs") ||
				!strings.Contains(stderr.String(), cidr) {
				t.Errorf("%s: exit %d, stderr %q (should name the entry as given)", cidr, code,
					stderr.String())
			}
		}
	})
	t.Run("narrow embeddings and unrelated IPv6 networks are accepted", func(t *testing.T) {
		for _, cidr := range []string{"::ffff:127.0.0.0/104", "64:ff9b::a00:0/104", "::1",
			"2002:0a00::/24", "fd00::/8", "fc00::/7"} {
			cfg, err := parseConfig([]string{"--allow-cidrs", cidr}, &bytes.Buffer{})
			if err != nil {
				t.Errorf("%s: %v", cidr, err)
			} else if cfg.AllowCIDRs != cidr {
				t.Errorf("%s: kept %q", cidr, cfg.AllowCIDRs)
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

func TestGCPercentIsTheConsumersUnlessGOGCIsSet(t *testing.T) {
	prev := debug.SetGCPercent(100)
	defer debug.SetGCPercent(prev)

	setGCPercent(func(string) string { return "" })
	if got := debug.SetGCPercent(100); got != gcPercent {
		t.Errorf("GOGC unset: collector target %d, want %d", got, gcPercent)
	}
	setGCPercent(func(k string) string {
		if k == "GOGC" {
			return "100"
		}
		return ""
	})
	if got := debug.SetGCPercent(100); got != 100 {
		t.Errorf("GOGC=100: collector target %d, want the environment's 100 kept", got)
	}
}
