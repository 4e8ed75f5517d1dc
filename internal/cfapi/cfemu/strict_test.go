package cfemu_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

func TestStrictRotateConflictAs400(t *testing.T) {
	tests := []struct {
		name   string
		strict cfemu.Strict
		want   string
	}{
		{"default", cfemu.Strict{}, "409 12016"},
		{"strict", cfemu.Strict{RotateConflictAs400: true}, "400 12016"},
		{"harsh", cfemu.Harsh(1), "400 12016"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *cfemu.Options) { o.Strict = tt.strict })
			c := e.create(t, validBody)
			rotate := clients + "/" + c.ClientID + "/rotate_secret"
			first := e.call(t, http.MethodPost, rotate, "")
			var rotated struct {
				ClientSecret string `json:"client_secret"`
			}
			if err := json.Unmarshal(first.env.Result, &rotated); first.status != 200 || err != nil {
				t.Fatalf("first rotate: %s", first.raw)
			}
			if got := e.call(t, http.MethodPost, rotate, "").codes(); got != tt.want {
				t.Errorf("second rotate: %q, want %q", got, tt.want)
			}
			if got := tt.strict.StatusForCode(cfemu.CodeSecretAlreadyRotated); got != e.call(t, http.MethodPost, rotate, "").status {
				t.Errorf("Strict.StatusForCode = %d disagrees with the response", got)
			}
			// The refused rotate changed nothing.
			if st := e.emu.CheckSecret(acct, c.ClientID, rotated.ClientSecret); !st.Current {
				t.Errorf("the first rotated secret is %+v, want current", st)
			}
		})
	}
	if got := cfemu.StatusForCode(cfemu.CodeSecretAlreadyRotated); got != http.StatusConflict {
		t.Errorf("default StatusForCode = %d, want 409", got)
	}
	if got := cfemu.Harsh(1).StatusForCode(cfemu.CodeNoRotatedSecret); got != http.StatusBadRequest {
		t.Errorf("strict modes changed an unrelated code's status: %d", got)
	}
}

// shuffleBody has a list of at least two distinct entries in every array field, its
// scopes already normalised (as SeedClient stores them).
const shuffleBody = `{"client_name":"Lists","token_endpoint_auth_method":"client_secret_basic",` +
	`"redirect_uris":["https://a.example/cb","https://b.example/cb","https://c.example/cb"],` +
	`"post_logout_redirect_uris":["https://a.example/bye","https://b.example/bye"],` +
	`"allowed_cors_origins":["https://a.example","https://b.example"],` +
	`"grant_types":["authorization_code","refresh_token"],"response_types":["code","id_token"],` +
	`"scopes":["account.read","zone.read","user-details.read","openid","offline_access"],"optional_scopes":["zone.read","user-details.read"]}`

func lists(c cfapi.OAuthClient) map[string][]string {
	return map[string][]string{
		"redirect_uris": c.RedirectURIs, "post_logout_redirect_uris": c.PostLogoutRedirectURIs,
		"allowed_cors_origins": c.AllowedCORSOrigins, "grant_types": c.GrantTypes, "response_types": c.ResponseTypes,
		"scopes": c.Scopes, "optional_scopes": c.OptionalScopes,
	}
}

// checkReordered asserts every array field of every response is another permutation
// of the stored one.
func checkReordered(t *testing.T, responses map[string]cfapi.OAuthClient, want map[string][]string) {
	t.Helper()
	for name, resp := range responses {
		for field, got := range lists(resp) {
			if slices.Equal(got, want[field]) {
				t.Errorf("%s: %s kept the stored order %v", name, field, got)
			}
			if !cmp.Equal(slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want[field]))) {
				t.Errorf("%s: %s = %v, not a permutation of %v", name, field, got, want[field])
			}
		}
	}
}

