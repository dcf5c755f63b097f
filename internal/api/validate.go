package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/hookrelay/hookrelay/internal/db"
	"github.com/hookrelay/hookrelay/internal/dispatch"
	"github.com/hookrelay/hookrelay/internal/event"
)

// Limits on endpoint fields.
const (
	maxDescription  = 1024 // characters
	maxEventTypes   = 100
	maxFilterValues = 100
	maxHeaders      = 20
	maxHeaderValue  = 1024 // bytes
	maxRetries      = 100  // items of a retry list, or max_attempts
	minTimeout      = time.Second
	maxTimeout      = time.Minute
)

// maxRetryDelayText is dispatch.MaxRetryDelay as a client would write it.
const maxRetryDelayText = "72h"

// endpointCheck validates one field of a request into the endpoint.
type endpointCheck func(req *endpointRequest, e *db.Endpoint) error

// buildEndpoint validates req and returns the endpoint to create, without
// its id.
func (s *server) buildEndpoint(req *endpointRequest) (db.Endpoint, error) {
	e := db.Endpoint{Active: true}
	checks := []endpointCheck{
		s.checkURL, checkDescription, checkEventTypes, checkFilters, checkHeaders,
		checkScheme, checkSecret, checkActive, checkRetryPolicy, checkTimeout, checkRateLimit,
	}
	for _, check := range checks {
		if err := check(req, &e); err != nil {
			return db.Endpoint{}, err
		}
	}
	return e, nil
}

func (s *server) checkURL(req *endpointRequest, e *db.Endpoint) error {
	if req.URL == nil || *req.URL == "" {
		return invalidField("url", "is required")
	}
	if err := s.guard.ValidateURL(*req.URL); err != nil {
		return invalidField("url", "%v", err) // the error never repeats the URL
	}
	e.URL = *req.URL
	return nil
}

func checkDescription(req *endpointRequest, e *db.Endpoint) error {
	if utf8.RuneCountInString(req.Description) > maxDescription {
		return invalidField("description", "is longer than %d characters", maxDescription)
	}
	if !safeText(req.Description) {
		return invalidField("description", "must not contain NUL characters")
	}
	e.Description = req.Description
	return nil
}

func checkEventTypes(req *endpointRequest, e *db.Endpoint) error {
	switch n := len(req.EventTypes); {
	case n == 0:
		return invalidField("event_types", "is required and must not be empty")
	case n > maxEventTypes:
		return invalidField("event_types", "has %d items, more than %d", n, maxEventTypes)
	}
	for i, p := range req.EventTypes {
		if reason := eventPatternError(p); reason != "" {
			return invalidField(fmt.Sprintf("event_types[%d]", i), "%s", reason)
		}
	}
	e.EventTypes = req.EventTypes
	return nil
}

// eventPatternError says why p is not "*", an event type, or a prefix such
// as "message.*"; it is empty when p is fine.
func eventPatternError(p string) string {
	if p == "*" {
		return ""
	}
	const example = `must be "*", an event type such as "message.sent", ` +
		`or a prefix such as "message.*"`
	if prefix, ok := strings.CutSuffix(p, ".*"); ok {
		// A prefix is valid words when adding one more word makes a type.
		if event.ValidateType(prefix+".x") != nil {
			return fmt.Sprintf("%q: %s", truncate(p, 64), example)
		}
		return ""
	}
	if err := event.ValidateType(p); err != nil {
		return fmt.Sprintf("%q: %s", truncate(p, 64), example)
	}
	return ""
}

func checkFilters(req *endpointRequest, e *db.Endpoint) error {
	if req.Filters == nil {
		return nil
	}
	f := req.Filters
	lists := []struct {
		name   string
		values []string
	}{
		{"filters.provider_id", f.ProviderID},
		{"filters.channel_id", f.ChannelID},
		{"filters.template_id", f.TemplateID},
	}
	for _, l := range lists {
		if err := checkFilterValues(l.name, l.values); err != nil {
			return err
		}
	}
	e.Filters = *f
	return nil
}

