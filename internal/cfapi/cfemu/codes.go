package cfemu

import "net/http"

// Error codes the emulator puts in errors[].code. Cloudflare documents none of the
// OAuth-client failure codes (see docs/emulator.md); the 7xxx, 9109, 10000 and 1015
// values are Cloudflare's platform-wide ones, the 12xxx block is the emulator's own.
// Clients should branch on the HTTP status first and on these codes only in tests.
const (
	CodeNoRoute          = 7003  // 404 unknown route; 400 malformed account id ("could not route")
	CodeMethodNotAllowed = 7001  // 405 known path, wrong method
	CodeAuthentication   = 10000 // 401 missing or invalid credentials
	CodeForbidden        = 9109  // 403 credentials valid but not allowed: another account, or a write with a read-only token
	CodeRateLimited      = 1015  // 429 rate limited (retry-after says how long)

	CodeInvalidBody          = 12001 // 400 body is not one JSON object, or a field has the wrong JSON type
	CodeUnknownField         = 12002 // 400 unknown or read-only field in the body
	CodeMissingField         = 12003 // 400 a required Create field is absent or empty
	CodeInvalidValue         = 12004 // 400 a value outside its enum, or an empty list that may not be
	CodeInvalidURI           = 12005 // 400 a URI or origin that fails the URI rules
	CodeAuthCodeRequired     = 12006 // 400 grant_types lacks authorization_code
	CodeColonScope           = 12007 // 400 a colon-delimited scope such as account:read
	CodeUnknownScope         = 12008 // 400 a dot-delimited scope not in the catalogue
	CodeInvalidScope         = 12009 // 400 a scope that is neither a catalogue id nor an identity word
	CodeInvalidOptional      = 12010 // 400 optional_scopes not within scopes, or a protocol scope
	CodeVisibilityOnCreate   = 12011 // 400 visibility sent on Create
	CodeVisibilityValue      = 12012 // 400 visibility other than "public" (demotion is unsupported)
	CodePromotionRefused     = 12013 // 400 a promotion precondition is missing (one error per gap)
	CodeClientURILocked      = 12014 // 400 changing or clearing the client_uri host after verification
	CodeAuthMethodChange     = 12015 // 400 switching token_endpoint_auth_method between none and a secret method
	CodeSecretAlreadyRotated = 12016 // 409 rotate while has_rotated_secret is true (400 with Strict.RotateConflictAs400)
	CodeNoRotatedSecret      = 12017 // 400 delete-rotated with nothing to delete
	CodeNoSecret             = 12018 // 400 rotate or delete-rotated on a "none" (PKCE) client
	CodeClientNotFound       = 12019 // 404 unknown OAuth client id in this account
	CodeInternal             = 12020 // 500 injected fault
	CodeUnavailable          = 12021 // 503 injected fault
	CodeTimeout              = 12022 // 504 injected "timeout" fault, after its delay
)

// statusOf is the one table from error code to HTTP status. CodeNoRoute is 404 except
// for a malformed account id, which answers 400 like Cloudflare's "could not route".
var statusOf = map[int]int{
	CodeNoRoute:              http.StatusNotFound,
	CodeMethodNotAllowed:     http.StatusMethodNotAllowed,
	CodeAuthentication:       http.StatusUnauthorized,
	CodeForbidden:            http.StatusForbidden,
	CodeRateLimited:          http.StatusTooManyRequests,
	CodeInvalidBody:          http.StatusBadRequest,
	CodeUnknownField:         http.StatusBadRequest,
	CodeMissingField:         http.StatusBadRequest,
	CodeInvalidValue:         http.StatusBadRequest,
	CodeInvalidURI:           http.StatusBadRequest,
	CodeAuthCodeRequired:     http.StatusBadRequest,
	CodeColonScope:           http.StatusBadRequest,
	CodeUnknownScope:         http.StatusBadRequest,
	CodeInvalidScope:         http.StatusBadRequest,
	CodeInvalidOptional:      http.StatusBadRequest,
	CodeVisibilityOnCreate:   http.StatusBadRequest,
	CodeVisibilityValue:      http.StatusBadRequest,
	CodePromotionRefused:     http.StatusBadRequest,
	CodeClientURILocked:      http.StatusBadRequest,
	CodeAuthMethodChange:     http.StatusBadRequest,
	CodeSecretAlreadyRotated: http.StatusConflict,
	CodeNoRotatedSecret:      http.StatusBadRequest,
	CodeNoSecret:             http.StatusBadRequest,
	CodeClientNotFound:       http.StatusNotFound,
	CodeInternal:             http.StatusInternalServerError,
	CodeUnavailable:          http.StatusServiceUnavailable,
	CodeTimeout:              http.StatusGatewayTimeout,
}

// strictOverride is a status that replaces statusOf's while a Strict mode is on.
type strictOverride struct {
	status int
	on     func(Strict) bool
}

// strictStatusOf lists the codes whose status a Strict mode changes; statusOf stays the
// one table for everything else (and for these codes in the default emulator).
var strictStatusOf = map[int]strictOverride{
	CodeSecretAlreadyRotated: {http.StatusBadRequest, func(st Strict) bool { return st.RotateConflictAs400 }},
}

// StatusForCode returns the HTTP status the default emulator answers with for an error
// code, or 0 for a code it never uses.
func StatusForCode(code int) int { return statusOf[code] }

// StatusForCode returns the HTTP status for an error code with st's modes on: the
// default one unless a mode overrides it.
func (st Strict) StatusForCode(code int) int {
	if o, ok := strictStatusOf[code]; ok && o.on(st) {
		return o.status
	}
	return statusOf[code]
}
