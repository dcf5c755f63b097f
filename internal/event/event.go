// Package event defines the message event that hookrelay carries: its wire
// format (the @k-msg/webhook event as JSON), validation and subject naming.
package event

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// DefaultMaxBytes is the default size limit of one event, 256 KiB.
const DefaultMaxBytes = 256 << 10

// DefaultVersion is the version an event gets when it names none.
const DefaultVersion = "1.0"

// ErrInvalid is wrapped by every validation error.
var ErrInvalid = errors.New("invalid event")

// ValidationError names the field of an event that is wrong and why.
type ValidationError struct {
	Field  string
	Reason string
}

// Error implements error.
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Reason
	}
	return e.Field + ": " + e.Reason
}

// Unwrap lets errors.Is match ErrInvalid.
func (e *ValidationError) Unwrap() error { return ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Reason: fmt.Sprintf(format, args...)}
}

// Metadata is the routing metadata of an event. Empty strings mean absent.
type Metadata struct {
	ProviderID     string `json:"providerId,omitempty"`
	ChannelID      string `json:"channelId,omitempty"`
	TemplateID     string `json:"templateId,omitempty"`
	MessageID      string `json:"messageId,omitempty"`
	UserID         string `json:"userId,omitempty"`
	OrganizationID string `json:"organizationId,omitempty"`
	CorrelationID  string `json:"correlationId,omitempty"`
}

// Event is a validated event. Raw holds its bytes exactly as published: they
// are what endpoints receive and what signatures cover.
type Event struct {
	ID        string
	Type      string
	Timestamp time.Time
	Version   string
	Metadata  Metadata
	Raw       []byte
}

// wire is the JSON shape used for parsing. Fields are raw so that each one
// can be checked for its type and named in the error.
type wire struct {
	ID        json.RawMessage `json:"id"`
	Type      json.RawMessage `json:"type"`
	Timestamp json.RawMessage `json:"timestamp"`
	Data      json.RawMessage `json:"data"`
	Metadata  json.RawMessage `json:"metadata"`
	Version   json.RawMessage `json:"version"`
}

// NewID returns a fresh event id: "evt_" and 32 hex digits.
func NewID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}

// Subject is the NATS subject of events of type typ under prefix.
func Subject(prefix, typ string) string {
	return prefix + ".events." + typ
}

// Patterns are the subscription patterns that match an event of type typ:
// "*", each prefix pattern ("message.*" for "message.sent") and typ itself.
func Patterns(typ string) []string {
	out := []string{"*"}
	for i := 0; i < len(typ); i++ {
		if typ[i] == '.' {
			out = append(out, typ[:i+1]+"*")
		}
	}
	return append(out, typ)
}
