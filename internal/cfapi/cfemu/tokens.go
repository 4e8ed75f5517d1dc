package cfemu

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Token verification: GET /user/tokens/verify and GET
// /accounts/{account_id}/tokens/verify answer what Options.TokenInfo (SetTokenInfo,
// PUT /_emulator/token-info) says about the bearer token. docs/emulator.md ("Token
// verification") lists the answers and which of them are the emulator's choices.

const (
	tmplUserVerify = "/user/tokens/verify"
	tmplAcctVerify = "/accounts/{account_id}/tokens/verify"
)

// codeTokenValid is the messages[] entry of a verify answer for a usable token:
// {"code":10000,"message":"This API Token is valid and active"} in live answers.
const codeTokenValid = 10000

// TokenInfo is what Cloudflare knows about an API token besides its permissions
// (Options.TokenInfo, SetTokenInfo, PUT /_emulator/token-info). The zero value is an
// active, user-owned token that never expires.
type TokenInfo struct {
	// ID is the token's identifier tag the verify endpoints answer, 32 lowercase hex;
	// "" derives a stable one from the token (never the token itself: TokenID).
	ID string `json:"id,omitempty"`
	// Status is cfapi.TokenActive (""), cfapi.TokenDisabled or cfapi.TokenExpired. An
	// active token turns expired on its own at ExpiresOn (emulator clock).
	Status string `json:"status,omitempty"`
	// ExpiresOn: from then on (inclusive) the token is expired; nil never expires.
	ExpiresOn *time.Time `json:"expires_on,omitempty"`
	// NotBefore: before then the token is refused by every route but verify, which
	// answers it "active" with its not_before; nil is usable at once.
	NotBefore *time.Time `json:"not_before,omitempty"`
	// AccountID makes the token account-owned (32 lowercase hex): it verifies at
	// /accounts/{AccountID}/tokens/verify only and may use that account only. "" is a
	// user-owned token, which verifies at /user/tokens/verify only.
	AccountID string `json:"account_id,omitempty"`
}

// Validate reports what SetTokenInfo, New and PUT /_emulator/token-info refuse in i on
// its own: an unknown status, an id or account id that is not 32 lowercase hex, and a
// NotBefore that is not before ExpiresOn.
func (i TokenInfo) Validate() error {
	switch {
	case !slices.Contains([]string{"", cfapi.TokenActive, cfapi.TokenDisabled, cfapi.TokenExpired}, i.Status):
		return fmt.Errorf("token status %q is not %q, %q or %q", i.Status, cfapi.TokenActive, cfapi.TokenDisabled, cfapi.TokenExpired)
	case i.ID != "" && !accountIDPattern.MatchString(i.ID):
		return errors.New("token id must be 32 lowercase hex characters")
	case i.AccountID != "" && !accountIDPattern.MatchString(i.AccountID):
		return fmt.Errorf("token account id %q is not 32 lowercase hex characters", i.AccountID)
	case i.NotBefore != nil && i.ExpiresOn != nil && !i.NotBefore.Before(*i.ExpiresOn):
		return errors.New("token not_before must be before expires_on")
	}
	return nil
}

// statusAt is the status verify reports at now: disabled wins, then expired (set, or
// ExpiresOn reached).
func (i TokenInfo) statusAt(now time.Time) string {
	switch {
	case i.Status == cfapi.TokenDisabled:
		return cfapi.TokenDisabled
	case i.Status == cfapi.TokenExpired, i.ExpiresOn != nil && !now.Before(*i.ExpiresOn):
		return cfapi.TokenExpired
	}
	return cfapi.TokenActive
}

// usableAt reports whether the token is accepted at now: active and past NotBefore.
func (i TokenInfo) usableAt(now time.Time) bool {
	return i.statusAt(now) == cfapi.TokenActive && (i.NotBefore == nil || !now.Before(*i.NotBefore))
}

// normalised is i with its own copies of the times, in UTC.
func (i TokenInfo) normalised() TokenInfo {
	utc := func(t *time.Time) *time.Time {
		if t == nil {
			return nil
		}
		return ptr(t.UTC())
	}
	i.ExpiresOn, i.NotBefore = utc(i.ExpiresOn), utc(i.NotBefore)
	return i
}

// tokenState is every token's TokenInfo.
type tokenState struct {
	info map[string]TokenInfo
}

