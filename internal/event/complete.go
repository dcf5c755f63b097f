package event

import (
	"bytes"
	"encoding/json"
	"time"
)

// KnownTypes are the event types of @k-msg/webhook. Other types of the same
// form are custom types and are allowed too.
var KnownTypes = []string{
	"message.sent", "message.delivered", "message.failed", "message.clicked",
	"message.read", "message.cancelled", "message.unknown",
	"template.created", "template.approved", "template.rejected",
	"template.updated", "template.deleted",
	"channel.created", "channel.verified",
	"sender_number.added", "sender_number.verified",
	"system.quota_warning", "system.quota_exceeded", "system.provider_error",
	"system.maintenance",
	"analytics.anomaly_detected", "analytics.threshold_exceeded",
}

// IsKnownType reports whether typ is one of KnownTypes.
func IsKnownType(typ string) bool {
	for _, k := range KnownTypes {
		if k == typ {
			return true
		}
	}
	return false
}

// Complete fills what a producer may leave out (id, timestamp, version) and
// validates the result. When nothing is missing raw is returned unchanged,
// so the bytes that endpoints receive are the producer's own. generated
// reports whether an id was made up.
func Complete(raw []byte, maxBytes int, now time.Time) (ev *Event, generated bool, err error) {
	var fields map[string]json.RawMessage
	if t := bytes.TrimLeft(raw, jsonSpace); len(t) > 0 && t[0] == '{' {
		if json.Unmarshal(t, &fields) == nil {
			raw, generated, err = fill(raw, fields, now)
			if err != nil {
				return nil, false, err
			}
		}
	}
	ev, err = Parse(raw, maxBytes, now)
	return ev, generated, err
}

func fill(raw []byte, fields map[string]json.RawMessage, now time.Time) ([]byte, bool, error) {
	missing := func(k string) bool { v, ok := fields[k]; return !ok || isNull(v) }
	if !missing("id") && !missing("timestamp") && !missing("version") {
		return raw, false, nil
	}

	generated := missing("id")
	if generated {
		fields["id"] = quote(NewID())
	}
	if missing("timestamp") {
		fields["timestamp"] = quote(now.UTC().Format("2006-01-02T15:04:05.000Z07:00"))
	}
	if missing("version") {
		fields["version"] = quote(DefaultVersion)
	}
	out, err := json.Marshal(fields)
	return out, generated, err
}

func quote(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

// Build makes the bytes of a new event from its parts, as the publisher's
// flags give them. data and metadata are JSON texts; empty means absent.
func Build(id, typ, timestamp, data, metadata string) ([]byte, error) {
	fields := map[string]json.RawMessage{"type": quote(typ)}
	if id != "" {
		fields["id"] = quote(id)
	}
	if timestamp != "" {
		fields["timestamp"] = timestampValue(timestamp)
	}
	if err := putJSON(fields, "data", data); err != nil {
		return nil, err
	}
	if err := putJSON(fields, "metadata", metadata); err != nil {
		return nil, err
	}
	return json.Marshal(fields)
}

// timestampValue keeps epoch milliseconds a JSON number, as the format allows.
func timestampValue(ts string) json.RawMessage {
	var n json.Number
	if json.Unmarshal([]byte(ts), &n) == nil {
		return json.RawMessage(ts)
	}
	return quote(ts)
}

func putJSON(fields map[string]json.RawMessage, key, text string) error {
	if text == "" {
		return nil
	}
	if !json.Valid([]byte(text)) {
		return invalid(key, "is not valid JSON")
	}
	fields[key] = json.RawMessage(text)
	return nil
}
