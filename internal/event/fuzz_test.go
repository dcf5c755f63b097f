package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hookrelay/hookrelay/internal/event"
)

// FuzzParse checks that Parse never panics, that whatever it accepts has an
// id and a type that pass their own checks and keeps its bytes, and that
// every refusal is a *ValidationError. Complete is held to the same. Plain
// `go test` runs only the seeds; `go test -fuzz=FuzzParse` explores.
func FuzzParse(f *testing.F) {
	for _, line := range fixtureLines(f)[:4] {
		f.Add(line)
	}
	for _, s := range []string{
		string(obj()),
		`{"id":"e","type":"a.b"}`,
		`{"type":"message.sent"}`,
		`{"id":"e","type":"a.b","timestamp":1795996800002,"version":"2"}`,
		`{"id":"e","type":"a.b","timestamp":"2026-11-30T09:00:00.5+09:00"}`,
		`{"id":"e","type":"a.b","timestamp":-62167219200001}`,
		`{"id":"e","type":"a.b","metadata":{"providerId":5,"x":[]}}`,
		`{"ID":"e","Type":"a.b","id":"f","type":"c.d"}`,
		`{"id":"e","type":"a.b","data":"\\u0000\u0000"}`,
		`{"id":"\u00e9","type":"a..b"}`,
		" \t{\"id\":\"e\",\"type\":\"a.b\",\"data\":[{},[],null,1e300]}\n",
		"{\"id\":\"0\",\"type\":\"0.0\"}\v",
		`[]`,
		``,
		`{`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		input := bytes.Clone(data)
		ev, err := event.Parse(data, 0, now)
		if !bytes.Equal(data, input) {
			t.Fatalf("Parse changed its input")
		}
		if err != nil {
			checkRefusal(t, "Parse", ev, err)
		} else {
			checkEvent(t, "Parse", ev)
			if !bytes.Equal(ev.Raw, data) {
				t.Fatalf("Raw %q differs from the input %q", ev.Raw, data)
			}
		}

		// Filling may spell values differently (and longer), so give
		// Complete room to spare.
		limit := 8*len(data) + 1024
		cev, generated, cerr := event.Complete(data, limit, now)
		if !bytes.Equal(data, input) {
			t.Fatalf("Complete changed its input")
		}
		if cerr != nil {
			checkRefusal(t, "Complete", cev, cerr)
			if err == nil {
				t.Fatalf("Parse accepts %q but Complete refuses it: %v", data, cerr)
			}
			return
		}
		checkEvent(t, "Complete", cev)
		again, perr := event.Parse(cev.Raw, limit, now)
		if perr != nil {
			t.Fatalf("Complete made %q, which Parse refuses: %v", cev.Raw, perr)
		}
		if again.ID != cev.ID || again.Type != cev.Type || !again.Timestamp.Equal(cev.Timestamp) ||
			again.Version != cev.Version || again.Metadata != cev.Metadata {
			t.Fatalf("Complete gave %+v; its bytes parse as %+v", cev, again)
		}
		if err == nil {
			if generated || cev.ID != ev.ID || cev.Type != ev.Type {
				t.Fatalf("Complete of a valid event changed it: %+v (generated %v); Parse gave %+v",
					cev, generated, ev)
			}
		}
	})
}

func checkEvent(t *testing.T, by string, ev *event.Event) {
	t.Helper()
	if ev == nil {
		t.Fatalf("%s returned neither an event nor an error", by)
	}
	if err := event.ValidateID(ev.ID); err != nil {
		t.Fatalf("%s accepted id %q: %v", by, ev.ID, err)
	}
	if err := event.ValidateType(ev.Type); err != nil {
		t.Fatalf("%s accepted type %q: %v", by, ev.Type, err)
	}
	if ev.Version == "" || len(ev.Version) > 32 {
		t.Fatalf("%s accepted version %q", by, ev.Version)
	}
	if ev.Timestamp.Location().String() != "UTC" {
		t.Fatalf("%s gave timestamp %v, not in UTC", by, ev.Timestamp)
	}
	if _, err := ev.Timestamp.MarshalJSON(); err != nil {
		t.Fatalf("%s gave timestamp %v: %v", by, ev.Timestamp, err)
	}
	if !json.Valid(ev.Raw) || bytes.IndexByte(ev.Raw, 0) >= 0 {
		t.Fatalf("%s accepted %q", by, ev.Raw)
	}
}

func checkRefusal(t *testing.T, by string, ev *event.Event, err error) {
	t.Helper()
	if ev != nil {
		t.Fatalf("%s returned an event with the error %v", by, err)
	}
	var ve *event.ValidationError
	if !errors.Is(err, event.ErrInvalid) || !errors.As(err, &ve) {
		t.Fatalf("%s error %v (%T) is not a *ValidationError", by, err, err)
	}
}