// TokenID returns the id the verify endpoints answer for token: TokenInfo.ID, else
// 32 hex characters of a hash of the token.
func (s *Server) TokenID(token string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return tokenID(token, s.tokens.info[token])
}

func tokenID(token string, info TokenInfo) string {
	if info.ID != "" {
		return info.ID
	}
	sum := sha256.Sum256([]byte("cfemu token id\x00" + token))
	return hex.EncodeToString(sum[:16])
}

// checkTokenInfo reports what is wrong with token's info, never naming the token.
func (s *Server) checkTokenInfo(token string, info TokenInfo) error {
	if token == "" {
		return errors.New("token info: the token is empty")
	}
	if err := info.Validate(); err != nil {
		return fmt.Errorf("token info: %w", err)
	}
	if info.ID != "" && info.ID == token {
		return errors.New("token info: the id must not be the token")
	}
	if list := s.opts.Tokens[token]; info.AccountID != "" && len(list) > 0 && !slices.Contains(list, info.AccountID) {
		return errors.New("token info: an account-owned token's account must be among the accounts Options.Tokens gives it")
	}
	return nil
}

// initTokens checks Options.TokenInfo.
func (s *Server) initTokens() error {
	for token, info := range s.opts.TokenInfo {
		if err := s.checkTokenInfo(token, info); err != nil {
			return err
		}
	}
	return nil
}

// resetTokensLocked returns every token's info to Options.TokenInfo.
func (s *Server) resetTokensLocked() {
	s.tokens.info = make(map[string]TokenInfo, len(s.opts.TokenInfo))
	for token, info := range s.opts.TokenInfo {
		s.tokens.info[token] = info.normalised()
	}
}

