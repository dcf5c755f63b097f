package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"
)

const fixture = "../../testdata/message-events.ndjson"

const (
	goodFull = `{"id":"evt_good1","type":"message.sent","timestamp":"2026-01-02T03:04:05.000Z",` +
		`"data":{"text":"안녕"},"metadata":{"userId":"u1"},"version":"1.0"}`
	goodEpoch = `{"id":"evt_good2","type":"message.delivered","timestamp":1767225600000,` +
		`"version":"1.0"}`
	goodNoID = `{"type":"template.created","data":{"n":1}}`
)

// bigEvent is an event with data of n bytes.
func bigEvent(n int) string {
	return `{"id":"evt_big","type":"message.sent","data":"` + strings.Repeat("x", n) + `"}`
}

// mixedLines are good and bad lines; their numbers are the index plus one.
// Events may be at most 1024 bytes.
func mixedLines() []string {
	return []string{
		goodFull,                                // 1
		"",                                      // 2: blank
		`{"id":"evt_x","type":"message.sent",`,  // 3: bad JSON
		`{"id":"evt_notype","data":{}}`,         // 4: no type
		`{"id":"bad id","type":"message.sent"}`, // 5
		`{"id":"evt_ts","type":"message.sent","timestamp":"yesterday"}`,  // 6
		`{"id":"evt_md","type":"message.sent","metadata":[1]}`,           // 7
		`{"id":"evt_nul","type":"message.sent","data":{"t":"a\u0000b"}}`, // 8
		goodEpoch + "\r",                      // 9: CRLF
		"   \t",                               // 10: blank
		goodNoID,                              // 11
		bigEvent(2000),                        // 12: too large
		strings.Repeat("y", 1024+lineSlack+1), // 13: too long to keep
		`{"id":"evt_last","type":"message.read"}`, // 14, no newline at the end
	}
}

func writeFile(t *testing.T, lines []string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "events.ndjson")
	if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSendFileReportsBadLinesAndPublishesGoodOnes(t *testing.T) {
	t.Parallel()
	url := startJetStream(t)
	r := send(t, url, "", "--file", writeFile(t, mixedLines()), "--max-event-bytes", "1024")

	if r.code != exitFailed {
		t.Errorf("exit %d, want %d; stderr:\n%s", r.code, exitFailed, r.stderr)
	}
	wantLines(t, r.stderr,
		"line 3: malformed JSON",
		"line 4: type: is required",
		"line 5: id: byte 3 is not printable ASCII",
		`line 6: timestamp: "yesterday" is not RFC 3339`,
		"line 7: metadata: must be an object",
		`line 8: contains \u0000`,
		"line 12: event is 2", "bytes, over the limit of 1024\n",
		"line 13: line is longer than 5120 bytes",
		"note: 1 event(s) had no id")
	if strings.Contains(r.stderr, "line 2:") || strings.Contains(r.stderr, "line 10:") {
		t.Errorf("blank lines reported:\n%s", r.stderr)
	}
	wantLines(t, r.stdout, "published 4, duplicates 0, rejected 8, failed 0 in ")

	msgs := storedMsgs(t, url)
	if len(msgs) != 4 {
		t.Fatalf("%d messages on the stream, want 4", len(msgs))
	}
	checkStored(t, msgs[0], "hookrelay.events.message.sent", "evt_good1", goodFull)
	checkStored(t, msgs[1], "hookrelay.events.message.delivered", "evt_good2", goodEpoch)
	checkGenerated(t, msgs[2], "hookrelay.events.template.created")
	checkStored(t, msgs[3], "hookrelay.events.message.read", "evt_last", "")
}

func checkStored(t *testing.T, m *jetstream.RawStreamMsg, subject, id, body string) {
	t.Helper()
	if m.Subject != subject {
		t.Errorf("subject %q, want %q", m.Subject, subject)
	}
	if got := m.Header.Get("Nats-Msg-Id"); got != id {
		t.Errorf("Nats-Msg-Id %q, want %q", got, id)
	}
	if body != "" && string(m.Data) != body {
		t.Errorf("body\n%s\nwant\n%s", m.Data, body)
	}
}

// checkGenerated checks a message whose event was completed by the publisher.
func checkGenerated(t *testing.T, m *jetstream.RawStreamMsg, subject string) map[string]any {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatalf("body %s: %v", m.Data, err)
	}
	id, _ := ev["id"].(string)
	if !regexp.MustCompile(`^evt_[0-9a-f]{32}$`).MatchString(id) {
		t.Errorf("generated id %q", id)
	}
	checkStored(t, m, subject, id, "")
	if ev["version"] != "1.0" || ev["timestamp"] == nil {
		t.Errorf("event not completed: %s", m.Data)
	}
	return ev
}