func TestStrictShuffleOrder(t *testing.T) {
	// run seeds three clients with fixed ids and answers the List and Get bodies.
	run := func(t *testing.T, st cfemu.Strict) (e *env, stored cfapi.OAuthClient, list, get result) {
		e = newEnv(t, func(o *cfemu.Options) { o.Strict = st })
		var f cfapi.OAuthClient
		if err := json.Unmarshal([]byte(shuffleBody), &f); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"c1", "c2", "c3"} {
			f.ClientID = id
			if _, err := e.emu.SeedClient(acct, f, "s"); err != nil {
				t.Fatal(err)
			}
		}
		stored, _ = e.emu.GetClient(acct, "c1")
		return e, stored, e.call(t, http.MethodGet, clients, ""), e.call(t, http.MethodGet, clients+"/c1", "")
	}
	decode := func(t *testing.T, r result, into any) {
		t.Helper()
		if err := json.Unmarshal(r.env.Result, into); r.status != 200 || err != nil {
			t.Fatalf("%d %v: %s", r.status, err, r.raw)
		}
	}
	ids := func(cs []cfapi.OAuthClient) []string {
		out := make([]string, len(cs))
		for i, c := range cs {
			out[i] = c.ClientID
		}
		return out
	}

	t.Run("default keeps the stored order", func(t *testing.T) {
		_, stored, list, get := run(t, cfemu.Strict{})
		var all []cfapi.OAuthClient
		var one cfapi.OAuthClient
		decode(t, list, &all)
		decode(t, get, &one)
		if diff := cmp.Diff([]string{"c1", "c2", "c3"}, ids(all)); diff != "" {
			t.Errorf("list order (-want +got):\n%s", diff)
		}
		if diff := cmp.Diff(stored, one); diff != "" {
			t.Errorf("get (-stored +got):\n%s", diff)
		}
	})

	t.Run("strict shuffles every response, never the store", func(t *testing.T) {
		e, stored, list, get := run(t, cfemu.Harsh(7))
		var all []cfapi.OAuthClient
		var one cfapi.OAuthClient
		decode(t, list, &all)
		decode(t, get, &one)
		if got := ids(all); slices.Equal(got, []string{"c1", "c2", "c3"}) || !cmp.Equal(slices.Sorted(slices.Values(got)), []string{"c1", "c2", "c3"}) {
			t.Errorf("list order %v, want another permutation of c1 c2 c3", got)
		}
		responses := map[string]cfapi.OAuthClient{"get": one}
		for _, c := range all {
			responses["list "+c.ClientID] = c
		}
		created := e.call(t, http.MethodPost, clients, shuffleBody)
		var c cfapi.CreatedOAuthClient
		decode(t, created, &c)
		responses["create"] = c.OAuthClient
		patched := e.call(t, http.MethodPatch, clients+"/c1", `{"client_name":"Patched"}`)
		var p cfapi.OAuthClient
		decode(t, patched, &p)
		responses["patch"] = p
		want := lists(stored)
		checkReordered(t, responses, want)
		// The store and the Go helpers keep the order the client was written in.
		after, _ := e.emu.GetClient(acct, "c1")
		if diff := cmp.Diff(want, lists(after)); diff != "" {
			t.Errorf("stored lists changed (-want +got):\n%s", diff)
		}
		if got := ids(e.emu.Clients(acct)); !slices.Equal(got[:3], []string{"c1", "c2", "c3"}) {
			t.Errorf("Clients order %v", got)
		}
	})

	t.Run("a seed reproduces the same orders", func(t *testing.T) {
		e, _, list1, get1 := run(t, cfemu.Harsh(7))
		_, _, list2, get2 := run(t, cfemu.Harsh(7))
		if string(list1.raw) != string(list2.raw) || string(get1.raw) != string(get2.raw) {
			t.Errorf("same seed, different bodies:\n%s\n%s", list1.raw, list2.raw)
		}
		// SetStrict restarts the random source.
		e.emu.SetStrict(cfemu.Harsh(7))
		if again := e.call(t, http.MethodGet, clients, ""); string(again.raw) != string(list1.raw) {
			t.Errorf("after SetStrict with the same seed:\n%s\nwant\n%s", again.raw, list1.raw)
		}
	})
}

