package main

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const testTokenID = "ed17574386854bf78a67040be0a770b0"

func TestTokenInfoOptions(t *testing.T) {
	expires := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Date(2026, 12, 31, 23, 0, 0, 0, time.FixedZone("", 3600))
	defaults := func(o *options) *options {
		o.addr, o.verifyAfter, o.rateLimit, o.rateWindow = "127.0.0.1:8787", 10*time.Second, 1200, 5*time.Minute
		return o
	}
	tests := []parseCase{
		{"every attribute", []string{"--token", "T", "--token-info", "T=expired,expires=2027-01-01T00:00:00Z,not-before=2026-12-31T23:00:00+01:00,account=" +
			testAccount + ",id=" + testTokenID, "--token-info", "V=disabled"}, nil,
			defaults(&options{tokens: tokenFlag{"T": nil}, tokenInfo: tokenInfoFlag{
				"T": {Status: cfapi.TokenExpired, ExpiresOn: &expires, NotBefore: &start, AccountID: testAccount, ID: testTokenID},
				"V": {Status: cfapi.TokenDisabled},
			}}), ""},
		{"from the environment, with the owner mismatch", nil, map[string]string{"CF_EMULATOR_TOKENS": "T",
			"CF_EMULATOR_TOKEN_INFO": "T=active,account=" + testAccount + " U=expired", "CF_EMULATOR_TOKEN_OWNER_MISMATCH": "not_found"},
			defaults(&options{tokens: tokenFlag{"T": nil}, tokenInfo: tokenInfoFlag{
				"T": {Status: cfapi.TokenActive, AccountID: testAccount}, "U": {Status: cfapi.TokenExpired},
			}, strict: cfemu.Strict{TokenOwnerMismatch: cfemu.TokenMismatchNotFound}}), ""},
		{"flags replace the variable", []string{"--token", "T", "--token-info", "T=disabled"}, map[string]string{"CF_EMULATOR_TOKEN_INFO": "U=expired"},
			defaults(&options{tokens: tokenFlag{"T": nil}, tokenInfo: tokenInfoFlag{"T": {Status: cfapi.TokenDisabled}}}), ""},
		{"--token-owner-mismatch replaces --strict's", []string{"--token", "T", "--strict", "--token-owner-mismatch", "invalid"}, nil,
			defaults(&options{tokens: tokenFlag{"T": nil}, strict: func() cfemu.Strict {
				st := cfemu.Harsh(0)
				st.TokenOwnerMismatch = cfemu.TokenMismatchInvalid
				return st
			}()}), ""},
		{"--strict forbids owner mismatches", []string{"--token", "T", "--strict"}, nil,
			defaults(&options{tokens: tokenFlag{"T": nil}, strict: cfemu.Harsh(0)}), ""},
		{"no status", []string{"--token", "T", "--token-info", "T"}, nil, nil, "--token-info: want TOKEN=STATUS"},
		{"unknown status", []string{"--token", "T", "--token-info", "T=revoked"}, nil, nil, "STATUS active, disabled or expired"},
		{"empty status", []string{"--token", "T", "--token-info", "T=,account=" + testAccount}, nil, nil, "STATUS active"},
		{"bad time", []string{"--token", "T", "--token-info", "T=active,expires=tomorrow"}, nil, nil, "expires: \"tomorrow\" is not an RFC 3339"},
		{"unknown attribute", []string{"--token", "T", "--token-info", "T=active,owner=me"}, nil, nil, `unknown attribute "owner"`},
		{"attribute twice", []string{"--token", "T", "--token-info", "T=active,id=" + testTokenID + ",id=" + testTokenID}, nil, nil, "id is given twice"},
		{"bad account", []string{"--token", "T", "--token-info", "T=active,account=acme"}, nil, nil, "account id \"acme\""},
		{"bad id", []string{"--token", "T", "--token-info", "T=active,id=42"}, nil, nil, "token id must be 32"},
		{"start after expiry", []string{"--token", "T", "--token-info", "T=active,expires=2026-01-01T00:00:00Z,not-before=2027-01-01T00:00:00Z"}, nil, nil,
			"not_before must be before expires_on"},
		{"account outside --token's", []string{"--token", "T=99999999999999999999999999999999", "--token-info", "T=active,account=" + testAccount}, nil, nil,
			"restricted by --token to other accounts"},
		{"bad owner mismatch", []string{"--token", "T", "--token-owner-mismatch", "gone"}, nil, nil, "--token-owner-mismatch"},
		{"bad variable", []string{"--token", "T"}, map[string]string{"CF_EMULATOR_TOKEN_INFO": "T=paused"}, nil, "CF_EMULATOR_TOKEN_INFO"},
	}
	runParseCases(t, tests)
}