func TestSendSameFileTwiceGivesDuplicates(t *testing.T) {
	t.Parallel()
	url := startJetStream(t)
	path := writeFile(t, []string{goodFull, goodEpoch})

	first := send(t, url, "", "--file", path)
	if first.code != exitOK {
		t.Fatalf("first run exit %d: %s", first.code, first.stderr)
	}
	wantLines(t, first.stdout, "published 2, duplicates 0, rejected 0, failed 0")
	second := send(t, url, "", "--file", path)
	if second.code != exitOK {
		t.Fatalf("second run exit %d: %s", second.code, second.stderr)
	}
	wantLines(t, second.stdout, "published 0, duplicates 2, rejected 0, failed 0")
	if n := len(storedMsgs(t, url)); n != 2 {
		t.Errorf("%d messages on the stream, want 2", n)
	}
}

func TestSendFlagsGeneratesID(t *testing.T) {
	t.Parallel()
	url := startJetStream(t)
	r := send(t, url, "", "--type", "message.sent",
		"--data", `{"text":"hi"}`, "--metadata", `{"userId":"u1"}`)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	printed := regexp.MustCompile(`(?m)^generated id (evt_[0-9a-f]{32})$`)
	found := printed.FindStringSubmatch(r.stdout)
	if found == nil {
		t.Fatalf("no generated id in:\n%s", r.stdout)
	}
	wantLines(t, r.stdout, "published 1, duplicates 0, rejected 0, failed 0")
	msgs := storedMsgs(t, url)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	ev := checkGenerated(t, msgs[0], "hookrelay.events.message.sent")
	if ev["id"] != found[1] {
		t.Errorf("printed id %s, stored %v", found[1], ev["id"])
	}
	if ev["type"] != "message.sent" || ev["metadata"].(map[string]any)["userId"] != "u1" ||
		ev["data"].(map[string]any)["text"] != "hi" {
		t.Errorf("stored event %s", msgs[0].Data)
	}
}

func TestSendFlagsWithIDAndEpochTimestamp(t *testing.T) {
	t.Parallel()
	url := startJetStream(t)
	r := send(t, url, "", "--type", "message.read", "--id", "evt_given",
		"--timestamp", "1767225600000")
	if r.code != exitOK || strings.Contains(r.stdout, "generated id") {
		t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	msgs := storedMsgs(t, url)
	if len(msgs) != 1 {
		t.Fatalf("%d messages, want 1", len(msgs))
	}
	checkStored(t, msgs[0], "hookrelay.events.message.read", "evt_given", "")
	wantLines(t, string(msgs[0].Data), `"timestamp":1767225600000`)
}

func TestSendStdin(t *testing.T) {
	t.Parallel()
	url := startJetStream(t)
	r := send(t, url, goodFull+"\n\n"+goodEpoch+"\n", "--file", "-")
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	wantLines(t, r.stdout, "published 2, duplicates 0, rejected 0, failed 0")
	msgs := storedMsgs(t, url)
	if len(msgs) != 2 {
		t.Fatalf("%d messages, want 2", len(msgs))
	}
	checkStored(t, msgs[1], "hookrelay.events.message.delivered", "evt_good2", goodEpoch)
}

func TestSendFixtureFile(t *testing.T) {
	t.Parallel()
	url := startJetStream(t)
	start := time.Now()
	r := send(t, url, "", "--file", fixture)
	if r.code != exitOK {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	t.Logf("%s (test took %v)", strings.TrimSpace(r.stdout), time.Since(start))
	wantLines(t, r.stdout, "published 5000, duplicates 0, rejected 0, failed 0")
	s := events(t, url)
	if st := streamState(t, s); st.Msgs != 5000 {
		t.Errorf("%d messages on the stream, want 5000", st.Msgs)
	}
	first, err := s.GetMsg(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := os.ReadFile(fixture)
	if err != nil {
		t.Fatal(err)
	}
	line, _, _ := strings.Cut(string(raw), "\n")
	if string(first.Data) != line {
		t.Errorf("first message differs from the first line:\n%s\n%s", first.Data, line)
	}
}

func TestSendReportsFailedPublish(t *testing.T) {
	t.Parallel()
	url := startJetStream(t, func(o *server.Options) { o.MaxPayload = 1500 })
	r := send(t, url, "", "--file", writeFile(t, []string{goodFull, bigEvent(2000)}))
	if r.code != exitFailed {
		t.Errorf("exit %d, want %d", r.code, exitFailed)
	}
	wantLines(t, r.stderr, "line 2: publish failed: nats: maximum payload exceeded")
	wantLines(t, r.stdout, "published 1, duplicates 0, rejected 0, failed 1")
}

func TestSendUnreachableServer(t *testing.T) {
	t.Parallel()
	r := send(t, "nats://u:secret@"+strings.TrimPrefix(noServer, "nats://"), "",
		"--type", "message.sent")
	if r.code != exitFailed || strings.Contains(r.stderr, "secret") {
		t.Errorf("exit %d, want %d, without the password; stderr: %s", r.code, exitFailed, r.stderr)
	}
	wantLines(t, r.stderr, "connect to NATS at nats://xxxxx@127.0.0.1:1 (--nats-url):")
}