func TestStrictPromotionBeforePatch(t *testing.T) {
	tests := []struct {
		name       string
		strict     cfemu.Strict
		want       string
		visibility string
		logo       string
	}{
		{"default judges the merged client", cfemu.Strict{}, "200", cfapi.VisibilityPublic, "https://app.example.org/logo.png"},
		{"strict judges the client before the patch", cfemu.Strict{PromotionBeforePatch: true}, "400 12013@/logo_uri", cfapi.VisibilityPrivate, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *cfemu.Options) { o.Strict = tt.strict })
			c := e.create(t, strings.Replace(validBody, `{`, `{"client_uri":"https://app.example.org",`, 1))
			if err := e.emu.SetVerification(acct, c.ClientID, cfapi.VerificationVerified); err != nil {
				t.Fatal(err)
			}
			r := e.call(t, http.MethodPatch, clients+"/"+c.ClientID, `{"logo_uri":"https://app.example.org/logo.png","visibility":"public"}`)
			if got := r.codes(); got != tt.want {
				t.Errorf("promote with a logo in the same PATCH: %q, want %q: %s", got, tt.want, r.raw)
			}
			got, _ := e.emu.GetClient(acct, c.ClientID)
			if got.Visibility != tt.visibility || got.LogoURI != tt.logo {
				t.Errorf("stored visibility %q logo %q, want %q %q", got.Visibility, got.LogoURI, tt.visibility, tt.logo)
			}
			// Two PATCHes (the logo first) pass in every mode.
			if r := e.call(t, http.MethodPatch, clients+"/"+c.ClientID, `{"logo_uri":"https://app.example.org/logo.png"}`); r.status != 200 {
				t.Fatalf("logo: %s", r.raw)
			}
			if r := e.call(t, http.MethodPatch, clients+"/"+c.ClientID, `{"visibility":"public"}`); r.status != 200 {
				t.Errorf("promote after the logo: %s", r.raw)
			}
		})
	}
}

func TestStrictFailVerificationAfter(t *testing.T) {
	type step struct {
		advance time.Duration
		want    string // verification status after advancing
	}
	tests := []struct {
		name        string
		verifyAfter time.Duration
		failAfter   time.Duration
		force       string // SetVerification before the steps, if set
		steps       []step
	}{
		{"default never fails", 0, 0, "", []step{{365 * 24 * time.Hour, cfapi.VerificationInProgress}}},
		{"fails after two days", 0, 48 * time.Hour, "", []step{
			{48*time.Hour - time.Second, cfapi.VerificationInProgress}, {time.Second, cfapi.VerificationFailed}}},
		{"pending fails too", 0, 48 * time.Hour, cfapi.VerificationPending, []step{
			{47 * time.Hour, cfapi.VerificationPending}, {time.Hour, cfapi.VerificationFailed}}},
		{"verification first wins", time.Hour, 48 * time.Hour, "", []step{
			{time.Hour, cfapi.VerificationVerified}, {48 * time.Hour, cfapi.VerificationVerified}}},
		{"failure first wins", 2 * time.Hour, time.Hour, "", []step{
			{time.Hour, cfapi.VerificationFailed}, {time.Hour, cfapi.VerificationFailed}}},
		{"a tie fails", time.Hour, time.Hour, "", []step{{time.Hour, cfapi.VerificationFailed}}},
		{"both deadlines passed unseen: the earlier one decides", time.Hour, 2 * time.Hour, "", []step{
			{3 * time.Hour, cfapi.VerificationVerified}}},
		{"verified is final", 0, time.Hour, cfapi.VerificationVerified, []step{{2 * time.Hour, cfapi.VerificationVerified}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, func(o *cfemu.Options) {
				o.VerifyAfter = tt.verifyAfter
				o.Strict.FailVerificationAfter = tt.failAfter
			})
			c := e.create(t, strings.Replace(validBody, `{`, `{"client_uri":"https://app.example.org",`, 1))
			if tt.force != "" {
				if err := e.emu.SetVerification(acct, c.ClientID, tt.force); err != nil {
					t.Fatal(err)
				}
			}
			for i, s := range tt.steps {
				e.clock.Advance(s.advance)
				r := e.call(t, http.MethodGet, clients+"/"+c.ClientID, "")
				var got cfapi.OAuthClient
				_ = json.Unmarshal(r.env.Result, &got)
				if got.ClientURIVerification == nil || got.ClientURIVerification.Status != s.want {
					t.Errorf("step %d: verification %+v, want %q", i, got.ClientURIVerification, s.want)
				}
				if !got.UpdatedAt.Equal(epoch) {
					t.Errorf("step %d: updated_at %v moved", i, got.UpdatedAt)
				}
			}
		})
	}
}