// TestTokenInfoNeverShowsTheToken: rejected --token-info values and help never show the
// token, whichever part of the value is wrong.
func TestTokenInfoNeverShowsTheToken(t *testing.T) {
	for _, args := range [][]string{
		{"--token", "T", "--token-info", "SECRET-TOKEN"},
		{"--token", "T", "--token-info", "SECRET TOKEN=active"},
		{"--token", "T", "--token-info", "SECRET-TOKEN=gone"},
		{"--token", "T", "--token-info", "SECRET-TOKEN=active,expires=never"},
		{"--token", "T", "--token-info", "SECRET-TOKEN=active,account=x"},
		{"--token", "SECRET-TOKEN=99999999999999999999999999999999", "--token-info", "SECRET-TOKEN=active,account=" + testAccount},
		{"--token", "T", "--token-info", "SECRET-TOKEN=active", "-h"},
	} {
		_, err := parseOptions(args, func(string) string { return "" })
		if err == nil || strings.Contains(err.Error(), "SECRET") {
			t.Errorf("parseOptions(%q) = %v; want an error that does not show the token", args, err)
		}
	}
	// An id equal to its token would be printed by the verify endpoints.
	_, err := parseOptions([]string{"--token", "T", "--token-info", testTokenID + "=active,id=" + testTokenID}, func(string) string { return "" })
	if err == nil || strings.Contains(err.Error(), testTokenID) {
		t.Errorf("id equal to the token: %v", err)
	}
}

// TestBinaryTokenInfo runs the binary with --token-info and checks what the verify
// endpoints and an OAuth call answer each token.
func TestBinaryTokenInfo(t *testing.T) {
	bin := buildBinary(t)
	const user, owned, disabled = "user-token", "account-token", "disabled-token"
	out, stderr := startBinaryLines(t, bin, 1, "--addr", "127.0.0.1:0", "--token", user, "--token", disabled,
		"--token-info", owned+"=active,expires=2099-01-01T00:00:00Z,account="+testAccount+",id="+testTokenID,
		"--token-info", disabled+"=disabled")
	baseURL, _ := strings.CutPrefix(out[0], "cf-emulator listening on ")
	client := func(tok string) *cfapi.Client {
		c, err := cfapi.New(cfapi.Credentials{APIToken: tok}, cfapi.WithBaseURL(baseURL))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	ctx := t.Context()
	expires := time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)
	if got, err := client(owned).VerifyAccountToken(ctx, testAccount); err != nil ||
		!cmp.Equal(got, cfapi.TokenVerification{ID: testTokenID, Status: cfapi.TokenActive, ExpiresOn: &expires}) {
		t.Errorf("account token, its endpoint: %+v, %v", got, err)
	}
	if _, err := client(owned).VerifyUserToken(ctx); !cfapi.IsInvalidToken(err) {
		t.Errorf("account token, user endpoint: %v, want an invalid token", err)
	}
	if got, err := client(user).VerifyUserToken(ctx); err != nil || got.Status != cfapi.TokenActive || len(got.ID) != 32 {
		t.Errorf("user token: %+v, %v", got, err)
	}
	if got, err := client(disabled).VerifyUserToken(ctx); err != nil || got.Status != cfapi.TokenDisabled {
		t.Errorf("disabled token: %+v, %v", got, err)
	}
	if _, err := client(disabled).ListOAuthClients(ctx, testAccount); !cfapi.IsUnauthorized(err) {
		t.Errorf("disabled token, list clients: %v, want 401", err)
	}
	if _, err := client(owned).ListOAuthClients(ctx, testAccount); !cfapi.IsForbidden(err) {
		t.Errorf("a token given only with --token-info, list clients: %v, want 403", err)
	}
	// The control endpoint answers the id, never the token.
	root := strings.TrimSuffix(baseURL, cfemu.BasePath)
	req, _ := http.NewRequestWithContext(ctx, http.MethodPut, root+"/_emulator/token-info", strings.NewReader(`{"token":"`+user+`","info":{"status":"expired"}}`))
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var answer map[string]cfemu.TokenInfo
	err = json.NewDecoder(res.Body).Decode(&answer)
	_ = res.Body.Close()
	if err != nil || res.StatusCode != 200 || answer["info"].Status != cfapi.TokenExpired || len(answer["info"].ID) != 32 {
		t.Errorf("PUT /_emulator/token-info = %d %+v, %v", res.StatusCode, answer, err)
	}
	for _, tok := range []string{user, owned, disabled} {
		if strings.Contains(stderr.String(), tok) || strings.Contains(out[0], tok) {
			t.Error("the output shows a token")
		}
	}
}