func checkFilterValues(field string, values []string) error {
	if len(values) > maxFilterValues {
		return invalidField(field, "has %d items, more than %d", len(values), maxFilterValues)
	}
	for i, v := range values {
		if v == "" || len(v) > maxIDBytes || !safeText(v) {
			return invalidField(fmt.Sprintf("%s[%d]", field, i),
				"must be non-empty text of at most %d bytes", maxIDBytes)
		}
	}
	return nil
}

func checkHeaders(req *endpointRequest, e *db.Endpoint) error {
	if len(req.Headers) > maxHeaders {
		return invalidField("headers", "has %d headers, more than %d", len(req.Headers),
			maxHeaders)
	}
	names := make([]string, 0, len(req.Headers))
	for name := range req.Headers {
		names = append(names, name)
	}
	sort.Strings(names) // report the same header first every time
	seen := make(map[string]bool, len(names))
	for _, name := range names {
		if err := checkHeader(name, req.Headers[name], seen); err != nil {
			return err
		}
	}
	e.Headers = req.Headers
	return nil
}

func checkHeader(name, value string, seen map[string]bool) error {
	field := "headers." + truncate(name, 64)
	lower := strings.ToLower(name)
	switch {
	case !validHeaderName(name):
		return invalidField(field, "is not a valid HTTP header name")
	case reservedHeader(lower):
		return invalidField(field, "is set by hookrelay and cannot be overridden")
	case seen[lower]:
		return invalidField(field, "is given twice in different letter case")
	case len(value) > maxHeaderValue:
		return invalidField(field, "value is longer than %d bytes", maxHeaderValue)
	case !validHeaderValue(value):
		return invalidField(field, "value must not contain control characters (CR, LF, NUL…)")
	}
	seen[lower] = true
	return nil
}

// reservedNames are headers that hookrelay sets itself or that belong to
// the connection, in lower case.
var reservedNames = map[string]bool{
	"host": true, "content-length": true, "content-type": true, "transfer-encoding": true,
	"connection": true, "keep-alive": true, "te": true, "trailer": true, "upgrade": true,
	"user-agent": true, "webhook-id": true, "webhook-timestamp": true,
	"webhook-signature": true,
}