// TestStrictFailedVerificationRestarts: a PATCH with the unchanged client_uri restarts a
// timed-out verification, and its clock.
func TestStrictFailedVerificationRestarts(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) { o.Strict.FailVerificationAfter = 48 * time.Hour })
	c := e.create(t, strings.Replace(validBody, `{`, `{"client_uri":"https://app.example.org",`, 1))
	status := func() string {
		got, _ := e.emu.GetClient(acct, c.ClientID)
		return got.ClientURIVerification.Status
	}
	e.clock.Advance(48 * time.Hour)
	if got := status(); got != cfapi.VerificationFailed {
		t.Fatalf("after two days: %q", got)
	}
	r := e.call(t, http.MethodPatch, clients+"/"+c.ClientID, `{"client_uri":"https://app.example.org"}`)
	if r.status != 200 || status() != cfapi.VerificationInProgress {
		t.Fatalf("restart: %d %q", r.status, status())
	}
	e.clock.Advance(48*time.Hour - time.Second)
	if got := status(); got != cfapi.VerificationInProgress {
		t.Errorf("just before the restarted deadline: %q", got)
	}
	e.clock.Advance(time.Second)
	if got := status(); got != cfapi.VerificationFailed {
		t.Errorf("at the restarted deadline: %q", got)
	}
}

func TestStrictSettingsAndControl(t *testing.T) {
	if got, want := cfemu.Harsh(9), (cfemu.Strict{RotateConflictAs400: true, ShuffleOrder: true, Seed: 9, PromotionBeforePatch: true,
		ZoneScopedList: cfemu.ZoneListEmpty, TokenOwnerMismatch: cfemu.TokenMismatchForbidden, InactiveTokenRefused: true}); got != want {
		t.Errorf("Harsh(9) = %+v", got)
	}
	e := newEnv(t)
	ctl := e.controlFunc(t)
	if status, got := ctl("GET", "/strict", ""); status != 200 || len(got) != 0 {
		t.Errorf("GET /strict on a default emulator: %d %v", status, got)
	}
	body := `{"rotate_conflict_as_400":true,"shuffle_order":true,"seed":3,"promotion_before_patch":true,"fail_verification_after":"48h0m0s","zone_scoped_list":"empty",` +
		`"token_owner_mismatch":"forbidden","inactive_token_refused":true}`
	if status, _ := ctl("PUT", "/strict", body); status != 200 {
		t.Fatalf("PUT /strict: %d", status)
	}
	want := cfemu.Harsh(3)
	want.FailVerificationAfter = 48 * time.Hour
	if got := e.emu.Strict(); got != want {
		t.Errorf("Strict() = %+v, want %+v", got, want)
	}
	if r := e.call(t, http.MethodGet, "/_emulator/strict", "", "Authorization", ""); strings.TrimSpace(string(r.raw)) != body {
		t.Errorf("GET /strict = %s, want %s", r.raw, body)
	}
	for _, bad := range []string{
		`{"fail_verification_after":"-1s"}`,
		`{"fail_verification_after":"9000h"}`,
		`{"fail_verification_after":"soon"}`,
		`{"shuffle_orders":true}`,
		`{"seed":"x"}`,
		`{"zone_scoped_list":"hidden"}`,
		`{"token_owner_mismatch":"404"}`,
		``,
	} {
		if status, _ := ctl("PUT", "/strict", bad); status != 400 {
			t.Errorf("PUT /strict %s: %d, want 400", bad, status)
		}
	}
	if got := e.emu.Strict(); got != want {
		t.Errorf("a refused PUT changed the modes: %+v", got)
	}
	e.emu.Reset()
	if got := e.emu.Strict(); got != (cfemu.Strict{}) {
		t.Errorf("after Reset: %+v, want Options.Strict", got)
	}
	for name, f := range map[string]func(){
		"SetStrict": func() { e.emu.SetStrict(cfemu.Strict{FailVerificationAfter: -time.Second}) },
		"New":       func() { cfemu.New(cfemu.Options{Strict: cfemu.Strict{FailVerificationAfter: -time.Second}}) },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s accepted a negative FailVerificationAfter", name)
				}
			}()
			f()
		}()
	}
}
