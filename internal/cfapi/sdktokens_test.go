package cfapi_test

// The official Go SDK's user and accounts packages as the oracle for token
// verification: our client must send what the SDK sends, and the emulator must answer
// what the SDK's types decode without an unknown or ill-typed field. Helpers (sdkF,
// sdkWire, sdkDecodeProblems, sdkAs) are in sdkhelpers_test.go.

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/accounts"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/user"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const sdkVerifyOK = `{"success":true,"errors":[],"messages":[],"result":{"id":"` + tokenID + `","status":"active"}}`

// sdkVerify calls one of the SDK's two verify methods.
func sdkVerify(t *testing.T, accountID string, opts ...option.RequestOption) (any, error) {
	t.Helper()
	if accountID == "" {
		return user.NewTokenService(opts...).Verify(t.Context())
	}
	var p accounts.TokenVerifyParams
	sdkF(&p.AccountID, accountID)
	return accounts.NewTokenService(opts...).Verify(t.Context(), p)
}

// ourVerify calls the matching method of ours.
func ourVerify(t *testing.T, c *cfapi.Client, accountID string) (cfapi.TokenVerification, error) {
	t.Helper()
	if accountID == "" {
		return c.VerifyUserToken(t.Context())
	}
	return c.VerifyAccountToken(t.Context(), accountID)
}

func sdkOptions(baseURL, token string, rt http.RoundTripper) []option.RequestOption {
	return []option.RequestOption{
		option.WithBaseURL(baseURL + cfemu.BasePath + "/"), option.WithAPIToken(token),
		option.WithHTTPClient(&http.Client{Transport: rt, Timeout: 10 * time.Second}), option.WithMaxRetries(0),
	}
}

func TestSDKTokenRequestsMatchOurs(t *testing.T) {
	t.Parallel()
	for _, accountID := range []string{"", sdkAccount} {
		t.Run("account "+accountID, func(t *testing.T) {
			t.Parallel()
			ok := reply(200, sdkVerifyOK, "Content-Type", "application/json")
			ourStub, sdkStub := newStub(t, ok), newStub(t, ok)
			if _, err := ourVerify(t, ourStub.client(t, cfapi.Credentials{APIToken: secretToken}), accountID); err != nil {
				t.Fatalf("ours: %v", err)
			}
			if _, err := sdkVerify(t, accountID, sdkOptions(sdkStub.srv.URL, secretToken, sdkStub.srv.Client().Transport)...); err != nil {
				t.Fatalf("sdk: %v", err)
			}
			if diff := cmp.Diff(seen(t, sdkStub), seen(t, ourStub)); diff != "" {
				t.Errorf("our request differs from the SDK's (-sdk +ours):\n%s", diff)
			}
			for _, st := range []*stub{ourStub, sdkStub} {
				if got := st.last.Load().Header.Get("Authorization"); got != "Bearer "+secretToken {
					t.Errorf("Authorization = %q", got)
				}
			}
		})
	}
}

// TestSDKOracleTokens: the SDK's verify calls against the emulator, for a user-owned
// and an account-owned token with every field set: the emulator records what the SDK
// sent, the answer decodes into the SDK's types (envelope included) with nothing
// unknown or ill-typed, and the SDK reads what our client reads.
func TestSDKOracleTokens(t *testing.T) {
	t.Parallel()
	notBefore := time.Date(2026, 8, 1, 0, 0, 0, 0, time.UTC)
	expires := time.Date(2027, 8, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name      string
		info      cfemu.TokenInfo
		accountID string
		route     string
	}{
		{"user-owned", cfemu.TokenInfo{NotBefore: &notBefore, ExpiresOn: &expires}, "", cfemu.RouteVerifyUserToken},
		{"account-owned", cfemu.TokenInfo{AccountID: sdkAccount, ID: tokenID, ExpiresOn: &expires}, sdkAccount, cfemu.RouteVerifyAccountToken},
		{"disabled", cfemu.TokenInfo{Status: cfapi.TokenDisabled}, "", cfemu.RouteVerifyUserToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			clock := cfemu.NewFakeClock(time.Date(2026, 9, 1, 8, 0, 0, 0, time.UTC))
			emu := cfemu.New(cfemu.Options{Tokens: map[string][]string{sdkToken: nil},
				TokenInfo: map[string]cfemu.TokenInfo{sdkToken: tt.info}, Now: clock.Now})
			srv := httptest.NewServer(emu)
			t.Cleanup(srv.Close)
			wire := &sdkWire{next: srv.Client().Transport}
			res, err := sdkVerify(t, tt.accountID, sdkOptions(srv.URL, sdkToken, wire)...)
			if err != nil {
				t.Fatalf("SDK: %v", err)
			}
			sent, recorded := wire.since(0), emu.Requests()
			if len(sent) != 1 || len(recorded) != 1 {
				t.Fatalf("SDK made %d request(s), emulator recorded %d", len(sent), len(recorded))
			}
			ex, rec := sent[0], recorded[0]
			if got, want := fmt.Sprintf("%s %s ?%s -> %d", rec.Route, rec.Path, rec.Query, rec.Status),
				fmt.Sprintf("%s %s ?%s -> %d", tt.route, ex.path, ex.query, ex.status); got != want {
				t.Errorf("emulator recorded %s, SDK sent %s", got, want)
			}
			var envelope any = new(user.TokenVerifyResponseEnvelope)
			if tt.accountID != "" {
				envelope = new(accounts.TokenVerifyResponseEnvelope)
			}
			if err := json.Unmarshal(ex.respBody, envelope); err != nil {
				t.Fatal(err)
			}
			for _, v := range []any{res, envelope} {
				if problems, gaps := sdkDecodeProblems(v); len(problems) > 0 || len(gaps) > 0 {
					t.Errorf("the SDK's %T does not fit the emulator's answer: %v %v", v, problems, gaps)
				}
			}
			c, err := cfapi.New(cfapi.Credentials{APIToken: sdkToken}, cfapi.WithBaseURL(srv.URL+cfemu.BasePath), cfapi.WithHTTPClient(srv.Client()))
			if err != nil {
				t.Fatal(err)
			}
			ours, err := ourVerify(t, c, tt.accountID)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(ours, sdkAs[cfapi.TokenVerification](t, res)); diff != "" {
				t.Errorf("the SDK reads another verification than ours (-ours +sdk):\n%s", diff)
			}
			if ours.ID != emu.TokenID(sdkToken) || strings.Contains(string(ex.respBody), sdkToken) {
				t.Errorf("id %q, body %s: want the emulator's id and never the token", ours.ID, ex.respBody)
			}
		})
	}
}

