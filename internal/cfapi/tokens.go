package cfapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"
)

// Statuses of an API token (TokenVerification.Status), as Cloudflare's verify
// endpoints report them.
const (
	TokenActive   = "active"
	TokenDisabled = "disabled"
	TokenExpired  = "expired"
)

// Error codes of Cloudflare's token verification, from live answers quoted in public
// trackers (Cloudflare documents none of them): 1000 "Invalid API Token" for a token it
// does not know (401), and 6003 "Invalid request headers" for an Authorization header
// it cannot read (400, with 6111 "Invalid format for Authorization header" in its
// error_chain).
const (
	CodeInvalidAPIToken       = 1000
	CodeInvalidRequestHeaders = 6003
)

// ErrNotAToken is returned (not inside an APIError) by VerifyUserToken and
// VerifyAccountToken when the client authenticates with an e-mail and Global API key:
// the verify endpoints are about API tokens only. No request is made.
var ErrNotAToken = errors.New("cfapi: token verification needs an API token, not an e-mail and Global API key")

// TokenVerification is what Cloudflare's verify endpoints say about the API token the
// request carried. It never holds the token itself.
type TokenVerification struct {
	// ID is the token's identifier tag (32 hex characters), safe to show.
	ID string `json:"id"`
	// Status is TokenActive, TokenDisabled or TokenExpired.
	Status string `json:"status"`
	// ExpiresOn is when the token stops working; nil when it never expires.
	ExpiresOn *time.Time `json:"expires_on,omitempty"`
	// NotBefore is when the token starts working; nil when it works from creation.
	// A token can be TokenActive and still refused until then.
	NotBefore *time.Time `json:"not_before,omitempty"`
}

func requireVerification(v *TokenVerification) error {
	switch {
	case v.ID == "":
		return errors.New("result has no id")
	case v.Status == "":
		return errors.New("result has no status")
	}
	return nil
}

// VerifyUserToken asks GET /user/tokens/verify about the client's API token, which
// must be user-owned. An account-owned token gets IsInvalidToken there: verify it with
// VerifyAccountToken.
func (c *Client) VerifyUserToken(ctx context.Context) (TokenVerification, error) {
	return c.verifyToken(ctx, "verify_user_token", "/user/tokens/verify")
}

// VerifyAccountToken asks GET /accounts/{account_id}/tokens/verify about the client's
// API token, which must be owned by that account. A user-owned token, or one owned by
// another account, gets IsInvalidToken there: verify it with VerifyUserToken.
func (c *Client) VerifyAccountToken(ctx context.Context, accountID string) (TokenVerification, error) {
	if accountID == "" {
		return TokenVerification{}, fmt.Errorf("%w: empty account id", ErrInvalidArgument)
	}
	return c.verifyToken(ctx, "verify_account_token", "/accounts/"+url.PathEscape(accountID)+"/tokens/verify")
}

func (c *Client) verifyToken(ctx context.Context, op, path string) (TokenVerification, error) {
	if c.creds.APIToken == "" {
		return TokenVerification{}, ErrNotAToken
	}
	var out TokenVerification
	if err := c.do(ctx, call{op: op, method: http.MethodGet, path: path, decode: decodeInto(&out, requireVerification)}); err != nil {
		return TokenVerification{}, err
	}
	return out, nil
}

// IsInvalidToken reports that Cloudflare does not know the credential: code 1000
// "Invalid API Token" (with any 4xx status, normally 401) or a 400 with code 6003
// "Invalid request headers" (a value that cannot be a token, e.g. a Global API key
// sent as a bearer token). A verify endpoint of the wrong owner answers the same for a
// valid token: an account-owned token on /user/tokens/verify, a user-owned one on
// /accounts/{id}/tokens/verify. Plain 401s of other routes (10000 "Authentication
// error", also sent for missing permissions) are IsUnauthorized, not this.
func IsInvalidToken(err error) bool {
	ae, ok := asAPIError(err)
	if !ok || ae.StatusCode < 400 || ae.StatusCode >= 500 {
		return false
	}
	return ae.HasCode(CodeInvalidAPIToken) || ae.StatusCode == http.StatusBadRequest && ae.HasCode(CodeInvalidRequestHeaders)
}