// SetTokenInfo replaces what the emulator knows about token (status, expiry, owner,
// id); a token unknown until now becomes accepted by the verify endpoints (every other
// route answers it 403). Reset returns to Options.TokenInfo. It panics on an invalid
// info (TokenInfo.Validate), an id equal to the token, or an account outside the ones
// Options.Tokens restricts the token to.
func (s *Server) SetTokenInfo(token string, info TokenInfo) {
	if err := s.checkTokenInfo(token, info); err != nil {
		panic("cfemu.SetTokenInfo: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	s.tokens.info[token] = info.normalised()
}

// ClearTokenInfo makes token an active, user-owned token again; a token that has no
// other permission is no longer accepted.
func (s *Server) ClearTokenInfo(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	delete(s.tokens.info, token)
}

func isTokenTemplate(tmpl string) bool { return tmpl == tmplUserVerify || tmpl == tmplAcctVerify }

// matchTokenPath maps an escaped path below BasePath to a verify template and its
// account id.
func matchTokenPath(p string) (tmpl, accountID string) {
	if p == tmplUserVerify {
		return tmplUserVerify, ""
	}
	raw := strings.Split(strings.TrimPrefix(p, "/"), "/")
	if len(raw) != 4 || raw[0] != "accounts" || raw[2] != "tokens" || raw[3] != "verify" {
		return "", ""
	}
	id, err := url.PathUnescape(raw[1])
	if err != nil || id == "" {
		return "", ""
	}
	return tmplAcctVerify, id
}

// gateVerifyLocked authenticates a verify request the way the verify endpoints do
// (400 1001 without an Authorization header, 400 6003 for one that is not "Bearer
// <token>", 401 1000 for an unknown token), rate-limits it, checks the account id and
// the token's owner and, under Strict.InactiveTokenRefused, its status; then runs
// handle.
func (s *Server) gateVerifyLocked(q *request, handle func(*request) response) response {
	auth := q.header.Get("Authorization")
	scheme, token, _ := strings.Cut(auth, " ")
	switch {
	case auth == "":
		return s.withRateHeaders(s.errorResponse(apiError(CodeMissingAuthHeader, `Missing "Authorization" header`, "")), nil)
	case !strings.EqualFold(scheme, "Bearer") || token == "":
		return s.withRateHeaders(s.errorResponse(apiError(CodeInvalidHeaders, "Invalid request headers", "")), nil)
	}
	cred, ok := s.authenticate(q.header)
	if !ok {
		return s.withRateHeaders(s.errorResponse(apiError(CodeInvalidAPIToken, "Invalid API Token", "")), nil)
	}
	if resp, limited := s.rateLimitedLocked(cred); limited {
		return resp
	}
	if q.tmpl == tmplAcctVerify && !accountIDPattern.MatchString(q.accountID) {
		resp := s.errorResponse(apiError(CodeNoRoute, "Could not route to "+BasePath+q.path+", perhaps your object identifier is invalid?", ""))
		resp.status = http.StatusBadRequest
		return s.withRateHeaders(resp, cred)
	}
	info := s.tokens.info[token]
	if owner := info.AccountID; q.tmpl == tmplUserVerify && owner != "" || q.tmpl == tmplAcctVerify && owner != q.accountID {
		return s.withRateHeaders(s.ownerMismatchLocked(), cred)
	}
	if s.strict.st.InactiveTokenRefused && !info.usableAt(s.now()) {
		return s.withRateHeaders(s.errorResponse(apiError(CodeInvalidAPIToken, "Invalid API Token", "")), cred)
	}
	return s.withRateHeaders(handle(q), cred)
}

// ownerMismatchLocked is the answer of a verify endpoint to a token of another owner
// (Strict.TokenOwnerMismatch).
func (s *Server) ownerMismatchLocked() response {
	switch s.strict.st.TokenOwnerMismatch {
	case TokenMismatchForbidden:
		return s.errorResponse(apiError(CodeForbidden, "Unauthorized to access requested resource", ""))
	case TokenMismatchNotFound:
		return s.errorResponse(apiError(CodeNoRoute, "No route for the URI", ""))
	}
	return s.errorResponse(apiError(CodeInvalidAPIToken, "Invalid API Token", ""))
}

// verifyTokenLocked answers a verify request that passed gateVerifyLocked: the token's
// id, status and times, with "This API Token is valid and active" in messages[] when
// the token is usable.
func (s *Server) verifyTokenLocked(q *request) response {
	_, token, _ := strings.Cut(q.header.Get("Authorization"), " ")
	info := s.tokens.info[token]
	now := s.now()
	v := cfapi.TokenVerification{ID: tokenID(token, info), Status: info.statusAt(now),
		ExpiresOn: clonePtr(info.ExpiresOn), NotBefore: clonePtr(info.NotBefore)}
	messages := []cfapi.ErrorDetail{}
	if info.usableAt(now) {
		messages = append(messages, cfapi.ErrorDetail{Code: codeTokenValid, Message: "This API Token is valid and active"})
	}
	return jsonResponse(http.StatusOK, envelope{Success: true, Errors: []cfapi.ErrorDetail{}, Messages: messages, Result: v})
}

// refuseInactiveLocked returns the answer every route but verify gives a token that is
// disabled, expired or not yet valid: 401 10000, or 403 9109 "Invalid access token"
// under Strict.InactiveTokenRefused. nil lets the request through.
func (s *Server) refuseInactiveLocked(cred *credential) *response {
	if cred.token == "" {
		return nil
	}
	if info, ok := s.tokens.info[cred.token]; !ok || info.usableAt(s.now()) {
		return nil
	}
	var resp response
	if s.strict.st.InactiveTokenRefused {
		resp = s.errorResponse(apiError(CodeForbidden, "Invalid access token", ""))
	} else {
		resp = s.errorResponse(apiError(CodeAuthentication, "Authentication error", ""))
	}
	return &resp
}

// serveControlTokens serves /_emulator/token-info; it reports whether p was it.
// PUT {"token", "info"} sets a token's info and answers {"info"} with the id filled
// in; DELETE {"token"} clears it. The answer never repeats the token.
func (s *Server) serveControlTokens(c control, p string) bool {
	if p != "/token-info" {
		return false
	}
	if c.r.Method != http.MethodPut && c.r.Method != http.MethodDelete {
		c.fail(http.StatusMethodNotAllowed, "use PUT or DELETE")
		return true
	}
	var in struct {
		Token string    `json:"token"`
		Info  TokenInfo `json:"info"`
	}
	if !c.decode(&in) {
		return true
	}
	if in.Token == "" {
		c.fail(http.StatusBadRequest, "token is required")
		return true
	}
	if c.r.Method == http.MethodDelete {
		s.ClearTokenInfo(in.Token)
		c.reply(http.StatusOK, map[string]bool{"cleared": true})
		return true
	}
	if err := s.checkTokenInfo(in.Token, in.Info); err != nil {
		c.fail(http.StatusBadRequest, "%v", err)
		return true
	}
	s.SetTokenInfo(in.Token, in.Info)
	out := in.Info.normalised()
	out.ID = tokenID(in.Token, in.Info)
	c.reply(http.StatusOK, map[string]TokenInfo{"info": out})
	return true
}