func reservedHeader(lower string) bool {
	return reservedNames[lower] || strings.HasPrefix(lower, "proxy-") ||
		strings.HasPrefix(lower, "x-webhook-")
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
			strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

// validHeaderValue refuses control characters but horizontal tab, which
// Go's client would refuse when sending.
func validHeaderValue(v string) bool {
	for i := 0; i < len(v); i++ {
		if c := v[i]; c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func checkScheme(req *endpointRequest, e *db.Endpoint) error {
	switch dispatch.Scheme(req.SignatureScheme) {
	case "", dispatch.SchemeStandard:
		e.SignatureScheme = string(dispatch.SchemeStandard)
	case dispatch.SchemeKMsg:
		e.SignatureScheme = string(dispatch.SchemeKMsg)
	default:
		return invalidField("signature_scheme", `must be "standard" or "kmsg"`)
	}
	return nil
}

func checkSecret(req *endpointRequest, e *db.Endpoint) error {
	if req.Secret == nil {
		secret, err := dispatch.GenerateSecret()
		if err != nil {
			return fmt.Errorf("create endpoint: %w", err)
		}
		e.Secrets = []string{secret}
		return nil
	}
	secret := *req.Secret
	if !safeText(secret) {
		return invalidField("secret", "must not contain NUL characters")
	}
	if err := dispatch.ValidateSecret(dispatch.Scheme(e.SignatureScheme), secret); err != nil {
		return invalidField("secret", "%v", err) // the error never repeats the secret
	}
	e.Secrets = []string{secret}
	return nil
}

func checkActive(req *endpointRequest, e *db.Endpoint) error {
	if req.Active != nil {
		e.Active = *req.Active
	}
	return nil
}

func checkTimeout(req *endpointRequest, e *db.Endpoint) error {
	if req.Timeout == nil {
		return nil
	}
	d, err := time.ParseDuration(*req.Timeout)
	if err != nil {
		return invalidField("timeout", `must be a duration such as "10s"`)
	}
	if d < minTimeout || d > maxTimeout {
		return invalidField("timeout", "must be from %s to %s", minTimeout, maxTimeout)
	}
	e.Timeout = d
	return nil
}

func checkRateLimit(req *endpointRequest, e *db.Endpoint) error {
	if req.RateLimit == nil {
		return nil
	}
	if n := *req.RateLimit; n < 1 || n > math.MaxInt32 {
		return invalidField("rate_limit", "must be a positive integer up to %d", math.MaxInt32)
	}
	e.RateLimit = req.RateLimit
	return nil
}

// retryObject is the object form of a retry policy, read strictly here so
// that a misspelt field is refused rather than taken as zero.
type retryObject struct {
	Base        *string  `json:"base"`
	Multiplier  *float64 `json:"multiplier"`
	MaxDelay    *string  `json:"max_delay"`
	MaxAttempts *int     `json:"max_attempts"`
}

const retryShape = `must be a list of durations such as ["5s","1m"] or an object ` +
	`{"base","multiplier","max_delay","max_attempts"}`

func checkRetryPolicy(req *endpointRequest, e *db.Endpoint) error {
	raw := bytes.TrimSpace(req.RetryPolicy)
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	if err := retryBounds(raw); err != nil {
		return err
	}
	policy, err := dispatch.ParseRetryPolicy(raw)
	if err != nil {
		return invalidField("retry_policy", "%v", err)
	}
	if err := retryDelays(raw, policy.Delays); err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil || !utf8.Valid(buf.Bytes()) {
		return invalidField("retry_policy", "must be valid UTF-8 JSON")
	}
	e.RetryPolicy = buf.Bytes()
	return nil
}

// retryBounds checks what ParseRetryPolicy leaves open: the shape, unknown
// fields, and sizes that would make a huge schedule.
func retryBounds(raw []byte) error {
	switch raw[0] {
	case '[':
		var list []string
		if err := decodeExact(raw, &list, "retry_policy"); err != nil {
			return err
		}
		if len(list) > maxRetries {
			return invalidField("retry_policy", "has %d delays, more than %d", len(list),
				maxRetries)
		}
		return nil
	case '{':
		return retryObjectBounds(raw)
	}
	return badRequest("retry_policy", retryShape)
}

func retryObjectBounds(raw []byte) error {
	var o retryObject
	if err := decodeExact(raw, &o, "retry_policy"); err != nil {
		return err
	}
	switch {
	case o.Multiplier != nil && !(*o.Multiplier >= 1 && *o.Multiplier <= 1000):
		return invalidField("retry_policy.multiplier", "must be from 1 to 1000")
	case o.MaxAttempts == nil:
		return invalidField("retry_policy.max_attempts", "is required: from 1 to %d "+
			"(the first attempt included)", maxRetries+1)
	case *o.MaxAttempts < 1 || *o.MaxAttempts > maxRetries+1:
		return invalidField("retry_policy.max_attempts", "must be from 1 to %d", maxRetries+1)
	}
	return nil
}

// retryDelays refuses a delay over dispatch.MaxRetryDelay: an item of a list, the
// base or max_delay of an object, or a delay the object's schedule grows to.
func retryDelays(raw []byte, delays []time.Duration) error {
	if raw[0] == '{' {
		if err := retryObjectDelays(raw); err != nil {
			return err
		}
	}
	for i, d := range delays {
		if d <= dispatch.MaxRetryDelay {
			continue
		}
		if raw[0] == '[' {
			return invalidField("retry_policy", "delay %d is %s, over the limit of %s",
				i+1, d, maxRetryDelayText)
		}
		return invalidField("retry_policy", "retry %d would wait %s, over the limit of %s: "+
			"set max_delay to %[3]s or less", i+1, d, maxRetryDelayText)
	}
	return nil
}

// retryObjectDelays checks base and max_delay, which ParseRetryPolicy has
// already parsed.
func retryObjectDelays(raw []byte) error {
	var o retryObject
	_ = json.Unmarshal(raw, &o)
	for _, f := range []struct {
		name  string
		value *string
	}{{"base", o.Base}, {"max_delay", o.MaxDelay}} {
		if f.value == nil {
			continue
		}
		if d, err := time.ParseDuration(*f.value); err == nil && d > dispatch.MaxRetryDelay {
			return invalidField("retry_policy."+f.name, "is %s, over the limit of %s", d,
				maxRetryDelayText)
		}
	}
	return nil
}
