package e2e

import (
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// tcpProxy is a loopback TCP proxy in front of a server, such as the local
// PostgreSQL. A test cuts it to make the server unreachable (the listener is
// closed, so new connections are refused, and every open connection is
// closed) and restores it (listens again on the same port). It can also
// freeze: connections stay open but no byte passes either way until thaw,
// and bytes held when the proxy is cut are dropped.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu     sync.Mutex
	ln     net.Listener
	gen    int           // incremented by cut; connections of an older generation are refused
	cutCh  chan struct{} // closed by cut: held bytes of the generation are dropped
	frozen chan struct{} // non-nil while frozen; closed by thaw
	conns  map[net.Conn]struct{}
	wg     sync.WaitGroup
}

// startProxy listens on a free loopback port and forwards to target
// (host:port). It is cut and its goroutines waited for when the test ends.
func startProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	p := &tcpProxy{t: t, target: target, addr: freeAddr(t), conns: map[net.Conn]struct{}{},
		cutCh: make(chan struct{})}
	if err := p.listen(); err != nil {
		t.Fatalf("proxy listen %s: %v", p.addr, err)
	}
	t.Cleanup(func() {
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *tcpProxy) listen() error {
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.mu.Lock()
	p.ln = ln
	gen := p.gen
	p.mu.Unlock()
	p.wg.Add(1)
	go p.accept(ln, gen)
	return nil
}

func (p *tcpProxy) accept(ln net.Listener, gen int) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		p.wg.Add(1)
		go p.serve(c, gen)
	}
}

// serve connects c to the target and copies both ways until either side
// closes or the proxy is cut.
func (p *tcpProxy) serve(c net.Conn, gen int) {
	defer p.wg.Done()
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.gen != gen {
		p.mu.Unlock() // cut while this connection was being set up
		c.Close()
		up.Close()
		return
	}
	p.conns[c], p.conns[up] = struct{}{}, struct{}{}
	cutCh := p.cutCh
	p.mu.Unlock()

	var once sync.Once
	closeBoth := func() {
		once.Do(func() {
			c.Close()
			up.Close()
			p.mu.Lock()
			delete(p.conns, c)
			delete(p.conns, up)
			p.mu.Unlock()
		})
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { closeBoth(); done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if !p.pass(cutCh) {
					return
				}
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// pass waits while the proxy is frozen; false means the connection's
// generation was cut and its bytes must be dropped.
func (p *tcpProxy) pass(cutCh chan struct{}) bool {
	for {
		p.mu.Lock()
		frozen := p.frozen
		p.mu.Unlock()
		select {
		case <-cutCh:
			return false
		default:
		}
		if frozen == nil {
			return true
		}
		select {
		case <-frozen:
		case <-cutCh:
			return false
		}
	}
}

// freeze stops every byte in both directions; connections stay open.
func (p *tcpProxy) freeze() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen == nil {
		p.frozen = make(chan struct{})
	}
}

// thaw lets bytes pass again.
func (p *tcpProxy) thaw() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.frozen != nil {
		close(p.frozen)
		p.frozen = nil
	}
}

// cut closes the listener and every open connection, dropping the bytes a
// freeze held: the server is gone until restore. A frozen proxy stays frozen.
func (p *tcpProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.gen++
	close(p.cutCh)
	p.cutCh = make(chan struct{})
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for c := range p.conns {
		c.Close()
	}
	clear(p.conns)
}

// restore listens again on the same port.
func (p *tcpProxy) restore() {
	p.t.Helper()
	eventually(p.t, 10*time.Second, "proxy to listen again on "+p.addr, func() bool {
		return p.listen() == nil
	})
}

// viaProxy returns dsn with its host replaced by the proxy's address.
func (p *tcpProxy) viaProxy(dsn string) string {
	p.t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		p.t.Fatalf("parse %q: %v", dsn, err)
	}
	u.Host = p.addr
	return u.String()
}

// hostPort is the host:port a PostgreSQL URL points at, 5432 by default.
func hostPort(t *testing.T, dsn string) string {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatalf("parse %q: %v", dsn, err)
	}
	if u.Port() == "" {
		return net.JoinHostPort(u.Hostname(), "5432")
	}
	return u.Host
}
