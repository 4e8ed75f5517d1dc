// Package cfapi is a small typed client for the Cloudflare v4 API calls the operator
// makes: IAM OAuth clients and the OAuth scope catalogue. It imports nothing from
// Kubernetes, never logs, never retries and never sleeps: callers decide what to do
// with the typed *APIError every failure returns.
package cfapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

// DefaultBaseURL is the Cloudflare v4 API.
const DefaultBaseURL = "https://api.cloudflare.com/client/v4"

// Version is reported in the default User-Agent; set at build time with -ldflags.
var Version = "dev"

const (
	defaultTimeout = 30 * time.Second
	// maxResponseBytes bounds every response body read. The largest answer is the
	// account's client List, one page of about 560 bytes per client: 32 MiB holds
	// some 55,000 clients (10,000 are 5.5 MiB).
	maxResponseBytes = 32 << 20
)

// Client calls the Cloudflare API with one set of credentials. It is safe for
// concurrent use.
type Client struct {
	creds     Credentials
	baseURL   string
	http      *http.Client
	userAgent string
	observer  func(RequestInfo)

	mu        sync.Mutex
	rateLimit *RateLimit
}

// Option configures a Client.
type Option func(*Client)

// WithBaseURL replaces DefaultBaseURL, e.g. with an emulator's
// "http://127.0.0.1:8787/client/v4". New rejects a URL that is not absolute http(s) or
// carries a query, fragment or user info.
func WithBaseURL(u string) Option { return func(c *Client) { c.baseURL = u } }

// WithHTTPClient supplies the http.Client (and so the timeout and transport) to use.
// Without it the Client builds its own with a 30 s timeout; it never uses
// http.DefaultClient.
func WithHTTPClient(h *http.Client) Option {
	return func(c *Client) {
		if h != nil {
			c.http = h
		}
	}
}

// WithUserAgent replaces the default "cloudflare-oauth-operator/<Version>".
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// WithObserver registers fn to be called synchronously after every request that
// reached the transport, e.g. to export metrics. fn must be fast and must not retain
// the RequestInfo's error for logging credentials (it never contains any).
func WithObserver(fn func(RequestInfo)) Option { return func(c *Client) { c.observer = fn } }

// RequestInfo describes one finished request.
type RequestInfo struct {
	// Operation is one of "list", "get", "create", "update", "delete",
	// "rotate_secret", "delete_rotated_secret", "list_scopes".
	Operation string
	Method    string
	// StatusCode is 0 when no response arrived.
	StatusCode int
	Duration   time.Duration
	// RateLimit is nil when the response had no rate-limit headers.
	RateLimit *RateLimit
	// Err is what the method returned (nil on success).
	Err error
}

// New validates creds and the options and returns a Client. It makes no request.
func New(creds Credentials, opts ...Option) (*Client, error) {
	if err := creds.Validate(); err != nil {
		return nil, err
	}
	c := &Client{
		creds:     creds,
		baseURL:   DefaultBaseURL,
		userAgent: "cloudflare-oauth-operator/" + Version,
	}
	for _, o := range opts {
		o(c)
	}
	if c.http == nil {
		c.http = &http.Client{Timeout: defaultTimeout}
	}
	base, err := normaliseBaseURL(c.baseURL)
	if err != nil {
		return nil, err
	}
	c.baseURL = base
	if c.userAgent == "" || strings.ContainsFunc(c.userAgent, func(r rune) bool { return r < ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("%w: the user agent is empty or has control characters", ErrInvalidArgument)
	}
	return c, nil
}

func normaliseBaseURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return "", fmt.Errorf("%w: base URL: %w", ErrInvalidArgument, err)
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		return "", fmt.Errorf("%w: base URL %q is not an absolute http(s) URL", ErrInvalidArgument, u.Redacted())
	case u.User != nil, u.RawQuery != "", u.Fragment != "":
		return "", fmt.Errorf("%w: base URL %q must not have user info, a query or a fragment", ErrInvalidArgument, u.Redacted())
	}
	return strings.TrimRight(u.String(), "/"), nil
}

// String keeps credentials out of %v and %+v.
func (c *Client) String() string { return "cfapi.Client{" + c.baseURL + "}" }

// GoString keeps credentials out of %#v.
func (c *Client) GoString() string { return c.String() }

// LastRateLimit returns the rate-limit state from the most recent response that carried
// the headers.
func (c *Client) LastRateLimit() (RateLimit, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rateLimit == nil {
		return RateLimit{}, false
	}
	return *c.rateLimit, true
}

// call is one API request: method and escaped path relative to the base URL, an
// optional JSON body, and decode, which receives the envelope's result when the
// response is a success. decode errors mean the result was unusable.
type call struct {
	op     string
	method string
	path   string
	body   any
	decode func(json.RawMessage) error
}

