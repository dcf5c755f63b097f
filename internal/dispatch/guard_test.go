package dispatch

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
)

var loopbackAllowed = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}

func TestValidateURLRefusesHostileURLs(t *testing.T) {
	t.Parallel()
	long := "https://hooks.example.com/" + strings.Repeat("a", 2048)
	label64 := strings.Repeat("a", 64)
	tests := []struct {
		url  string
		rule string
	}{
		{"http://127.0.0.1/", RuleBlockedIP},
		{"https://127.0.0.1/", RuleBlockedIP},
		{"https://10.0.0.1/", RuleBlockedIP},
		{"https://172.16.5.4/", RuleBlockedIP},
		{"https://192.168.1.1/", RuleBlockedIP},
		{"https://169.254.169.254/latest/meta-data/", RuleBlockedIP},
		{"https://100.64.0.1/", RuleBlockedIP},
		{"https://0.0.0.0/", RuleBlockedIP},
		{"https://0.0.0.0:443/", RuleBlockedIP},
		{"https://0.1.2.3/", RuleBlockedIP},
		{"https://255.255.255.255/", RuleBlockedIP},
		{"https://240.0.0.1/", RuleBlockedIP},
		{"https://224.0.0.1/", RuleBlockedIP},
		{"https://192.0.2.1/", RuleBlockedIP},
		{"https://198.51.100.7/", RuleBlockedIP},
		{"https://203.0.113.9/", RuleBlockedIP},
		{"https://198.18.0.1/", RuleBlockedIP},
		{"https://192.0.0.8/", RuleBlockedIP},
		{"https://[::]/", RuleBlockedIP},
		{"https://[::1]/", RuleBlockedIP},
		{"https://[::ffff:127.0.0.1]/", RuleBlockedIP},
		{"https://[::ffff:7f00:1]/", RuleBlockedIP},
		{"https://[::ffff:a9fe:a9fe]/", RuleBlockedIP},
		{"https://[::ffff:0.0.0.0]/", RuleBlockedIP},
		{"https://[::127.0.0.1]/", RuleBlockedIP},
		{"https://[64:ff9b::a9fe:a9fe]/", RuleBlockedIP},
		{"https://[64:ff9b:1::1]/", RuleBlockedIP},
		{"https://[2002:a9fe:a9fe::1]/", RuleBlockedIP},
		{"https://[2001:0:4136:e378:8000:63bf:3fff:fdd2]/", RuleBlockedIP},
		{"https://[2001:db8::1]/", RuleBlockedIP},
		{"https://[100::1]/", RuleBlockedIP},
		{"https://[fe80::1]/", RuleBlockedIP},
		{"https://[fec0::1]/", RuleBlockedIP},
		{"https://[fc00::1]/", RuleBlockedIP},
		{"https://[fd12:3456::1]/", RuleBlockedIP},
		{"https://[ff02::1]/", RuleBlockedIP},
		{"https://0/", RuleNumericHost},
		{"https://2130706433/", RuleNumericHost},
		{"https://0177.0.0.1/", RuleNumericHost},
		{"https://0x7f.1/", RuleNumericHost},
		{"https://0x7f000001/", RuleNumericHost},
		{"https://127.1/", RuleNumericHost},
		{"https://127.0.1/", RuleNumericHost},
		{"https://1.2.3.4.5/", RuleNumericHost},
		{"https://hooks.example.0x10/", RuleNumericHost},
		{"http://example.com@127.0.0.1/", RuleUserInfo},
		{"https://user:pass@hooks.example.com/", RuleUserInfo},
		{"https://user@hooks.example.com/", RuleUserInfo},
		{"https://@hooks.example.com/", RuleUserInfo},
		{"https://example.com./", RuleTrailingDot},
		{"https://127.0.0.1./", RuleTrailingDot},
		{"https://localhost/", RuleLocalhost},
		{"https://LOCALHOST:8080/", RuleLocalhost},
		{"https://api.localhost/", RuleLocalhost},
		{"http://hooks.example.com/", RulePlainHTTP},
		{"http://93.184.216.34/", RulePlainHTTP},
		{"ftp://hooks.example.com/", RuleScheme},
		{"file:///etc/passwd", RuleScheme},
		{"gopher://hooks.example.com:70/", RuleScheme},
		{"javascript:alert(1)", RuleNotAbsolute},
		{"https:hooks.example.com", RuleNotAbsolute},
		{"//hooks.example.com/x", RuleNotAbsolute},
		{"/relative", RuleNotAbsolute},
		{"", RuleNotAbsolute},
		{"https:///path", RuleEmptyHost},
		{"https://hooks.example.com:0/", RuleInvalidPort},
		{"https://hooks.example.com:65536/", RuleInvalidPort},
		{"https://hooks.example.com:/", RuleInvalidPort},
		{"https://hooks.example.com/#frag", RuleFragment},
		{"https://hooks.example.com/#", RuleFragment},
		{long, RuleTooLong},
		{"https://exa_mple.com/", RuleInvalidHost},
		{"https://-bad.example.com/", RuleInvalidHost},
		{"https://" + label64 + ".example.com/", RuleInvalidHost},
		{"https://%e2%80%8b.example.com/", RuleInvalidHost},
		{"https://[fe80::1%25eth0]/", RuleInvalidHost},
		{"https://evil.com\\@127.0.0.1/", RuleParse},
		{"https://[127.0.0.1]/", RuleParse},
		{"https://exa mple.com/", RuleParse},
		{"https://hooks.example.com:80x/", RuleParse},
	}
	g := NewGuard(nil)
	for _, tt := range tests {
		t.Run(tt.url+" is refused as "+tt.rule, func(t *testing.T) {
			t.Parallel()
			assertURLRule(t, g.ValidateURL(tt.url), tt.rule)
		})
	}
}

