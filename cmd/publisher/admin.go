package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/hookrelay/hookrelay/internal/config"
)

// defaultAPIURL is the admin API of a consumer on this machine.
const defaultAPIURL = "http://127.0.0.1:8080"

// adminTimeout bounds one request to the admin API.
const adminTimeout = 30 * time.Second

const adminUsage = `Usage:
  publisher endpoints list [--limit N] [--cursor C] [--active true|false] [settings]
  publisher deliveries list [--endpoint-id ID] [--event-id ID] [--event-type TYPE]
                            [--status STATUS] [--since TIME] [--until TIME]
                            [--limit N] [--cursor C] [settings]
  publisher deliveries show ID [settings]
  publisher deliveries retry ID [settings]

These ask a consumer's admin API and print aligned tables. Lists show one
page, newest first; when more follow, the last line gives the --cursor of
the next page (--limit: 1 to 500, default 50). STATUS is pending,
succeeded, failed or skipped; TIME is RFC 3339 (since inclusive, until
exclusive). show prints a delivery with its attempts. retry requeues one
delivery now (one that succeeded is refused).

Exit status: 0 on success, 1 when the API refuses or cannot be reached
(its error code and message are printed), 2 on a usage error.

Settings (also read from the environment variable named):
  --api-url url      admin API base URL (env HOOKRELAY_API_URL, default ` + defaultAPIURL + `)
  --api-token token  bearer token (env HOOKRELAY_API_TOKEN)
`

// adminCommand is one admin subcommand: its flags and what it does.
type adminCommand struct {
	name  string // "deliveries list"
	args  int    // positional arguments it takes: 0, or 1 (an id)
	flags func(fs *flag.FlagSet, q url.Values)
	run   func(ctx context.Context, c *adminClient, arg string, q url.Values, out io.Writer) error
}

var adminCommands = map[string]map[string]adminCommand{
	"endpoints": {
		"list": {name: "endpoints list", flags: endpointListFlags, run: listEndpoints},
	},
	"deliveries": {
		"list":  {name: "deliveries list", flags: deliveryListFlags, run: listDeliveries},
		"show":  {name: "deliveries show", args: 1, run: showDelivery},
		"retry": {name: "deliveries retry", args: 1, run: retryDelivery},
	},
}

// runAdmin runs "publisher endpoints …" or "publisher deliveries …"; args
// start after the noun.
func runAdmin(ctx context.Context, noun string, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || isHelp(args[0]) {
		if len(args) == 0 {
			fmt.Fprintf(stderr, "publisher %s: no subcommand given\n", noun)
			fmt.Fprint(stderr, adminUsage)
			return exitUsage
		}
		fmt.Fprint(stdout, adminUsage)
		return exitOK
	}
	cmd, ok := adminCommands[noun][args[0]]
	if !ok {
		fmt.Fprintf(stderr, "publisher %s: unknown subcommand %q\n", noun, args[0])
		fmt.Fprint(stderr, adminUsage)
		return exitUsage
	}
	client, arg, q, err := parseAdmin(cmd, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, adminUsage)
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "publisher %s: %v\nRun \"publisher %s -h\" for usage.\n",
			cmd.name, err, noun)
		return exitUsage
	}
	if err := cmd.run(ctx, client, arg, q, stdout); err != nil {
		fmt.Fprintf(stderr, "publisher %s: %v\n", cmd.name, err)
		return exitFailed
	}
	return exitOK
}

func isHelp(s string) bool {
	return s == "help" || s == "-h" || s == "-help" || s == "--help"
}

