package dispatch

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

var (
	// ErrBlocked reports an address the guard refuses to connect to.
	ErrBlocked = errors.New("address blocked")
	// ErrInvalidURL reports an endpoint URL that breaks a guard rule.
	ErrInvalidURL = errors.New("invalid url")
	// ErrInvalidCIDR reports an unparseable item in an allow list.
	ErrInvalidCIDR = errors.New("invalid cidr")
)

// BlockedError names the refused address and why, so operators can tell a
// misconfigured endpoint from an attempt to reach an internal network.
type BlockedError struct {
	IP     netip.Addr
	Reason string
}

// Error implements error.
func (e *BlockedError) Error() string {
	return fmt.Sprintf("address %s blocked: %s", e.IP, e.Reason)
}

// Unwrap lets errors.Is match ErrBlocked.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// Rules reported in URLError.Rule. They double as messages for API clients.
const (
	// RuleTooLong refuses URLs over 2048 bytes.
	RuleTooLong = "url too long"
	// RuleParse refuses text that net/url cannot parse.
	RuleParse = "unparseable url"
	// RuleNotAbsolute refuses relative and opaque URLs.
	RuleNotAbsolute = "not an absolute url"
	// RuleScheme refuses schemes other than https and http.
	RuleScheme = "scheme must be https"
	// RulePlainHTTP refuses http unless the host is an allowed address.
	RulePlainHTTP = "plain http needs an allowed address"
	// RuleUserInfo refuses credentials in the authority, a classic
	// way to disguise the real host ("http://example.com@10.0.0.1/").
	RuleUserInfo = "user info not allowed"
	// RuleEmptyHost refuses URLs without a host.
	RuleEmptyHost = "empty host"
	// RuleTrailingDot refuses fully qualified names, which bypass
	// suffix-based allow and deny lists.
	RuleTrailingDot = "trailing dot in host"
	// RuleInvalidHost refuses hosts that are neither hostnames nor IPs.
	RuleInvalidHost = "invalid hostname"
	// RuleNumericHost refuses non-canonical numeric hosts such as
	// "2130706433" or "0x7f.1" that resolve to unexpected addresses.
	RuleNumericHost = "ambiguous numeric host"
	// RuleLocalhost refuses localhost names unless loopback is allowed.
	RuleLocalhost = "localhost not allowed"
	// RuleBlockedIP refuses IP literals the guard blocks.
	RuleBlockedIP = "blocked address"
	// RuleInvalidPort refuses empty or out-of-range ports.
	RuleInvalidPort = "invalid port"
	// RuleFragment refuses fragments, which are never sent and so only
	// confuse whoever reads the URL.
	RuleFragment = "fragment not allowed"
)

const (
	maxURLLen      = 2048
	maxHostnameLen = 253
	maxLabelLen    = 63
)

// URLError reports which rule an endpoint URL broke. Error omits the URL on
// purpose: URLs often carry tokens and the message ends up in logs.
type URLError struct {
	URL  string
	Rule string
	// Err is the underlying cause when there is one, e.g. a *BlockedError.
	Err error
}

// Error implements error.
func (e *URLError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("invalid url: %s: %v", e.Rule, e.Err)
	}
	return "invalid url: " + e.Rule
}

// Unwrap lets errors.Is match ErrInvalidURL and the cause.
func (e *URLError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidURL, e.Err}
	}
	return []error{ErrInvalidURL}
}

// Guard decides which addresses deliveries may reach. Everything that is not
// plainly public unicast is refused unless an operator allows its prefix.
type Guard struct {
	allow []netip.Prefix
}

// NewGuard returns a guard that additionally permits the allow prefixes.
func NewGuard(allow []netip.Prefix) *Guard {
	g := &Guard{allow: make([]netip.Prefix, 0, len(allow))}
	for _, p := range allow {
		if p.IsValid() {
			g.allow = append(g.allow, normalizePrefix(p))
		}
	}
	return g
}

// normalizePrefix turns an IPv4-mapped prefix into its IPv4 form so one
// allow entry covers both spellings of an address.
func normalizePrefix(p netip.Prefix) netip.Prefix {
	p = p.Masked()
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p
}