func TestValidateURLWithLoopbackAllowed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url  string
		rule string // "" means accepted
	}{
		{"http://127.0.0.1:9000/", ""},
		{"http://127.8.9.10/", ""},
		{"http://localhost:9000/hook", ""},
		{"https://api.localhost/", ""},
		{"http://[::ffff:127.0.0.1]:9000/", ""},
		{"http://[::1]:9000/", RuleBlockedIP},
		{"http://10.0.0.1/", RuleBlockedIP},
		{"http://hooks.example.com/", RulePlainHTTP},
		{"http://2130706433/", RuleNumericHost},
		{"http://user@127.0.0.1/", RuleUserInfo},
	}
	g := NewGuard(loopbackAllowed)
	for _, tt := range tests {
		t.Run(tt.url+" gives "+orAccepted(tt.rule), func(t *testing.T) {
			t.Parallel()
			assertURLRule(t, g.ValidateURL(tt.url), tt.rule)
		})
	}
}

func TestValidateURLAcceptsPublicHTTPS(t *testing.T) {
	t.Parallel()
	urls := []string{
		"https://hooks.example.com/x",
		"https://93.184.216.34:8443/p",
		"https://HOOKS.Example.COM/x?token=abc&b=2",
		"https://xn--9n2bp8q.example/",
		"https://a-b.example.com:443/",
		"https://[2606:2800:220:1:248:1893:25c8:1946]/hook",
		"https://[2002:5db8:d822::1]/",
		"https://[64:ff9b::5db8:d822]/",
		"https://intranet/",
	}
	g := NewGuard(nil)
	for _, u := range urls {
		t.Run(u+" is accepted", func(t *testing.T) {
			t.Parallel()
			if err := g.ValidateURL(u); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestURLErrorHidesURLAndWrapsCause(t *testing.T) {
	t.Parallel()
	err := NewGuard(nil).ValidateURL("https://10.0.0.1/?token=s3cret")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("message %q leaks the URL", err)
	}
	if !errors.Is(err, ErrInvalidURL) || !errors.Is(err, ErrBlocked) {
		t.Errorf("err %v should match ErrInvalidURL and ErrBlocked", err)
	}
	var be *BlockedError
	if !errors.As(err, &be) || be.Reason != "private" {
		t.Errorf("want a *BlockedError for private, got %v", err)
	}
}

func TestCheckIP(t *testing.T) {
	t.Parallel()
	tests := []struct {
		ip     string
		reason string // "" means allowed
	}{
		{"8.8.8.8", ""},
		{"93.184.216.34", ""},
		{"2606:4700::1111", ""},
		{"::ffff:8.8.8.8", ""},
		{"2002:808:808::1", ""},
		{"64:ff9b::808:808", ""},
		{"127.0.0.1", "loopback"},
		{"10.1.2.3", "private"},
		{"172.31.255.255", "private"},
		{"172.32.0.1", ""},
		{"192.168.0.1", "private"},
		{"169.254.169.254", "link-local"},
		{"100.64.0.1", "carrier-grade NAT"},
		{"100.128.0.1", ""},
		{"0.0.0.0", "unspecified"},
		{"0.255.0.1", "this network"},
		{"255.255.255.255", "broadcast"},
		{"240.1.2.3", "reserved"},
		{"239.255.255.250", "multicast"},
		{"192.0.0.1", "IETF protocol assignments"},
		{"192.0.2.5", "documentation"},
		{"198.19.255.1", "benchmarking"},
		{"::", "unspecified"},
		{"::1", "loopback"},
		{"::ffff:10.0.0.1", "private"},
		{"::10.0.0.1", "IPv4-compatible"},
		{"64:ff9b::7f00:1", "NAT64 embeds 127.0.0.1 (loopback)"},
		{"64:ff9b:1::a00:1", "local-use NAT64"},
		{"2002:c0a8:101::1", "6to4 embeds 192.168.1.1 (private)"},
		{"2001:0:4136:e378::1", "Teredo"},
		{"2001:db8::1", "documentation"},
		{"100::1", "discard-only"},
		{"fc00::1", "unique-local"},
		{"fe80::1%eth0", "link-local"},
		{"fec0::1", "site-local"},
		{"ff02::1", "multicast"},
		{"4000::1", "not global unicast"},
	}
	g := NewGuard(nil)
	for _, tt := range tests {
		t.Run(tt.ip+" gives "+orAccepted(tt.reason), func(t *testing.T) {
			t.Parallel()
			assertBlockReason(t, g.CheckIP(netip.MustParseAddr(tt.ip)), tt.reason)
		})
	}
}

func TestCheckIPHonoursAllowList(t *testing.T) {
	t.Parallel()
	allow, err := ParseCIDRs("127.0.0.0/8, 10.1.0.0/16, fd00::/8, ::ffff:192.168.5.0/120")
	if err != nil {
		t.Fatal(err)
	}
	g := NewGuard(allow)
	tests := []struct {
		ip      string
		allowed bool
	}{
		{"127.0.0.1", true},
		{"::ffff:127.0.0.1", true},
		{"10.1.200.3", true},
		{"10.2.0.1", false},
		{"fd00::5", true},
		{"fc00::5", false},
		{"192.168.5.9", true},
		{"::ffff:192.168.5.9", true},
		{"::1", false},
		{"8.8.8.8", false},
	}
	for _, tt := range tests {
		t.Run(tt.ip+" allowed is "+boolWord(tt.allowed), func(t *testing.T) {
			t.Parallel()
			ip := netip.MustParseAddr(tt.ip)
			if got := g.Allowed(ip); got != tt.allowed {
				t.Errorf("Allowed = %v", got)
			}
			if tt.allowed && g.CheckIP(ip) != nil {
				t.Errorf("CheckIP refused an allowed address: %v", g.CheckIP(ip))
			}
		})
	}
}

func TestNilGuardAllowsNothingExtra(t *testing.T) {
	t.Parallel()
	var g *Guard
	if g.Allowed(netip.MustParseAddr("127.0.0.1")) {
		t.Error("nil guard allowed loopback")
	}
	if err := g.CheckIP(netip.MustParseAddr("127.0.0.1")); !errors.Is(err, ErrBlocked) {
		t.Errorf("nil guard CheckIP = %v, want ErrBlocked", err)
	}
}

func TestParseCIDRs(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		in   string
		want []string
		bad  string
	}{
		{"empty string is nil", "", nil, ""},
		{"blanks are nil", "  ", nil, ""},
		{"whitespace is trimmed", " 127.0.0.0/8 ,10.0.0.0/8",
			[]string{"127.0.0.0/8", "10.0.0.0/8"}, ""},
		{"bare v4 is a /32", "127.0.0.1", []string{"127.0.0.1/32"}, ""},
		{"bare v6 is a /128", "::1", []string{"::1/128"}, ""},
		{"host bits are masked", "10.1.2.3/8", []string{"10.0.0.0/8"}, ""},
		{"trailing comma is ignored", "::1,", []string{"::1/128"}, ""},
		{"an IPv4-mapped prefix is its IPv4 range", "::ffff:10.0.0.0/104, ::ffff:0:0/96",
			[]string{"10.0.0.0/8", "0.0.0.0/0"}, ""},
		{"garbage names the item", "127.0.0.0/8, nope", nil, "nope"},
		{"bad length names the item", "10.0.0.0/33", nil, "10.0.0.0/33"},
		{"zone names the item", "fe80::1%eth0", nil, "fe80::1%eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ParseCIDRs(tt.in)
			if tt.bad != "" {
				if !errors.Is(err, ErrInvalidCIDR) || !strings.Contains(err.Error(), tt.bad) {
					t.Fatalf("err = %v, want ErrInvalidCIDR naming %q", err, tt.bad)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			assertPrefixes(t, got, tt.want)
		})
	}
}

func assertURLRule(t *testing.T, err error, rule string) {
	t.Helper()
	if rule == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var ue *URLError
	if !errors.As(err, &ue) || !errors.Is(err, ErrInvalidURL) {
		t.Fatalf("err = %v, want *URLError wrapping ErrInvalidURL", err)
	}
	if ue.Rule != rule {
		t.Fatalf("rule = %q, want %q (err %v)", ue.Rule, rule, err)
	}
}

func assertBlockReason(t *testing.T, err error, reason string) {
	t.Helper()
	if reason == "" {
		if err != nil {
			t.Fatalf("refused: %v", err)
		}
		return
	}
	var be *BlockedError
	if !errors.As(err, &be) || !errors.Is(err, ErrBlocked) {
		t.Fatalf("err = %v, want *BlockedError wrapping ErrBlocked", err)
	}
	if be.Reason != reason {
		t.Fatalf("reason = %q, want %q", be.Reason, reason)
	}
}

func assertPrefixes(t *testing.T, got []netip.Prefix, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i, p := range got {
		if p.String() != want[i] {
			t.Errorf("item %d = %s, want %s", i, p, want[i])
		}
	}
}

func orAccepted(s string) string {
	if s == "" {
		return "accepted"
	}
	return s
}

func boolWord(b bool) string {
	if b {
		return "true"
	}
	return "false"
}
