package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

	"github.com/hookrelay/hookrelay/internal/event"
)

const (
	// lineSlack is the room a line has for blanks around its event.
	lineSlack = 4 << 10
	// readBuffer is the size of the input buffer; longer lines are read in
	// several pieces.
	readBuffer = 64 << 10
)

// item is one event to publish, or the reason it cannot be.
type item struct {
	label     string // where the event came from: "line 12" or "event"
	ev        *event.Event
	generated bool // the event's id was generated
	err       error
}

// source calls yield for each item until yield returns false. Its error is
// one of reading, after which no more items come.
type source func(yield func(item) bool) error

// openInput opens the --file path; "-" is stdin.
func openInput(path string, stdin io.Reader) (io.Reader, func(), error) {
	if path == "-" {
		return stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("--file: %w", err)
	}
	return f, func() { _ = f.Close() }, nil
}

// lineReader reads events from NDJSON, one a line. A line is kept in memory
// only up to its limit: a longer one is read through and rejected.
type lineReader struct {
	r        *bufio.Reader
	maxBytes int // largest event
	limit    int // longest line kept
	n        int // number of the last line read
	now      func() time.Time
}

func newLineReader(r io.Reader, maxBytes int) *lineReader {
	return &lineReader{
		r:        bufio.NewReaderSize(r, readBuffer),
		maxBytes: maxBytes,
		limit:    maxBytes + lineSlack,
		now:      time.Now,
	}
}

// each yields an item for every line that is not blank.
func (lr *lineReader) each(yield func(item) bool) error {
	for {
		line, long, err := lr.readLine()
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("read line %d: %w", lr.n+1, err)
		}
		if it, ok := lr.item(line, long); ok && !yield(it) {
			return nil
		}
		if err != nil {
			return nil
		}
	}
}

// item makes the item of line number lr.n; ok is false for a blank line.
func (lr *lineReader) item(line []byte, long bool) (it item, ok bool) {
	it.label = "line " + strconv.Itoa(lr.n)
	if long {
		it.err = &event.ValidationError{Reason: fmt.Sprintf(
			"line is longer than %d bytes, too large for an event of at most %d",
			lr.limit, lr.maxBytes)}
		return it, true
	}
	line = bytes.TrimSpace(line)
	if len(line) == 0 {
		return it, false
	}
	it.ev, it.generated, it.err = event.Complete(line, lr.maxBytes, lr.now())
	return it, true
}

// readLine reads the next line without its newline. A line longer than
// lr.limit is read to its end without being kept, and long is true. err is
// io.EOF after the last line, with or without a line.
func (lr *lineReader) readLine() (line []byte, long bool, err error) {
	read := false
	for {
		chunk, err := lr.r.ReadSlice('\n')
		read = read || len(chunk) > 0
		line, long = keepBounded(line, chunk, long, lr.limit+1)
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if read {
			lr.n++
		}
		line = bytes.TrimSuffix(line, []byte("\n"))
		if len(line) > lr.limit {
			line, long = nil, true
		}
		return line, long, err
	}
}

// keepBounded appends chunk to line unless that makes it longer than limit,
// in which case the line is dropped and long becomes true.
func keepBounded(line, chunk []byte, long bool, limit int) ([]byte, bool) {
	if long || len(line)+len(chunk) > limit {
		return nil, true
	}
	return append(line, chunk...), false
}