// TestSDKOracleTokenErrors: the SDK turns the emulator's verify failures into its
// *cloudflare.Error with the status answered and every errors[] entry decoded, and
// our client classifies the same answers as IsInvalidToken (or not).
func TestSDKOracleTokenErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		strict     cfemu.Strict
		token      string
		accountID  string
		wantStatus int
		wantCode   int64
		invalid    bool
	}{
		{"unknown token, user endpoint", cfemu.Strict{}, "sdk-oracle-unknown-tok-7Tb2", "", 401, cfemu.CodeInvalidAPIToken, true},
		{"unknown token, account endpoint", cfemu.Strict{}, "sdk-oracle-unknown-tok-7Tb2", sdkAccount, 401, cfemu.CodeInvalidAPIToken, true},
		{"account-owned token, user endpoint", cfemu.Strict{}, "sdk-oracle-acct-tok-9Qz1", "", 401, cfemu.CodeInvalidAPIToken, true},
		{"user-owned token, account endpoint", cfemu.Strict{}, sdkToken, sdkAccount, 401, cfemu.CodeInvalidAPIToken, true},
		{"account-owned token, user endpoint, harsh", cfemu.Harsh(1), "sdk-oracle-acct-tok-9Qz1", "", 403, cfemu.CodeForbidden, false},
		{"user-owned token, account endpoint, not found", cfemu.Strict{TokenOwnerMismatch: cfemu.TokenMismatchNotFound}, sdkToken, sdkAccount,
			404, cfemu.CodeNoRoute, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			emu := cfemu.New(cfemu.Options{Tokens: map[string][]string{sdkToken: nil},
				TokenInfo: map[string]cfemu.TokenInfo{"sdk-oracle-acct-tok-9Qz1": {AccountID: sdkAccount}}, Strict: tt.strict})
			srv := httptest.NewServer(emu)
			t.Cleanup(srv.Close)
			_, err := sdkVerify(t, tt.accountID, sdkOptions(srv.URL, tt.token, srv.Client().Transport)...)
			var apiErr *user.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("error %v (%T) is not a *cloudflare.Error", err, err)
			}
			if apiErr.StatusCode != tt.wantStatus || len(apiErr.Errors) != 1 || apiErr.Errors[0].Code != tt.wantCode {
				t.Errorf("SDK error: status %d, errors %+v; want %d with code %d", apiErr.StatusCode, apiErr.Errors, tt.wantStatus, tt.wantCode)
			}
			if s := tt.strict.StatusForCode(int(tt.wantCode)); s != tt.wantStatus {
				t.Errorf("code %d belongs to status %d, answered %d", tt.wantCode, s, tt.wantStatus)
			}
			problems, _ := sdkDecodeProblems(apiErr.Errors)
			if diff := cmp.Diff([]string(nil), problems, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("errors[] does not fit the SDK's ErrorData (-want +got):\n%s", diff)
			}
			if strings.Contains(err.Error(), tt.token) {
				t.Error("the SDK's error contains the API token")
			}
			c, cerr := cfapi.New(cfapi.Credentials{APIToken: tt.token}, cfapi.WithBaseURL(srv.URL+cfemu.BasePath), cfapi.WithHTTPClient(srv.Client()))
			if cerr != nil {
				t.Fatal(cerr)
			}
			_, ours := ourVerify(t, c, tt.accountID)
			if ae, ok := errors.AsType[*cfapi.APIError](ours); !ok || ae.StatusCode != tt.wantStatus || cfapi.IsInvalidToken(ours) != tt.invalid {
				t.Errorf("ours = %v; want status %d and IsInvalidToken %v", ours, tt.wantStatus, tt.invalid)
			}
			assertNoSecretIn(t, ours.Error())
			if strings.Contains(ours.Error(), tt.token) {
				t.Errorf("our error contains the API token: %v", ours)
			}
		})
	}
}