// Allowed reports whether ip is inside an operator-allowed prefix. Callers
// use it to permit plain http, which is only acceptable on trusted networks.
func (g *Guard) Allowed(ip netip.Addr) bool {
	if g == nil || !ip.IsValid() {
		return false
	}
	ip = ip.WithZone("")
	for _, p := range g.allow {
		if p.Contains(ip) || p.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// CheckIP returns a *BlockedError unless ip is public unicast or allowed.
func (g *Guard) CheckIP(ip netip.Addr) error {
	if g.Allowed(ip) {
		return nil
	}
	if reason := classifyIP(ip); reason != "" {
		return &BlockedError{IP: ip, Reason: reason}
	}
	return nil
}

// ParseCIDRs parses a comma-separated allow list such as an environment
// variable; a bare address becomes a single-host prefix.
func ParseCIDRs(s string) ([]netip.Prefix, error) {
	entries, err := ParseAllowList(s)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Prefix, len(entries))
	for i, e := range entries {
		out[i] = e.Prefix
	}
	return out, nil
}

// AllowEntry is one entry of an allow list: as written, and the range it
// allows (which may be written otherwise: ::ffff:0:0/96 is 0.0.0.0/0).
type AllowEntry struct {
	Written string
	Prefix  netip.Prefix
}

// ParseAllowList parses a comma-separated allow list as ParseCIDRs does,
// keeping each entry as written, for messages about it.
func ParseAllowList(s string) ([]AllowEntry, error) {
	var out []AllowEntry
	for _, item := range strings.Split(s, ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		p, err := parseCIDR(item)
		if err != nil {
			return nil, fmt.Errorf("%w %q: %w", ErrInvalidCIDR, item, err)
		}
		out = append(out, AllowEntry{Written: item, Prefix: p})
	}
	return out, nil
}

// parseCIDR parses one allow entry; an IPv4-mapped prefix comes back in its
// IPv4 form (::ffff:10.0.0.0/104 is 10.0.0.0/8), which is what it allows.
func parseCIDR(item string) (netip.Prefix, error) {
	if strings.Contains(item, "/") {
		p, err := netip.ParsePrefix(item)
		if err != nil {
			return netip.Prefix{}, err
		}
		return normalizePrefix(p), nil
	}
	ip, err := netip.ParseAddr(item)
	if err != nil {
		return netip.Prefix{}, err
	}
	if ip.Zone() != "" {
		return netip.Prefix{}, errors.New("zones are not allowed")
	}
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// ValidateURL checks an endpoint URL when it is created or updated. It does
// no DNS lookups: names are checked again, after resolution, when sending.
func (g *Guard) ValidateURL(raw string) error {
	rule, cause := g.checkURL(raw)
	if rule == "" {
		return nil
	}
	return &URLError{URL: raw, Rule: rule, Err: cause}
}

func (g *Guard) checkURL(raw string) (string, error) {
	if len(raw) > maxURLLen {
		return RuleTooLong, nil
	}
	// url.Parse drops an empty fragment, so look at the raw text.
	if strings.Contains(raw, "#") {
		return RuleFragment, nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		return RuleParse, nil // url.Error repeats the URL, which may hold secrets
	}
	if rule := checkShape(u); rule != "" {
		return rule, nil
	}
	return g.checkHost(u)
}

func checkShape(u *url.URL) string {
	switch {
	case !u.IsAbs() || u.Opaque != "":
		return RuleNotAbsolute
	case u.Scheme != "https" && u.Scheme != "http":
		return RuleScheme
	case u.User != nil:
		return RuleUserInfo
	case u.Hostname() == "":
		return RuleEmptyHost
	case !validPort(u):
		return RuleInvalidPort
	}
	return ""
}

func validPort(u *url.URL) bool {
	if strings.HasSuffix(u.Host, ":") {
		return false
	}
	port := u.Port()
	if port == "" {
		return true
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 1 && n <= 65535
}

func (g *Guard) checkHost(u *url.URL) (string, error) {
	host := u.Hostname()
	if strings.HasSuffix(host, ".") {
		return RuleTrailingDot, nil
	}
	ip, isIP, rule := hostIP(u.Host, host)
	switch {
	case rule != "":
		return rule, nil
	case isIP:
		return g.checkIPHost(u.Scheme, ip)
	}
	return g.checkName(u.Scheme, host), nil
}

// hostIP reports whether host is an IP literal. Only canonical forms count:
// other numeric spellings are refused because resolvers and browsers
// disagree on what they mean.
func hostIP(authority, host string) (netip.Addr, bool, string) {
	if strings.HasPrefix(authority, "[") {
		ip, err := netip.ParseAddr(host)
		if err != nil || !ip.Is6() || ip.Zone() != "" {
			return netip.Addr{}, false, RuleInvalidHost
		}
		return ip, true, ""
	}
	if ip, err := netip.ParseAddr(host); err == nil && ip.Is4() {
		return ip, true, ""
	}
	if numericHost(host) {
		return netip.Addr{}, false, RuleNumericHost
	}
	return netip.Addr{}, false, ""
}

// numericHost follows the WHATWG rule: a host whose last label is a number
// (decimal, or 0x hex) is parsed as IPv4 by browsers and many libraries.
func numericHost(host string) bool {
	last := host[strings.LastIndexByte(host, '.')+1:]
	if rest, ok := strings.CutPrefix(strings.ToLower(last), "0x"); ok {
		return strings.Trim(rest, "0123456789abcdef") == ""
	}
	return last != "" && strings.Trim(last, "0123456789") == ""
}

func (g *Guard) checkIPHost(scheme string, ip netip.Addr) (string, error) {
	if err := g.CheckIP(ip); err != nil {
		return RuleBlockedIP, err
	}
	if scheme == "http" && !g.Allowed(ip) {
		return RulePlainHTTP, nil
	}
	return "", nil
}

func (g *Guard) checkName(scheme, host string) string {
	switch {
	case !validHostname(host):
		return RuleInvalidHost
	case isLocalhost(host):
		if !g.Allowed(netip.AddrFrom4([4]byte{127, 0, 0, 1})) {
			return RuleLocalhost
		}
		return ""
	case scheme == "http":
		return RulePlainHTTP
	}
	return ""
}

func isLocalhost(host string) bool {
	host = strings.ToLower(host)
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
}

func validHostname(host string) bool {
	if len(host) > maxHostnameLen {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if !validLabel(label) {
			return false
		}
	}
	return true
}

func validLabel(label string) bool {
	if label == "" || len(label) > maxLabelLen {
		return false
	}
	if label[0] == '-' || label[len(label)-1] == '-' {
		return false
	}
	for _, c := range []byte(label) {
		ok := c == '-' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !ok {
			return false
		}
	}
	return true
}

// blockRule refuses a prefix for a reason shown to operators.
type blockRule struct {
	prefix netip.Prefix
	reason string
}

// embedRule covers IPv6 ranges that carry an IPv4 address which the network
// will reach, so the embedded address decides.
type embedRule struct {
	prefix netip.Prefix
	name   string
	offset int
}

// Order matters: the first match names the reason, so narrow ranges come
// before the wider ones containing them.
var (
	blocked4 = rules(
		"255.255.255.255/32", "broadcast",
		"0.0.0.0/32", "unspecified",
		"0.0.0.0/8", "this network",
		"10.0.0.0/8", "private",
		"100.64.0.0/10", "carrier-grade NAT",
		"127.0.0.0/8", "loopback",
		"169.254.0.0/16", "link-local",
		"172.16.0.0/12", "private",
		"192.0.0.0/24", "IETF protocol assignments",
		"192.0.2.0/24", "documentation",
		"192.88.99.0/24", "6to4 relay anycast",
		"192.168.0.0/16", "private",
		"198.18.0.0/15", "benchmarking",
		"198.51.100.0/24", "documentation",
		"203.0.113.0/24", "documentation",
		"224.0.0.0/4", "multicast",
		"240.0.0.0/4", "reserved",
	)
	blocked6 = rules(
		"::/128", "unspecified",
		"::1/128", "loopback",
		"::/96", "IPv4-compatible",
		"64:ff9b:1::/48", "local-use NAT64",
		"100::/64", "discard-only",
		"2001::/32", "Teredo",
		"2001:db8::/32", "documentation",
		"2001::/23", "IETF protocol assignments",
		"fc00::/7", "unique-local",
		"fe80::/10", "link-local",
		"fec0::/10", "site-local",
		"ff00::/8", "multicast",
	)
	embedded6 = []embedRule{
		{netip.MustParsePrefix("64:ff9b::/96"), "NAT64", 12},
		{netip.MustParsePrefix("2002::/16"), "6to4", 2},
	}
	// Everything else outside 2000::/3 is unassigned or special-purpose.
	globalUnicast6 = netip.MustParsePrefix("2000::/3")
)

func rules(pairs ...string) []blockRule {
	out := make([]blockRule, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		out = append(out, blockRule{netip.MustParsePrefix(pairs[i]), pairs[i+1]})
	}
	return out
}

// classifyIP returns why ip is refused, or "" for public unicast.
func classifyIP(ip netip.Addr) string {
	ip = ip.WithZone("")
	switch {
	case !ip.IsValid():
		return "invalid address"
	case ip.Is4In6():
		return classify4(ip.Unmap())
	case ip.Is4():
		return classify4(ip)
	}
	return classify6(ip)
}

func classify4(ip netip.Addr) string {
	return firstMatch(blocked4, ip)
}

func classify6(ip netip.Addr) string {
	if reason := firstMatch(blocked6, ip); reason != "" {
		return reason
	}
	for _, e := range embedded6 {
		if e.prefix.Contains(ip) {
			return embeddedReason(e, ip)
		}
	}
	if !globalUnicast6.Contains(ip) {
		return "not global unicast"
	}
	return ""
}

func embeddedReason(e embedRule, ip netip.Addr) string {
	b := ip.As16()
	v4 := netip.AddrFrom4([4]byte(b[e.offset : e.offset+4]))
	if reason := classify4(v4); reason != "" {
		return fmt.Sprintf("%s embeds %s (%s)", e.name, v4, reason)
	}
	return ""
}

func firstMatch(list []blockRule, ip netip.Addr) string {
	for _, r := range list {
		if r.prefix.Contains(ip) {
			return r.reason
		}
	}
	return ""
}
