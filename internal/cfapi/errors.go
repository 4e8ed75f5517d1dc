package cfapi

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Errors wrapped in APIError.Err when the HTTP exchange worked but its body did not.
var (
	// ErrMalformedResponse: the body is not a Cloudflare v4 envelope (HTML from a
	// proxy, truncated JSON, an empty body) or lacks a field the operation needs.
	ErrMalformedResponse = errors.New("response is not a valid Cloudflare API envelope")
	// ErrResponseTooLarge: the body exceeded the client's size limit.
	ErrResponseTooLarge = errors.New("response body exceeds the size limit")
	// ErrUnsuccessful: a 2xx response whose envelope says success is not true.
	ErrUnsuccessful = errors.New("response has a 2xx status but success is not true")
	// ErrInvalidArgument: a method was called with an empty account or client id.
	// Returned on its own (not inside an APIError): no request was made.
	ErrInvalidArgument = errors.New("cfapi: invalid argument")
)

// APIError is the error for every failed request: transport failures (StatusCode 0),
// non-2xx statuses, and 2xx responses that are unsuccessful or unreadable. It carries
// the method and path but never headers or query strings, so it cannot hold
// credentials.
type APIError struct {
	// StatusCode is the HTTP status, or 0 when no response arrived.
	StatusCode int
	// Errors are Cloudflare's errors[] from the envelope; possibly empty.
	Errors []ErrorDetail
	// RayID is the CF-Ray response header, for Cloudflare support.
	RayID string
	// Method and Path (relative to the base URL, escaped) identify the request.
	Method string
	Path   string
	// RetryAfter is the Retry-After header (or, for a 429 without it, the reset time
	// of the Ratelimit header); 0 if neither was sent.
	RetryAfter time.Duration
	// Err is the transport, read or decode failure, if any.
	Err error
}

// ErrorDetail is one entry of the envelope's errors[] or messages[].
type ErrorDetail struct {
	Code             int          `json:"code"`
	Message          string       `json:"message"`
	DocumentationURL string       `json:"documentation_url,omitempty"`
	Source           *ErrorSource `json:"source,omitempty"`
}

// ErrorSource points at the request field an error is about, as a JSON pointer such
// as "/scopes/1".
type ErrorSource struct {
	Pointer string `json:"pointer,omitempty"`
}

func (e *APIError) Error() string {
	var b strings.Builder
	b.WriteString("cloudflare API ")
	b.WriteString(e.Method)
	b.WriteString(" ")
	b.WriteString(e.Path)
	if e.StatusCode == 0 {
		b.WriteString(": request failed")
	} else {
		fmt.Fprintf(&b, ": HTTP %d", e.StatusCode)
		if text := http.StatusText(e.StatusCode); text != "" {
			b.WriteString(" " + text)
		}
	}
	for i, d := range e.Errors {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(d.String())
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	if e.RayID != "" {
		b.WriteString(" (cf-ray " + e.RayID + ")")
	}
	return b.String()
}

func (e *APIError) Unwrap() error { return e.Err }

// String renders "[code] message (at /pointer)".
func (d ErrorDetail) String() string {
	s := "[" + strconv.Itoa(d.Code) + "] " + d.Message
	if d.Source != nil && d.Source.Pointer != "" {
		s += " (at " + d.Source.Pointer + ")"
	}
	return s
}

// HasCode reports whether Cloudflare returned the given error code.
func (e *APIError) HasCode(code int) bool {
	for _, d := range e.Errors {
		if d.Code == code {
			return true
		}
	}
	return false
}

func asAPIError(err error) (*APIError, bool) {
	var ae *APIError
	ok := errors.As(err, &ae)
	return ae, ok
}

func hasStatus(err error, statuses ...int) bool {
	ae, ok := asAPIError(err)
	if !ok {
		return false
	}
	for _, s := range statuses {
		if ae.StatusCode == s {
			return true
		}
	}
	return false
}

// IsNotFound reports a 404: the client (or account) does not exist.
func IsNotFound(err error) bool { return hasStatus(err, http.StatusNotFound) }

// IsRateLimited reports a 429 and how long to wait before the next call (0 when
// Cloudflare said nothing). Rate limiting is not IsTransient: callers handle it first.
func IsRateLimited(err error) (time.Duration, bool) {
	ae, ok := asAPIError(err)
	if !ok || ae.StatusCode != http.StatusTooManyRequests {
		return 0, false
	}
	return ae.RetryAfter, true
}

// IsUnauthorized reports a 401: missing, invalid or revoked credentials.
func IsUnauthorized(err error) bool { return hasStatus(err, http.StatusUnauthorized) }

// IsForbidden reports a 403: the credentials lack the permission or account access.
func IsForbidden(err error) bool { return hasStatus(err, http.StatusForbidden) }

// IsValidation reports a 400 or 422: Cloudflare refused the request as invalid;
// repeating it unchanged will fail again.
func IsValidation(err error) bool {
	return hasStatus(err, http.StatusBadRequest, http.StatusUnprocessableEntity)
}

// IsRecordExists reports a DNS record Create refused because the record is already
// there: 81058 (an identical record) or 81057 (a record that already exists; the
// emulator answers it for a name a CNAME keeps to itself). Cloudflare answers both with
// a 400, so check this before IsValidation.
func IsRecordExists(err error) bool {
	ae, ok := asAPIError(err)
	return ok && (ae.HasCode(CodeRecordAlreadyExists) || ae.HasCode(CodeIdenticalRecordExists))
}

// IsConflict reports a 409, e.g. rotating a secret while a rotated one still exists.
func IsConflict(err error) bool { return hasStatus(err, http.StatusConflict) }

// IsTransient reports failures worth retrying with backoff: no response (StatusCode 0,
// including timeouts), 408, 409, any 5xx, and 2xx/3xx responses whose body was
// unsuccessful, unreadable or malformed. A 4xx with an unreadable body is classified
// by its status alone. 429 is deliberately excluded (see IsRateLimited).
func IsTransient(err error) bool {
	ae, ok := asAPIError(err)
	if !ok {
		return false
	}
	switch s := ae.StatusCode; {
	case s == 0, s == http.StatusRequestTimeout, s == http.StatusConflict, s >= 500:
		return true
	case s < 400:
		return ae.Err != nil
	}
	return false
}