// parseAdmin reads the settings and flags of cmd. Flags may come before or
// after the id.
func parseAdmin(cmd adminCommand, args []string) (*adminClient, string, url.Values, error) {
	fs := flag.NewFlagSet("publisher "+cmd.name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	b := config.NewBinder(fs)
	var base, token string
	b.String(&base, "api-url", "HOOKRELAY_API_URL", defaultAPIURL, "admin API base `url`")
	b.String(&token, "api-token", "HOOKRELAY_API_TOKEN", "", "bearer `token`")
	q := url.Values{}
	if cmd.flags != nil {
		cmd.flags(fs, q)
	}
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, "", nil, err
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := b.Err(); err != nil {
		return nil, "", nil, err
	}
	switch {
	case len(positional) < cmd.args:
		return nil, "", nil, errors.New("an id is required")
	case len(positional) > cmd.args:
		return nil, "", nil, fmt.Errorf("unexpected argument %q", positional[cmd.args])
	}
	client, err := newAdminClient(b, base, token)
	if err != nil {
		return nil, "", nil, err
	}
	arg := ""
	if cmd.args > 0 {
		arg = positional[0]
	}
	return client, arg, q, nil
}

// queryFlag is a flag whose value, when given, becomes a query parameter.
type queryFlag struct {
	q    url.Values
	name string
}

func (f queryFlag) String() string {
	if f.q == nil {
		return ""
	}
	return f.q.Get(f.name)
}

func (f queryFlag) Set(s string) error {
	if s == "" {
		return errors.New("must not be empty; leave the flag out to list without it")
	}
	if check, ok := flagChecks[f.name]; ok {
		if err := check(s); err != nil {
			return err
		}
	}
	f.q.Set(f.name, s)
	return nil
}

// flagChecks refuse, as usage errors, values the API would refuse.
var flagChecks = map[string]func(string) error{
	"active": func(s string) error {
		if s != "true" && s != "false" {
			return errors.New("must be true or false")
		}
		return nil
	},
	"status": func(s string) error {
		if !slices.Contains([]string{"pending", "succeeded", "failed", "skipped"}, s) {
			return errors.New("must be pending, succeeded, failed or skipped")
		}
		return nil
	},
	"limit": func(s string) error {
		if n, err := strconv.Atoi(s); err != nil || n < 1 || n > 500 {
			return errors.New("must be a number from 1 to 500")
		}
		return nil
	},
}

func queryFlags(fs *flag.FlagSet, q url.Values, names ...string) {
	for _, n := range names {
		param := strings.ReplaceAll(n, "-", "_")
		fs.Var(queryFlag{q: q, name: param}, n, param+" filter")
	}
}

func endpointListFlags(fs *flag.FlagSet, q url.Values) {
	queryFlags(fs, q, "limit", "cursor", "active", "event-type")
}

func deliveryListFlags(fs *flag.FlagSet, q url.Values) {
	queryFlags(fs, q, "endpoint-id", "event-id", "event-type", "status", "since", "until",
		"limit", "cursor")
}

// adminClient calls the admin API.
type adminClient struct {
	base  *url.URL
	token string
	http  *http.Client
}

func newAdminClient(b *config.Binder, base, token string) (*adminClient, error) {
	u, err := url.Parse(strings.TrimRight(strings.TrimSpace(base), "/"))
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, b.Fail("api-url", "%q is not an http:// or https:// URL", base)
	}
	return &adminClient{base: u, token: token, http: &http.Client{Timeout: adminTimeout}}, nil
}

// apiError is an error answer of the admin API.
type apiError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s: %s (HTTP %d)", e.Code, e.Message, e.Status)
}

// call sends a request to path (already escaped) and decodes a 2xx answer
// into out; any other answer is an *apiError.
func (c *adminClient) call(ctx context.Context, method, path string, q url.Values, out any) error {
	target := c.base.String() + path
	if len(q) > 0 {
		target += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, target, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	res, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("admin API at %s (--api-url): %w", c.base.Redacted(), unwrapURLError(err))
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read the answer of %s %s: %w", method, path, err)
	}
	if res.StatusCode/100 != 2 {
		return answerError(res.StatusCode, raw)
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s answered something that is not the expected JSON: %w",
			method, path, err)
	}
	return nil
}

