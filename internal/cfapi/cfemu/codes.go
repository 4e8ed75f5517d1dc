package cfemu

import (
	"net/http"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

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

	// Zones and DNS records. 81057 and 81058 are Cloudflare's own (cfapi.IsRecordExists);
	// the 121xx block is the emulator's, like the 12xxx one above.
	CodeRecordExists      = cfapi.CodeRecordAlreadyExists   // 400 81057: a CNAME and another record at one name
	CodeIdenticalRecord   = cfapi.CodeIdenticalRecordExists // 400 81058: same type, name and content (and MX priority)
	CodeZoneNotFound      = 12101                           // 404 unknown zone id
	CodeRecordNotFound    = 12102                           // 404 unknown DNS record id in this zone
	CodeRecordType        = 12103                           // 400 a record type the emulator does not hold (A, AAAA, CNAME, MX, TXT only)
	CodeRecordTTL         = 12104                           // 400 ttl neither 1 nor within 60..86400 (30..86400 on enterprise zones)
	CodeRecordName        = 12105                           // 400 name empty, malformed, longer than 255 or outside the zone
	CodeRecordContent     = 12106                           // 400 content that does not fit the type, or TXT over 2,048 per record / 8,192 per name
	CodeRecordComment     = 12107                           // 400 comment longer than the zone allows (100 free, 500 paid)
	CodeRecordTags        = 12108                           // 400 a tag that is not name:value with name in [A-Za-z0-9_-]
	CodeInvalidQuery      = 12109                           // 400 page, per_page or match is not a valid value
	CodeUnsupportedFilter = 12110                           // 400 a list parameter Cloudflare has but the emulator does not emulate (search, order, tag...)
	CodeRecordPriority    = 12111                           // 400 MX priority absent or outside 0..65535
	CodeNotProxiable      = 12112                           // 400 proxied:true on a type that cannot be proxied (MX, TXT)

	// Token verification (tokens.go): Cloudflare's own codes, as live answers show them.
	CodeInvalidAPIToken   = cfapi.CodeInvalidAPIToken       // 401 1000 "Invalid API Token": a verify endpoint does not know the token (or, by default, it has another owner)
	CodeMissingAuthHeader = 1001                            // 400 a verify endpoint called without an Authorization header (the e-mail + key pair included)
	CodeInvalidHeaders    = cfapi.CodeInvalidRequestHeaders // 400 6003 "Invalid request headers": an Authorization header that is not "Bearer <token>"
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
	CodeRecordExists:         http.StatusBadRequest,
	CodeIdenticalRecord:      http.StatusBadRequest,
	CodeZoneNotFound:         http.StatusNotFound,
	CodeRecordNotFound:       http.StatusNotFound,
	CodeRecordType:           http.StatusBadRequest,
	CodeRecordTTL:            http.StatusBadRequest,
	CodeRecordName:           http.StatusBadRequest,
	CodeRecordContent:        http.StatusBadRequest,
	CodeRecordComment:        http.StatusBadRequest,
	CodeRecordTags:           http.StatusBadRequest,
	CodeInvalidQuery:         http.StatusBadRequest,
	CodeUnsupportedFilter:    http.StatusBadRequest,
	CodeRecordPriority:       http.StatusBadRequest,
	CodeNotProxiable:         http.StatusBadRequest,
	CodeInvalidAPIToken:      http.StatusUnauthorized,
	CodeMissingAuthHeader:    http.StatusBadRequest,
	CodeInvalidHeaders:       http.StatusBadRequest,
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