// do runs a call and reports it to the observer. It is the only place that touches
// the network.
func (c *Client) do(ctx context.Context, cl call) error {
	start := time.Now()
	info := RequestInfo{Operation: cl.op, Method: cl.method}
	err := c.send(ctx, cl, &info)
	if c.observer != nil {
		info.Duration = time.Since(start)
		info.Err = err
		c.observer(info)
	}
	return err
}

func (c *Client) send(ctx context.Context, cl call, info *RequestInfo) error {
	fail := func(status int, cause error) *APIError {
		return &APIError{StatusCode: status, Method: cl.method, Path: cl.path, Err: cause}
	}
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fail(0, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, c.baseURL+cl.path, body)
	if err != nil {
		return fail(0, err)
	}
	c.setHeaders(req, cl.body != nil)

	resp, err := c.http.Do(req)
	if err != nil {
		// url.Error repeats the method and full URL; keep only the cause.
		if ue, ok := errors.AsType[*url.Error](err); ok {
			err = ue.Err
		}
		return fail(0, err)
	}
	defer func() { _ = resp.Body.Close() }()
	info.StatusCode = resp.StatusCode

	if rl := parseRateLimit(resp.Header); rl != nil {
		info.RateLimit = rl
		c.mu.Lock()
		c.rateLimit = rl
		c.mu.Unlock()
	}

	data, readErr := readBody(resp.Body)
	var apiErr *APIError
	var result json.RawMessage
	if readErr != nil {
		apiErr = fail(resp.StatusCode, readErr)
	} else {
		result, apiErr = decodeEnvelope(resp.StatusCode, data)
	}
	if apiErr == nil && cl.decode != nil {
		if err := cl.decode(result); err != nil {
			apiErr = fail(resp.StatusCode, fmt.Errorf("%w: %w", ErrMalformedResponse, err))
		}
	}
	if apiErr == nil {
		return nil
	}
	apiErr.Method, apiErr.Path = cl.method, cl.path
	apiErr.RayID = resp.Header.Get("Cf-Ray")
	apiErr.RetryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
	if apiErr.RetryAfter == 0 && resp.StatusCode == http.StatusTooManyRequests && info.RateLimit != nil {
		apiErr.RetryAfter = info.RateLimit.Reset
	}
	return apiErr
}

func (c *Client) setHeaders(req *http.Request, hasBody bool) {
	if c.creds.APIToken != "" {
		req.Header.Set("Authorization", "Bearer "+c.creds.APIToken)
	} else {
		req.Header.Set("X-Auth-Email", c.creds.Email)
		req.Header.Set("X-Auth-Key", c.creds.APIKey)
	}
	if hasBody {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", c.userAgent)
}

// readBody reads at most maxResponseBytes; a longer body is an error, never silently
// truncated JSON.
func readBody(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxResponseBytes+1))
	if err != nil {
		return nil, fmt.Errorf("reading response body: %w", err)
	}
	if len(data) > maxResponseBytes {
		return nil, ErrResponseTooLarge
	}
	return data, nil
}

// envelope is Cloudflare's v4 response wrapper. messages and result_info are not
// needed: List returns everything in one page.
type envelope struct {
	Success *bool           `json:"success"`
	Errors  []ErrorDetail   `json:"errors"`
	Result  json.RawMessage `json:"result"`
}

// decodeEnvelope turns a status and body into the result of a successful call, or an
// APIError holding the status, Cloudflare's errors and, when the body itself is the
// problem, a wrapped ErrMalformedResponse or ErrUnsuccessful. Method, path and headers
// are filled in by the caller.
func decodeEnvelope(status int, data []byte) (json.RawMessage, *APIError) {
	var env envelope
	if err := json.Unmarshal(data, &env); err != nil {
		return nil, &APIError{StatusCode: status, Err: fmt.Errorf("%w: %w", ErrMalformedResponse, err)}
	}
	ok2xx := status >= 200 && status < 300
	switch {
	case ok2xx && env.Success != nil && *env.Success:
		return env.Result, nil
	case ok2xx:
		return nil, &APIError{StatusCode: status, Errors: env.Errors, Err: ErrUnsuccessful}
	case env.Success == nil:
		// Valid JSON but not an envelope, e.g. {"message":"Bad gateway"}.
		return nil, &APIError{StatusCode: status, Errors: env.Errors, Err: ErrMalformedResponse}
	}
	return nil, &APIError{StatusCode: status, Errors: env.Errors}
}

// decodeInto returns a decode function for call that unmarshals a non-null result into
// out and then runs check, which reports a result missing what the caller relies on.
func decodeInto[T any](out *T, check func(*T) error) func(json.RawMessage) error {
	return func(raw json.RawMessage) error {
		if len(raw) == 0 || string(raw) == "null" {
			return errors.New("result is missing")
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return err
		}
		if check != nil {
			return check(out)
		}
		return nil
	}
}
