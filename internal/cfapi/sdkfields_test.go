package cfapi_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cloudflare/cloudflare-go/v7/iam"
	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// jsonNamesOf returns the sorted JSON keys of a struct type, promoted fields included;
// with required, only those the SDK tags api:"required".
func jsonNamesOf(t reflect.Type, required bool) []string {
	var out []string
	for f := range fieldsOf(t) {
		if name := jsonName(f); name != "" && (!required || strings.Contains(f.Tag.Get("api"), "required")) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// fillEveryField returns a T with every field set (strings "x", lists ["x"],
// pointers to those), so that its wire form shows every key it can send.
func fillEveryField[T any](t *testing.T) T {
	t.Helper()
	var v T
	rv := reflect.ValueOf(&v).Elem()
	for i := range rv.NumField() {
		f := rv.Field(i)
		switch f.Type() {
		case reflect.TypeFor[string]():
			f.SetString("x")
		case reflect.TypeFor[[]string]():
			f.Set(reflect.ValueOf([]string{"x"}))
		case reflect.TypeFor[*string]():
			x := "x"
			f.Set(reflect.ValueOf(&x))
		case reflect.TypeFor[*[]string]():
			f.Set(reflect.ValueOf(&[]string{"x"}))
		default:
			t.Fatalf("fillEveryField: %T.%s has type %s; teach this helper about it", v, rv.Type().Field(i).Name, f.Type())
		}
	}
	return v
}

// ourWireKeys returns the top-level keys of the body cfapi sends in call, captured by a
// stub that answers with a minimal client.
func ourWireKeys(t *testing.T, call func(*cfapi.Client) error) []string {
	t.Helper()
	var body []byte
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Error(err)
		}
		body = b
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"success":true,"errors":[],"messages":[],"result":{"client_id":"c","visibility":"private"}}`)
	}))
	t.Cleanup(srv.Close)
	c, err := cfapi.New(cfapi.Credentials{APIToken: sdkToken}, cfapi.WithBaseURL(srv.URL), cfapi.WithHTTPClient(srv.Client()))
	if err != nil {
		t.Fatal(err)
	}
	if err := call(c); err != nil {
		t.Fatal(err)
	}
	return bodyKeys(t, body)
}

// TestSDKFieldNames compares, field name by field name, cfapi's types and wire bodies
// with the SDK's. The only accepted differences are sdkKnownGaps; an entry the SDK has
// caught up with, or that no type of ours needs any more, fails the test.
func TestSDKFieldNames(t *testing.T) {
	t.Parallel()
	createKeys := ourWireKeys(t, func(c *cfapi.Client) error {
		_, err := c.CreateOAuthClient(t.Context(), sdkAccount, fillEveryField[cfapi.CreateOAuthClientParams](t))
		return err
	})
	createRequired := ourWireKeys(t, func(c *cfapi.Client) error {
		_, err := c.CreateOAuthClient(t.Context(), sdkAccount, cfapi.CreateOAuthClientParams{})
		return err
	})
	updateKeys := ourWireKeys(t, func(c *cfapi.Client) error {
		_, err := c.UpdateOAuthClient(t.Context(), sdkAccount, "c", fillEveryField[cfapi.UpdateOAuthClientParams](t))
		return err
	})
	names := func(v any) []string { return jsonNamesOf(reflect.TypeOf(v), false) }
	verification := names(cfapi.ClientURIVerification{})

	tests := []struct {
		name      string
		ours, sdk []string
	}{
		{"client from Get", names(cfapi.OAuthClient{}), names(iam.OAuthClientGetResponse{})},
		{"client from List", names(cfapi.OAuthClient{}), names(iam.OAuthClientListResponse{})},
		{"client from Update", names(cfapi.OAuthClient{}), names(iam.OAuthClientUpdateResponse{})},
		{"client from New, with its secret", names(cfapi.CreatedOAuthClient{}), names(iam.OAuthClientNewResponse{})},
		{"client_uri_verification from Get", verification, names(iam.OAuthClientGetResponseClientURIVerification{})},
		{"client_uri_verification from List", verification, names(iam.OAuthClientListResponseClientURIVerification{})},
		{"client_uri_verification from Update", verification, names(iam.OAuthClientUpdateResponseClientURIVerification{})},
		{"client_uri_verification from New", verification, names(iam.OAuthClientNewResponseClientURIVerification{})},
		{"Create body, every field", createKeys, names(iam.OAuthClientNewParams{})},
		{"Create body, required fields", createRequired, jsonNamesOf(reflect.TypeFor[iam.OAuthClientNewParams](), true)},
		{"Update body, every field", updateKeys, names(iam.OAuthClientUpdateParams{})},
		{"scope", names(cfapi.OAuthScope{}), names(iam.OAuthScopeListResponse{})},
	}
	used := map[string]bool{}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if len(tt.ours) == 0 || len(tt.sdk) == 0 {
				t.Fatalf("ours %v, SDK %v: a side has no fields, the comparison would be empty", tt.ours, tt.sdk)
			}
			want := slices.Clone(tt.sdk)
			for gap := range sdkKnownGaps {
				if !slices.Contains(tt.ours, gap) {
					continue
				}
				used[gap] = true
				if slices.Contains(tt.sdk, gap) {
					t.Errorf("the SDK now has %q: delete it from sdkKnownGaps", gap)
					continue
				}
				want = append(want, gap)
			}
			if diff := cmp.Diff(want, tt.ours, cmpopts.SortSlices(func(a, b string) bool { return a < b })); diff != "" {
				t.Errorf("JSON fields (-SDK and sdkKnownGaps +ours):\n%s", diff)
			}
		})
	}
	for gap := range sdkKnownGaps {
		if !used[gap] {
			t.Errorf("sdkKnownGaps has %q but no type of ours has that field: delete the entry", gap)
		}
	}
}

// TestSDKEnumValues checks that every enum value cfapi sends or expects is one the
// SDK knows, in each of the SDK's request and response enums.
func TestSDKEnumValues(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		ours  []string
		known map[string]func(string) bool
	}{
		{"grant_types", []string{cfapi.GrantAuthorizationCode, cfapi.GrantRefreshToken}, map[string]func(string) bool{
			"NewParams":      func(v string) bool { return iam.OAuthClientNewParamsGrantType(v).IsKnown() },
			"UpdateParams":   func(v string) bool { return iam.OAuthClientUpdateParamsGrantType(v).IsKnown() },
			"GetResponse":    func(v string) bool { return iam.OAuthClientGetResponseGrantType(v).IsKnown() },
			"ListResponse":   func(v string) bool { return iam.OAuthClientListResponseGrantType(v).IsKnown() },
			"NewResponse":    func(v string) bool { return iam.OAuthClientNewResponseGrantType(v).IsKnown() },
			"UpdateResponse": func(v string) bool { return iam.OAuthClientUpdateResponseGrantType(v).IsKnown() },
		}},
		{"response_types", []string{cfapi.ResponseTypeCode, cfapi.ResponseTypeToken, cfapi.ResponseTypeIDToken}, map[string]func(string) bool{
			"NewParams":      func(v string) bool { return iam.OAuthClientNewParamsResponseType(v).IsKnown() },
			"UpdateParams":   func(v string) bool { return iam.OAuthClientUpdateParamsResponseType(v).IsKnown() },
			"GetResponse":    func(v string) bool { return iam.OAuthClientGetResponseResponseType(v).IsKnown() },
			"ListResponse":   func(v string) bool { return iam.OAuthClientListResponseResponseType(v).IsKnown() },
			"NewResponse":    func(v string) bool { return iam.OAuthClientNewResponseResponseType(v).IsKnown() },
			"UpdateResponse": func(v string) bool { return iam.OAuthClientUpdateResponseResponseType(v).IsKnown() },
		}},
		{"token_endpoint_auth_method", []string{cfapi.AuthMethodNone, cfapi.AuthMethodClientSecretBasic, cfapi.AuthMethodClientSecretPost}, map[string]func(string) bool{
			"NewParams":      func(v string) bool { return iam.OAuthClientNewParamsTokenEndpointAuthMethod(v).IsKnown() },
			"UpdateParams":   func(v string) bool { return iam.OAuthClientUpdateParamsTokenEndpointAuthMethod(v).IsKnown() },
			"GetResponse":    func(v string) bool { return iam.OAuthClientGetResponseTokenEndpointAuthMethod(v).IsKnown() },
			"ListResponse":   func(v string) bool { return iam.OAuthClientListResponseTokenEndpointAuthMethod(v).IsKnown() },
			"NewResponse":    func(v string) bool { return iam.OAuthClientNewResponseTokenEndpointAuthMethod(v).IsKnown() },
			"UpdateResponse": func(v string) bool { return iam.OAuthClientUpdateResponseTokenEndpointAuthMethod(v).IsKnown() },
		}},
		{"visibility in responses", []string{cfapi.VisibilityPrivate, cfapi.VisibilityPublic}, map[string]func(string) bool{
			"GetResponse":    func(v string) bool { return iam.OAuthClientGetResponseVisibility(v).IsKnown() },
			"ListResponse":   func(v string) bool { return iam.OAuthClientListResponseVisibility(v).IsKnown() },
			"NewResponse":    func(v string) bool { return iam.OAuthClientNewResponseVisibility(v).IsKnown() },
			"UpdateResponse": func(v string) bool { return iam.OAuthClientUpdateResponseVisibility(v).IsKnown() },
		}},
		// Only promotion is accepted on Update: the SDK's enum has public alone.
		{"visibility in Update", []string{cfapi.VisibilityPublic}, map[string]func(string) bool{
			"UpdateParams": func(v string) bool { return iam.OAuthClientUpdateParamsVisibility(v).IsKnown() },
		}},
		{"client_uri_verification.status", []string{cfapi.VerificationPending, cfapi.VerificationInProgress, cfapi.VerificationVerified, cfapi.VerificationFailed}, map[string]func(string) bool{
			"GetResponse":    func(v string) bool { return iam.OAuthClientGetResponseClientURIVerificationStatus(v).IsKnown() },
			"ListResponse":   func(v string) bool { return iam.OAuthClientListResponseClientURIVerificationStatus(v).IsKnown() },
			"NewResponse":    func(v string) bool { return iam.OAuthClientNewResponseClientURIVerificationStatus(v).IsKnown() },
			"UpdateResponse": func(v string) bool { return iam.OAuthClientUpdateResponseClientURIVerificationStatus(v).IsKnown() },
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, enum := range slices.Sorted(maps.Keys(tt.known)) {
				known := tt.known[enum]
				if known("not-a-value") {
					t.Fatalf("%s: IsKnown accepts anything", enum)
				}
				for _, v := range tt.ours {
					if !known(v) {
						t.Errorf("%s does not know our value %q", enum, v)
					}
				}
			}
		})
	}
}

// TestSDKDecodeProblemsIsNotVacuous feeds sdkDecodeProblems documents with the faults
// TestSDKOracleOperations looks for, so that a pass there means something.
func TestSDKDecodeProblemsIsNotVacuous(t *testing.T) {
	t.Parallel()
	const client = `"client_id":"c","visibility":"private","client_uri_verification":{"status":"verified","text":"t"%s},"has_rotated_secret":%s,"created_at":%s`
	envelope := func(result, extra string) string {
		return `{"success":true,"errors":[],"messages":[],"result":{` + result + `}` + extra + `}`
	}
	tests := []struct {
		name         string
		body         string
		wantProblems []string
		wantGaps     []string
	}{
		{"exact", envelope(fmt.Sprintf(client, "", "false", `"2026-09-01T08:00:00Z"`), ""), nil, nil},
		{"unknown result field", envelope(fmt.Sprintf(client, "", "false", `"2026-09-01T08:00:00Z"`)+`,"colour":"red"`, ""),
			[]string{"$.result.colour: not in the SDK's iam.OAuthClientGetResponse"}, nil},
		{"unknown nested field", envelope(fmt.Sprintf(client, `,"since":"x"`, "false", `"2026-09-01T08:00:00Z"`), ""),
			[]string{"$.result.client_uri_verification.since: not in the SDK's iam.OAuthClientGetResponseClientURIVerification"}, nil},
		{"unknown envelope field", envelope(fmt.Sprintf(client, "", "false", `"2026-09-01T08:00:00Z"`), `,"result_info":{}`),
			[]string{"$.result_info: not in the SDK's iam.OAuthClientGetResponseEnvelope"}, nil},
		{"wrong JSON type", envelope(fmt.Sprintf(client, "", `"yes"`, `"2026-09-01T08:00:00Z"`), ""),
			[]string{`$.result.has_rotated_secret: "yes" does not decode into bool`}, nil},
		{"unparsable timestamp", envelope(fmt.Sprintf(client, "", "false", `"yesterday"`), ""),
			[]string{`$.result.created_at: "yesterday" does not decode into time.Time`}, nil},
		{"known gap", envelope(fmt.Sprintf(client, "", "false", `"2026-09-01T08:00:00Z"`)+`,"optional_scopes":["a.read"]`, ""),
			nil, []string{"$.result.optional_scopes"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var env iam.OAuthClientGetResponseEnvelope
			if err := json.Unmarshal([]byte(tt.body), &env); err != nil {
				t.Fatal(err)
			}
			problems, gaps := sdkDecodeProblems(&env)
			if diff := cmp.Diff(tt.wantProblems, problems, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.wantGaps, slices.Sorted(maps.Keys(gaps)), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("gaps (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSDKIsTestOnly keeps cloudflare-go out of everything we build: it is an oracle for
// tests, not a dependency of the operator.
func TestSDKIsTestOnly(t *testing.T) {
	t.Parallel()
	goBin, err := exec.LookPath("go") // go test puts its own go first on PATH
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := exec.CommandContext(t.Context(), goBin, "env", "GOMOD").Output()
	if err != nil {
		t.Fatal(err)
	}
	root := filepath.Dir(strings.TrimSpace(string(gomod)))
	for _, pattern := range []string{"./cmd/manager", "./..."} {
		t.Run(pattern, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), goBin, "list", "-deps", pattern)
			cmd.Dir = root
			out, err := cmd.Output()
			if err != nil {
				var exit *exec.ExitError
				if errors.As(err, &exit) {
					t.Fatalf("go list -deps %s: %v\n%s", pattern, err, exit.Stderr)
				}
				t.Fatal(err)
			}
			pkgs := strings.Fields(string(out))
			if len(pkgs) < 10 {
				t.Fatalf("go list -deps %s listed only %v", pattern, pkgs)
			}
			var sdk []string
			for _, p := range pkgs {
				if strings.HasPrefix(p, "github.com/cloudflare/cloudflare-go") {
					sdk = append(sdk, p)
				}
			}
			if len(sdk) > 0 {
				t.Errorf("non-test code under %s imports the SDK: %v", pattern, sdk)
			}
		})
	}
}
