package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Exit statuses.
const (
	exitOK     = 0
	exitFailed = 1 // could not listen or serve
	exitUsage  = 2 // the command line is wrong
)

const (
	defaultAddr     = "127.0.0.1:9000"
	shutdownTimeout = 5 * time.Second
)

const usageHead = `Usage: receiver [flags]

receiver is a local webhook endpoint. Every path is an endpoint of its own
(/a, /b, …): it counts the POSTs it receives, the unique delivery ids
(webhook-id, or X-Webhook-ID for the kmsg scheme), duplicates (an id seen
again on the same path), bad signatures, and the latency from the event's
own "timestamp" field (RFC 3339 or epoch ms) to the receipt of its first
delivery. It answers with --status after --delay.

With --secret, a request must carry a Standard Webhooks signature
(webhook-id, webhook-timestamp and webhook-signature headers) made with one
of the secrets; one that does not is answered 401 and counted only as a
request with a bad signature. Without --secret nothing is verified.

  GET  /stats          counts and latency p50/p99/max (ms) per path, as JSON
  GET  /ids?path=/a    the unique webhook ids seen on /a, sorted, as JSON
  POST /reset          forget everything
These three paths are the receiver's own and are never counted.

It prints "listening on http://ADDR" once it listens, and stops on SIGINT
or SIGTERM.

Flags:
`

// options are the parsed flags.
type options struct {
	addr    string
	secrets secretList
	status  int
	delay   time.Duration
}

// run is the whole command; args exclude the program name.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseArgs(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "receiver: %v\nRun \"receiver -h\" for usage.\n", err)
		return exitUsage
	}
	ln, err := listen(o.addr)
	if err != nil {
		fmt.Fprintf(stderr, "receiver: %v\n", err)
		return exitFailed
	}
	fmt.Fprintf(stdout, "listening on http://%s\n", ln.Addr())
	rc := newReceiver(o.secrets.keys, o.status, o.delay)
	if err := serve(ctx, ln, rc.routes()); err != nil {
		fmt.Fprintf(stderr, "receiver: %v\n", err)
		return exitFailed
	}
	return exitOK
}

func newFlagSet(o *options) *flag.FlagSet {
	fs := flag.NewFlagSet("receiver", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.StringVar(&o.addr, "addr", defaultAddr,
		"loopback `address` to listen on (port 0 picks a free port)")
	fs.Var(&o.secrets, "secret", "whsec_ `secret` to verify signatures with; "+
		"repeat it or separate secrets with commas")
	fs.IntVar(&o.status, "status", http.StatusOK, "HTTP `status` to answer with")
	fs.DurationVar(&o.delay, "delay", 0, "how long to wait before answering, as a `duration`")
	return fs
}

func printUsage(w io.Writer) {
	fmt.Fprint(w, usageHead)
	fs := newFlagSet(&options{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func parseArgs(args []string) (*options, error) {
	o := &options{}
	fs := newFlagSet(o)
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return o, errors.Join(
		checkLoopback(o.addr),
		o.secrets.decode(),
		checkStatus(o.status),
		checkDelay(o.delay),
	)
}

// checkLoopback accepts only addresses that other machines cannot reach.
func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("--addr %q: %w", addr, err)
	}
	if strings.EqualFold(host, "localhost") {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("--addr %q: %q is not a loopback address; "+
			"use 127.0.0.1, [::1] or localhost", addr, host)
	}
	return nil
}

func checkStatus(status int) error {
	if status < 200 || status > 599 {
		return fmt.Errorf("--status %d: must be an HTTP status from 200 to 599", status)
	}
	return nil
}

func checkDelay(d time.Duration) error {
	if d < 0 {
		return fmt.Errorf("--delay %v: must not be negative", d)
	}
	return nil
}

// listen listens on addr and checks that the address it got is loopback,
// as a name such as localhost could resolve to another.
func listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	if tcp, ok := ln.Addr().(*net.TCPAddr); !ok || !tcp.IP.IsLoopback() {
		_ = ln.Close()
		return nil, fmt.Errorf("--addr %q: listening on %v, which is not loopback", addr, ln.Addr())
	}
	return ln, nil
}

// serve answers on ln until ctx ends, then aborts delayed answers and shuts
// the server down.
func serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	base, abort := context.WithCancel(context.Background())
	defer abort()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		BaseContext:       func(net.Listener) context.Context { return base },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	abort()
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
		return fmt.Errorf("shut down: %w", err)
	}
	<-served
	return nil
}