func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// answerError reads the error body of a failed answer, or describes the
// answer when it holds none.
func answerError(status int, raw []byte) error {
	var body struct {
		Error *apiError `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Error != nil && body.Error.Code != "" {
		body.Error.Status = status
		return body.Error
	}
	return &apiError{Status: status, Code: strings.ToLower(strings.ReplaceAll(
		http.StatusText(status), " ", "_")), Message: clip(string(bytes.TrimSpace(raw)), 200)}
}

// The answers, as far as the tables need them.
type (
	endpointRow struct {
		ID              string   `json:"id"`
		URL             string   `json:"url"`
		EventTypes      []string `json:"event_types"`
		SignatureScheme string   `json:"signature_scheme"`
		Active          bool     `json:"active"`
		DisabledReason  *string  `json:"disabled_reason"`
		CreatedAt       string   `json:"created_at"`
	}
	deliveryRow struct {
		ID             string  `json:"id"`
		EventID        string  `json:"event_id"`
		EndpointID     string  `json:"endpoint_id"`
		EventType      string  `json:"event_type"`
		Status         string  `json:"status"`
		AttemptCount   int     `json:"attempt_count"`
		NextAttemptAt  *string `json:"next_attempt_at"`
		LastStatusCode *int    `json:"last_status_code"`
		LastError      *string `json:"last_error"`
		CreatedAt      string  `json:"created_at"`
		UpdatedAt      string  `json:"updated_at"`
		CompletedAt    *string `json:"completed_at"`
	}
	attemptRow struct {
		Number       int     `json:"number"`
		StartedAt    string  `json:"started_at"`
		DurationMs   int64   `json:"duration_ms"`
		StatusCode   *int    `json:"status_code"`
		ResponseBody string  `json:"response_body"`
		Error        *string `json:"error"`
	}
	deliveryDetail struct {
		deliveryRow
		Attempts []attemptRow `json:"attempts"`
	}
)

type listPage[T any] struct {
	Data       []T     `json:"data"`
	NextCursor *string `json:"next_cursor"`
}

func listEndpoints(ctx context.Context, c *adminClient, _ string, q url.Values, out io.Writer) error {
	var p listPage[endpointRow]
	if err := c.call(ctx, http.MethodGet, "/v1/endpoints", q, &p); err != nil {
		return err
	}
	tw := newTable(out)
	tw.row("ID", "URL", "EVENT TYPES", "SCHEME", "ACTIVE", "CREATED")
	for _, e := range p.Data {
		active := "yes"
		if !e.Active {
			active = "no"
			if e.DisabledReason != nil {
				active += " (" + *e.DisabledReason + ")"
			}
		}
		tw.row(e.ID, e.URL, strings.Join(e.EventTypes, ","), e.SignatureScheme, active,
			shortTime(e.CreatedAt))
	}
	return tw.end(len(p.Data), "endpoints", p.NextCursor)
}

func listDeliveries(ctx context.Context, c *adminClient, _ string, q url.Values, out io.Writer) error {
	var p listPage[deliveryRow]
	if err := c.call(ctx, http.MethodGet, "/v1/deliveries", q, &p); err != nil {
		return err
	}
	tw := newTable(out)
	tw.row("ID", "EVENT", "ENDPOINT", "TYPE", "STATUS", "ATTEMPTS", "LAST CODE", "CREATED",
		"LAST ERROR")
	for _, d := range p.Data {
		tw.row(d.ID, d.EventID, d.EndpointID, d.EventType, d.Status,
			strconv.Itoa(d.AttemptCount), optInt(d.LastStatusCode), shortTime(d.CreatedAt),
			clip(optStr(d.LastError), 60))
	}
	return tw.end(len(p.Data), "deliveries", p.NextCursor)
}

func showDelivery(ctx context.Context, c *adminClient, id string, _ url.Values, out io.Writer) error {
	var d deliveryDetail
	if err := c.call(ctx, http.MethodGet, "/v1/deliveries/"+url.PathEscape(id), nil, &d); err != nil {
		return err
	}
	tw := newTable(out)
	fields := [][2]string{
		{"id", d.ID}, {"event", d.EventID}, {"event type", d.EventType},
		{"endpoint", d.EndpointID}, {"status", d.Status},
		{"attempts", strconv.Itoa(d.AttemptCount)},
		{"next attempt", optTime(d.NextAttemptAt)}, {"last status code", optInt(d.LastStatusCode)},
		{"last error", optStr(d.LastError)}, {"created", shortTime(d.CreatedAt)},
		{"updated", shortTime(d.UpdatedAt)}, {"completed", optTime(d.CompletedAt)},
	}
	for _, f := range fields {
		tw.row(f[0]+":", f[1])
	}
	if err := tw.flush(); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if len(d.Attempts) == 0 {
		_, err := fmt.Fprintln(out, "no attempts yet")
		return err
	}
	tw = newTable(out)
	tw.row("#", "STARTED", "DURATION", "STATUS", "ERROR", "RESPONSE")
	for _, a := range d.Attempts {
		tw.row(strconv.Itoa(a.Number), shortTime(a.StartedAt),
			(time.Duration(a.DurationMs) * time.Millisecond).String(), optInt(a.StatusCode),
			clip(optStr(a.Error), 60), clip(a.ResponseBody, 60))
	}
	return tw.flush()
}

func retryDelivery(ctx context.Context, c *adminClient, id string, _ url.Values, out io.Writer) error {
	var d deliveryRow
	path := "/v1/deliveries/" + url.PathEscape(id) + "/retry"
	if err := c.call(ctx, http.MethodPost, path, nil, &d); err != nil {
		return err
	}
	_, err := fmt.Fprintf(out, "requeued %s: status %s, attempt %d next, due %s\n",
		d.ID, d.Status, d.AttemptCount+1, optTime(d.NextAttemptAt))
	return err
}

// table writes aligned columns; cells are made single-line and printable.
type table struct {
	out io.Writer
	tw  *tabwriter.Writer
}

func newTable(out io.Writer) *table {
	return &table{out: out, tw: tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)}
}

func (t *table) row(cells ...string) {
	for i, c := range cells {
		cells[i] = printable(c)
		if cells[i] == "" {
			cells[i] = "-"
		}
	}
	fmt.Fprintln(t.tw, strings.Join(cells, "\t"))
}

func (t *table) flush() error {
	return t.tw.Flush()
}

// end flushes a list and says how many rows it showed and how to go on.
// singular names one row of a table.
var singular = map[string]string{"endpoints": "endpoint", "deliveries": "delivery"}

func (t *table) end(n int, what string, next *string) error {
	if err := t.flush(); err != nil {
		return err
	}
	if one, ok := singular[what]; ok && n == 1 {
		what = one
	}
	if next != nil && *next != "" {
		_, err := fmt.Fprintf(t.out, "%d %s shown; next page: --cursor %s\n", n, what, *next)
		return err
	}
	_, err := fmt.Fprintf(t.out, "%d %s\n", n, what)
	return err
}

// printable keeps a cell on one line: control characters (a tab would
// break the columns) become spaces or U+FFFD.
func printable(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\t' || r == '\n' || r == '\r':
			return ' '
		case unicode.IsControl(r):
			return '\uFFFD'
		}
		return r
	}, s)
}

// clip shortens s to n runes, marking the cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// shortTime shows an RFC 3339 time to the second, in UTC as given.
func shortTime(s string) string {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return s
	}
	return t.UTC().Format("2006-01-02 15:04:05Z")
}

func optTime(s *string) string {
	if s == nil {
		return "-"
	}
	return shortTime(*s)
}

func optInt(n *int) string {
	if n == nil {
		return "-"
	}
	return strconv.Itoa(*n)
}

func optStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
