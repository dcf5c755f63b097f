package dispatch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/dns/dnsmessage"
)

// fakeNameserver answers DNS queries on a loopback UDP port from a table;
// names not in it get NXDOMAIN. Go's own resolver is pointed at it, so no
// query ever leaves the machine.
func fakeNameserver(t *testing.T, table map[string]netip.Addr) string {
	t.Helper()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 1500)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if reply, ok := answer(buf[:n], table); ok {
				_, _ = pc.WriteTo(reply, from)
			}
		}
	}()
	return pc.LocalAddr().String()
}

func answer(query []byte, table map[string]netip.Addr) ([]byte, bool) {
	var msg dnsmessage.Message
	if msg.Unpack(query) != nil || len(msg.Questions) != 1 {
		return nil, false
	}
	q := msg.Questions[0]
	msg.Header.Response, msg.Header.Authoritative = true, true
	ip, ok := table[strings.TrimSuffix(q.Name.String(), ".")]
	switch {
	case !ok:
		msg.Header.RCode = dnsmessage.RCodeNameError
	case q.Type == dnsmessage.TypeA && ip.Is4():
		msg.Answers = []dnsmessage.Resource{{
			Header: dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: q.Class, TTL: 1},
			Body:   &dnsmessage.AResource{A: ip.As4()},
		}}
	}
	reply, err := msg.Pack()
	return reply, err == nil
}

// goResolver is Go's own resolver, sending every query to addr. The C
// library's resolver is not exercised: it cannot be pointed at a loopback
// nameserver, and the guard judges the addresses either one returns.
func goResolver(addr string) func(context.Context, string) ([]netip.Addr, error) {
	r := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, "udp", addr)
	}}
	return func(ctx context.Context, host string) ([]netip.Addr, error) {
		return r.LookupNetIP(ctx, "ip4", host)
	}
}

// Spellings of loopback that some parsers accept and others do not.
var loopbackSpellings = []string{
	"127.1", "127.0.1", "0x7f.0.0.1", "0x7f000001", "2130706433", "0177.0.0.1",
	"017700000001", "127.000.000.001", "localhost",
}

func TestLoopbackSpellingsNeverConnectWithEitherResolver(t *testing.T) {
	t.Parallel()
	srv, hits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	_, port := serverIP(t, srv)
	ns := fakeNameserver(t, map[string]netip.Addr{
		"rebound.example":  netip.MustParseAddr("127.0.0.1"),
		"metadata.example": netip.MustParseAddr("169.254.169.254"),
	})
	resolvers := map[string]func(context.Context, string) ([]netip.Addr, error){
		"go's own resolver": goResolver(ns), "a fixed answer": fakeDNS(nil),
	}
	hosts := append(loopbackSpellings, "rebound.example", "metadata.example")
	for name, resolve := range resolvers {
		s := newTestSender(t, NewGuard(nil), WithResolver(resolve))
		for _, host := range hosts {
			req := Request{URL: "http://" + host + ":" + port + "/", Timeout: 2 * time.Second}
			_, err := s.Send(context.Background(), req)
			var se *SendError
			if !errors.As(err, &se) || (se.Kind != KindBlocked && se.Kind != KindConnect) {
				t.Errorf("%s: %s: err %v, want blocked or a lookup failure", name, host, err)
			}
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests", n)
	}
}

// libcChildEnv marks the child process of TestLoopbackSpellingsWithTheCResolver.
const libcChildEnv = "HOOKRELAY_LIBC_RESOLVER_CHILD"

// TestLoopbackSpellingsWithTheCResolver runs the spellings through the C
// library's resolver, which, unlike Go's, reads "127.1" or "0x7f.1" as
// 127.0.0.1. It runs in a child process with GODEBUG=netdns=cgo, and only
// with names the C library answers without DNS: numeric spellings, which it
// parses itself, and localhost, which is in /etc/hosts. Every one must be
// refused by the guard.
func TestLoopbackSpellingsWithTheCResolver(t *testing.T) {
	if os.Getenv(libcChildEnv) == "1" {
		checkSpellingsBlocked(t)
		return
	}
	if !cgoResolver {
		t.Skip("built without cgo: the C library's resolver is not in this binary")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestLoopbackSpellingsWithTheCResolver$",
		"-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), libcChildEnv+"=1", "GODEBUG=netdns=cgo+1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	t.Logf("child:\n%s", out)
	if !strings.Contains(string(out), "cgo") {
		t.Fatalf("the child did not use the cgo resolver:\n%s", out)
	}
}

func checkSpellingsBlocked(t *testing.T) {
	srv, hits := newServer(t, func(http.ResponseWriter, *http.Request) {})
	_, port := serverIP(t, srv)
	s, err := NewSender(NewGuard(nil)) // the default resolver
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, host := range loopbackSpellings {
		req := Request{URL: "http://" + host + ":" + port + "/", Timeout: 2 * time.Second}
		_, err := s.Send(context.Background(), req)
		var se *SendError
		if !errors.As(err, &se) || se.Kind != KindBlocked {
			t.Errorf("%s: err %v, want the guard to refuse 127.0.0.1", host, err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the loopback server got %d requests", n)
	}
}
