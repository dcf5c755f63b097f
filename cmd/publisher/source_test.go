package main

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

// collectItems reads all items of input with events of at most maxBytes.
func collectItems(t *testing.T, r io.Reader, maxBytes int) ([]item, error) {
	t.Helper()
	var items []item
	err := newLineReader(r, maxBytes).each(func(it item) bool {
		items = append(items, it)
		return true
	})
	return items, err
}

func TestLineReaderNumbersLinesAndSkipsBlanks(t *testing.T) {
	t.Parallel()
	in := "\n" + goodFull + "\r\n  \n" + `{"type":"x"}` + "\n" + goodEpoch
	items, err := collectItems(t, strings.NewReader(in), 1024)
	if err != nil {
		t.Fatal(err)
	}
	labels := []string{"line 2", "line 4", "line 5"}
	if len(items) != len(labels) {
		t.Fatalf("%d items, want %d", len(items), len(labels))
	}
	for i, it := range items {
		if it.label != labels[i] {
			t.Errorf("item %d is %q, want %q", i, it.label, labels[i])
		}
	}
	if items[0].err != nil || string(items[0].ev.Raw) != goodFull {
		t.Errorf("line 2: %v, %q", items[0].err, items[0].ev)
	}
	if items[1].err == nil || !strings.HasPrefix(items[1].err.Error(), "type: ") {
		t.Errorf("line 4: error %v, want one of type", items[1].err)
	}
}

func TestLineReaderKeepsLongLinesWithinTheLimit(t *testing.T) {
	t.Parallel()
	big := `{"id":"evt_1","type":"a.b","timestamp":1,"version":"1","data":"` +
		strings.Repeat("z", 200<<10) + `"}`
	items, err := collectItems(t, strings.NewReader(big+"\n"+goodFull+"\n"), 256<<10)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 || items[0].err != nil || string(items[0].ev.Raw) != big {
		t.Fatalf("items %+v", items)
	}
	if items[1].label != "line 2" || items[1].err != nil {
		t.Errorf("line 2: %+v", items[1])
	}
}

// endlessLine is a line of size bytes of 'a', then one good line.
type endlessLine struct {
	size, read int
	tail       io.Reader
}

// Read yields the long line, then the tail.
func (e *endlessLine) Read(p []byte) (int, error) {
	if e.read >= e.size {
		return e.tail.Read(p)
	}
	n := copy(p, bytes.Repeat([]byte("a"), min(len(p), e.size-e.read)))
	e.read += n
	return n, nil
}

func TestLineReaderRejectsTooLongLineWithoutKeepingIt(t *testing.T) {
	t.Parallel()
	r := &endlessLine{size: 32 << 20, tail: strings.NewReader("\n" + goodFull)}
	items, err := collectItems(t, r, 1024)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != 2 {
		t.Fatalf("%d items, want 2", len(items))
	}
	want := "line is longer than 5120 bytes, too large for an event of at most 1024"
	if items[0].err == nil || items[0].err.Error() != want {
		t.Errorf("line 1: error %v, want %q", items[0].err, want)
	}
	if items[1].label != "line 2" || items[1].err != nil {
		t.Errorf("line 2: %+v", items[1])
	}
}

func TestLineReaderLimitIsExact(t *testing.T) {
	t.Parallel()
	lr := newLineReader(strings.NewReader(strings.Repeat(" ", 1024+lineSlack)+"\n"+
		strings.Repeat(" ", 1024+lineSlack+1)), 1024)
	if line, long, err := lr.readLine(); long || len(line) != lr.limit || err != nil {
		t.Errorf("line at the limit: %d bytes, long %v, %v", len(line), long, err)
	}
	if _, long, err := lr.readLine(); !long || !errors.Is(err, io.EOF) {
		t.Errorf("line over the limit: long %v, %v", long, err)
	}
}

func TestLineReaderReportsReadErrors(t *testing.T) {
	t.Parallel()
	r := io.MultiReader(strings.NewReader(goodFull+"\n"), iotest.ErrReader(errors.New("disk gone")))
	items, err := collectItems(t, r, 1024)
	if err == nil || err.Error() != "read line 2: disk gone" || len(items) != 1 {
		t.Errorf("%d items, error %v; want 1 and the read error of line 2", len(items), err)
	}
}

func TestLineReaderStopsWhenAsked(t *testing.T) {
	t.Parallel()
	n := 0
	err := newLineReader(strings.NewReader(goodFull+"\n"+goodFull+"\n"), 1024).each(
		func(item) bool { n++; return false })
	if err != nil || n != 1 {
		t.Errorf("%d items, error %v", n, err)
	}
}
