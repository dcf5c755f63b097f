package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/hookrelay/hookrelay/internal/stream"
)

// Exit statuses.
const (
	exitOK     = 0 // every event published or already published
	exitFailed = 1 // some event rejected or not published
	exitUsage  = 2 // the command line is wrong
)

const usageHead = `Usage:
  publisher send --type TYPE [--data JSON] [--metadata JSON] [--id ID]
                 [--timestamp TIME] [settings]
  publisher send --file PATH [settings]     (PATH - reads standard input)
  publisher endpoints list [flags]          (admin API: run
  publisher deliveries list|show|retry …     "publisher deliveries -h")
  publisher help

send publishes message events to the hookrelay events stream, on subject
PREFIX.events.TYPE, with the event id as Nats-Msg-Id: JetStream stores an id
published again within %v only once and acks it as a duplicate.

With --type it publishes one event made from the flags. A missing id is
generated and printed ("generated id evt_…"); a missing timestamp is now.
TIME is RFC 3339 or epoch milliseconds.

With --file it publishes every line of an NDJSON file, one event a line;
blank lines are skipped. A bad line is reported on stderr as
"line N: field: reason" and skipped; the other lines are still published.
Progress goes to stderr every second, the summary to stdout.

Exit status: 0 when every event was published or was a duplicate, 1 when
some line was rejected or could not be published, 2 on a usage error.

Flags of send (settings also come from the environment variable named):
`

// run is the whole command; args exclude the program name.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "publisher: no command given")
		printUsage(stderr)
		return exitUsage
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		printUsage(stdout)
		return exitOK
	case "send":
		return runSend(ctx, args[1:], stdin, stdout, stderr)
	case "endpoints", "deliveries":
		return runAdmin(ctx, args[0], args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "publisher: unknown command %q\n", args[0])
	printUsage(stderr)
	return exitUsage
}

func printUsage(w io.Writer) {
	fmt.Fprintf(w, usageHead, stream.DuplicateWindow)
	fs, _ := newFlagSet(&settings{})
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func runSend(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	s, err := parseSend(args)
	if errors.Is(err, flag.ErrHelp) {
		printUsage(stdout)
		return exitOK
	}
	if err != nil {
		return usageFailure(stderr, err)
	}
	if s.file != "" {
		return sendFile(ctx, s, stdin, stdout, stderr)
	}
	return sendOne(ctx, s, stdout, stderr)
}

func usageFailure(stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "publisher send: %v\nRun \"publisher help\" for usage.\n", err)
	return exitUsage
}

// sendOne publishes the single event described by the flags.
func sendOne(ctx context.Context, s *settings, stdout, stderr io.Writer) int {
	ev, generated, err := s.single(time.Now())
	if err != nil {
		return usageFailure(stderr, err)
	}
	if generated {
		fmt.Fprintf(stdout, "generated id %s\n", ev.ID)
	}
	return publishItems(ctx, s, stdout, stderr, func(yield func(item) bool) error {
		yield(item{label: "event", ev: ev})
		return nil
	})
}

// sendFile publishes every line of the --file.
func sendFile(ctx context.Context, s *settings, stdin io.Reader, stdout, stderr io.Writer) int {
	r, closeFile, err := openInput(s.file, stdin)
	if err != nil {
		return usageFailure(stderr, err)
	}
	defer closeFile()
	lr := newLineReader(r, s.maxBytes)
	return publishItems(ctx, s, stdout, stderr, lr.each)
}

// publishItems connects, publishes what items yields and prints the summary.
func publishItems(ctx context.Context, s *settings, stdout, stderr io.Writer, items source) int {
	log := &lockedWriter{w: stderr}
	p, err := dial(ctx, s, log)
	if err != nil {
		log.printf("publisher send: %v\n", err)
		return exitFailed
	}
	defer p.close()
	err = p.run(ctx, items)
	c := p.stats.snapshot()
	fmt.Fprintln(stdout, c.summary(p.elapsed()))
	if c.generated > 0 && s.file != "" {
		log.printf("note: %d event(s) had no id; generated ids differ on every run, "+
			"so publishing them again makes new events, not duplicates\n", c.generated)
	}
	if err != nil {
		log.printf("publisher send: %v\n", err)
		return exitFailed
	}
	return c.exitCode()
}
