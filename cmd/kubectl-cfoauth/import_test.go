package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// Each import test has an account of its own, so that the Cloudflare calls it counts
// are its own.
const (
	importFleetAccount   = "1e0a7f1ee7000000000000000000000a"
	importOtherAccount   = "1e0a7f1ee7000000000000000000000b"
	importManageAccount  = "1e0a7f1ee7000000000000000000000c"
	importFiltersAccount = "1e0a7f1ee7000000000000000000000d"
	importErrorsAccount  = "1e0a7f1ee7000000000000000000000e"
)

// seedTime is the first seeded client's created_at; each next one is a minute later,
// so that de-duplicated names follow creation order.
var seedTime = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// remoteClient is a confidential client with the fields Cloudflare requires; opts
// change it.
func remoteClient(name string, opts ...func(*cfapi.OAuthClient)) cfapi.OAuthClient {
	host := dnsLabel(name)
	if host == "" {
		host = "app"
	}
	c := cfapi.OAuthClient{
		ClientName:              name,
		RedirectURIs:            []string{"https://" + host + ".example.com/oauth/callback"},
		GrantTypes:              []string{cfapi.GrantAuthorizationCode},
		ResponseTypes:           []string{cfapi.ResponseTypeCode},
		Scopes:                  []string{"account.read"},
		TokenEndpointAuthMethod: cfapi.AuthMethodClientSecretBasic,
	}
	for _, o := range opts {
		o(&c)
	}
	return c
}

func pkce(c *cfapi.OAuthClient) { c.TokenEndpointAuthMethod = cfapi.AuthMethodNone }

func refresh(c *cfapi.OAuthClient) {
	c.GrantTypes = append(c.GrantTypes, cfapi.GrantRefreshToken)
	c.Scopes = append(c.Scopes, "offline_access") // what Cloudflare holds after adding it
}

func withID(id string) func(*cfapi.OAuthClient) {
	return func(c *cfapi.OAuthClient) { c.ClientID = id }
}

// seed stores the clients in the emulator with increasing created_at and returns them
// as Cloudflare holds them.
func seed(t *testing.T, account string, clients ...cfapi.OAuthClient) []cfapi.OAuthClient {
	t.Helper()
	out := make([]cfapi.OAuthClient, len(clients))
	for i, c := range clients {
		at := seedTime.Add(time.Duration(i) * time.Minute)
		c.CreatedAt, c.UpdatedAt = &at, &at
		got, err := suite.emu.SeedClient(account, c, "")
		if err != nil {
			t.Fatal(err)
		}
		out[i] = got
	}
	return out
}

// fleet is 50 clients of every shape an import meets.
func fleet() []cfapi.OAuthClient {
	clients := []cfapi.OAuthClient{
		remoteClient("web"),
		remoteClient("web", func(c *cfapi.OAuthClient) { c.TokenEndpointAuthMethod = cfapi.AuthMethodClientSecretPost }),
		remoteClient("Web"),
		remoteClient("web", refresh),
		remoteClient("web-2"),
		remoteClient("Mobile App (PKCE)", pkce, refresh, func(c *cfapi.OAuthClient) {
			c.RedirectURIs = []string{"http://127.0.0.1:8080/cb", "https://m.example.com/cb?app=1", "http://localhost/cb"}
			c.AllowedCORSOrigins = []string{"https://m.example.com", "http://localhost:3000"}
			c.Scopes = []string{"user-details.read", "offline_access"}
		}),
		remoteClient("Full Client", refresh, func(c *cfapi.OAuthClient) {
			c.ClientURI, c.LogoURI = "https://full.example.com", "https://full.example.com/logo.png"
			c.PolicyURI, c.TosURI = "https://full.example.com/privacy", "https://full.example.com/tos"
			c.RedirectURIs = []string{"https://full.example.com/b", "https://full.example.com/a"}
			c.PostLogoutRedirectURIs = []string{"https://full.example.com/bye"}
			c.AllowedCORSOrigins = []string{"https://full.example.com"}
			c.ResponseTypes = []string{cfapi.ResponseTypeCode, cfapi.ResponseTypeIDToken}
			c.Scopes = []string{"zone.read", "account.read", "openid", "offline_access"}
			c.OptionalScopes = []string{"zone.read"}
			c.TokenEndpointAuthMethod = cfapi.AuthMethodClientSecretPost
		}),
		remoteClient("Public Portal", func(c *cfapi.OAuthClient) {
			c.Visibility = cfapi.VisibilityPublic
			c.ClientURI, c.LogoURI = "https://portal.example.com", "https://portal.example.com/logo.png"
			c.ClientURIVerification = &cfapi.ClientURIVerification{Status: cfapi.VerificationVerified, Text: "cloudflare_oauth_client_publisher=0123"}
			promoted := seedTime
			c.PromotedAt = &promoted
		}),
		remoteClient("Public PKCE", pkce, func(c *cfapi.OAuthClient) {
			c.Visibility = cfapi.VisibilityPublic
			c.ClientURI, c.LogoURI = "https://pkce.example.com", "https://pkce.example.com/logo.svg"
			c.ClientURIVerification = &cfapi.ClientURIVerification{Status: cfapi.VerificationVerified, Text: "cloudflare_oauth_client_publisher=4567"}
		}),
		remoteClient("  ÜBER—App!! (prod) "),
		remoteClient("", withID("c0ffee00c0ffee00c0ffee00c0ffee00")),
		remoteClient("日本語クライアント", withID("beef0000beef0000beef0000beef0000")),
		remoteClient(strings.Repeat("a", 40) + " " + strings.Repeat("b", 59)),
		remoteClient("a.b.c"),
		remoteClient("UPPER_case_Name"),
		remoteClient("http logo", func(c *cfapi.OAuthClient) { c.LogoURI = "http://logo.example.com/x.png" }),
		remoteClient("ipv6 loopback", func(c *cfapi.OAuthClient) {
			c.RedirectURIs = []string{"https://ok.example.com/cb", "http://[::1]:8080/cb"}
		}),
		remoteClient("identity only", func(c *cfapi.OAuthClient) {
			c.ResponseTypes = []string{cfapi.ResponseTypeCode, cfapi.ResponseTypeIDToken}
			c.Scopes = []string{"openid"}
		}),
		remoteClient("rotated", func(c *cfapi.OAuthClient) { c.HasRotatedSecret = true }),
		remoteClient("empty lists", func(c *cfapi.OAuthClient) {
			c.PostLogoutRedirectURIs, c.AllowedCORSOrigins, c.OptionalScopes = []string{}, []string{}, []string{}
		}),
		remoteClient("unverified", func(c *cfapi.OAuthClient) { c.ClientURI = "https://unverified.example.com" }),
		remoteClient("failed verification", func(c *cfapi.OAuthClient) {
			c.ClientURI = "https://failed.example.com"
			c.ClientURIVerification = &cfapi.ClientURIVerification{Status: cfapi.VerificationFailed, Text: "cloudflare_oauth_client_publisher=89ab"}
		}),
		remoteClient("api"),
		remoteClient("api", pkce),
		remoteClient("duplicate scopes", func(c *cfapi.OAuthClient) { c.Scopes = []string{"zone.read", "zone.read", "dns-records.edit"} }),
		remoteClient("bound-spec"),
		remoteClient("bound-annotation"),
		remoteClient("bound-status"),
		remoteClient("bound-in-another-account"),
	}
	kinds := []func(*cfapi.OAuthClient){
		func(*cfapi.OAuthClient) {},
		pkce,
		refresh,
		func(c *cfapi.OAuthClient) { c.TokenEndpointAuthMethod = cfapi.AuthMethodClientSecretPost },
		func(c *cfapi.OAuthClient) {
			c.Scopes = []string{"workers-scripts.write", "d1.read"}
			c.OptionalScopes = []string{"d1.read"}
		},
		func(c *cfapi.OAuthClient) { c.PostLogoutRedirectURIs = []string{"https://svc.example.com/logout"} },
	}
	for i := 0; len(clients) < 50; i++ {
		clients = append(clients, remoteClient(fmt.Sprintf("svc %02d", i), kinds[i%len(kinds)]))
	}
	return clients
}

// cloudflareCalls returns the requests the emulator received for the account.
func cloudflareCalls(account string) []cfemu.RecordedRequest {
	var out []cfemu.RecordedRequest
	for _, r := range suite.emu.Requests() {
		if strings.HasPrefix(r.Path, "/accounts/"+account+"/") {
			out = append(out, r)
		}
	}
	return out
}

// importOnce runs an import and asserts that it made exactly one Cloudflare call, a
// List of the account.
func importOnce(t *testing.T, env []string, account string, args ...string) result {
	t.Helper()
	before := len(cloudflareCalls(account))
	r := plugin(t, env, append([]string{"import", "--account-id", account, "--api-url", suite.apiURL}, args...)...)
	noToken(t, r)
	if r.code != 0 {
		t.Fatalf("import %v: exit %d\n%s", args, r.code, r.stderr)
	}
	calls := cloudflareCalls(account)[before:]
	if len(calls) != 1 || calls[0].Route != cfemu.RouteListClients {
		t.Fatalf("import %v made %d Cloudflare calls %v; want exactly one %s", args, len(calls), calls, cfemu.RouteListClients)
	}
	return r
}

// imported is one document of an import's YAML output.
type imported struct {
	obj v1alpha1.OAuthClient
	raw string
}

// decodeImport splits a YAML stream and decodes each document strictly.
func decodeImport(t *testing.T, out string) []imported {
	t.Helper()
	reader := utilyaml.NewYAMLReader(bufio.NewReader(strings.NewReader(out)))
	var docs []imported
	for {
		raw, err := reader.Read()
		if errors.Is(err, io.EOF) {
			return docs
		}
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimSpace(string(raw)) == "" {
			continue
		}
		var o v1alpha1.OAuthClient
		if err := yaml.UnmarshalStrict(raw, &o); err != nil {
			t.Fatalf("document does not decode into an OAuthClient: %v\n%s", err, raw)
		}
		docs = append(docs, imported{obj: o, raw: string(raw)})
	}
}

func byClientID(docs []imported) map[string]imported {
	out := make(map[string]imported, len(docs))
	for _, d := range docs {
		out[d.obj.AdoptedClientID()] = d
	}
	return out
}

// bind creates an OAuthClient that binds a client through spec, annotation or status.
// It has no credentials (the test operator has no default ones), so it stalls before
// any Cloudflare call and never disturbs the call counts.
func bind(t *testing.T, ns, name, account, clientID, via string) {
	t.Helper()
	o := &v1alpha1.OAuthClient{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}, Spec: v1alpha1.OAuthClientSpec{AccountID: account}}
	switch via {
	case "spec":
		o.Spec.ClientID = &clientID
		o.Spec.ManagementPolicy = v1alpha1.ManagementPolicyObserve
	case "annotation":
		o.Annotations = map[string]string{v1alpha1.AnnotationClientID: clientID}
	}
	if via != "spec" {
		o.Spec.ClientName = ptr(name)
		o.Spec.RedirectURIs = &[]string{"https://" + name + ".example.com/cb"}
		o.Spec.GrantTypes = &[]v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode}
		o.Spec.ResponseTypes = &[]v1alpha1.ResponseType{v1alpha1.ResponseTypeCode}
		o.Spec.Scopes = &[]string{"account.read"}
		o.Spec.TokenEndpointAuthMethod = ptr(v1alpha1.AuthMethodClientSecretBasic)
	}
	create(t, o)
	eventually(t, 20*time.Second, name+" stalled without credentials", func() bool {
		return readyReason(t, ns, name) == "False/"+v1alpha1.ReasonCredentialsNotFound
	})
	if via == "status" {
		// Status is written once the operator has concluded, so it never overwrites it.
		o = get(t, ns, name)
		o.Status.ClientID = clientID
		if err := suite.kube.Status().Update(t.Context(), o); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _ = suite.kube.Delete(context.Background(), o) })
}

// applyAll creates the imported objects and waits until every one is Ready with reason
// Reconciled for its generation: the operator found no drift.
func applyAll(t *testing.T, ns string, docs []imported) {
	t.Helper()
	for _, d := range docs {
		o := d.obj.DeepCopy()
		if err := suite.kube.Create(t.Context(), o); err != nil {
			t.Fatalf("the CRD refused imported object %s: %v\n%s", o.Name, err, d.raw)
		}
	}
	t.Cleanup(func() {
		_ = suite.kube.DeleteAllOf(context.Background(), &v1alpha1.OAuthClient{}, client.InNamespace(ns))
	})
	var notReady []string
	defer func() {
		if t.Failed() {
			t.Logf("not Ready/Reconciled:\n%s", strings.Join(notReady, "\n"))
		}
	}()
	eventually(t, 90*time.Second, fmt.Sprintf("%d imported objects Ready with reason Reconciled", len(docs)), func() bool {
		list := &v1alpha1.OAuthClientList{}
		if err := suite.kube.List(t.Context(), list, client.InNamespace(ns)); err != nil {
			t.Fatal(err)
		}
		notReady = notReady[:0]
		for _, o := range list.Items {
			c := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady)
			if c != nil && (c.Reason == v1alpha1.ReasonDriftDetected || meta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionStalled)) {
				t.Fatalf("%s will not become Ready/Reconciled: %s: %s", o.Name, c.Reason, c.Message) // both are final
			}
			if c == nil || c.Status != metav1.ConditionTrue || c.Reason != v1alpha1.ReasonReconciled || o.Status.ObservedGeneration != o.Generation {
				notReady = append(notReady, fmt.Sprintf("  %s: %+v", o.Name, c))
			}
		}
		return len(list.Items) == len(docs) && len(notReady) == 0
	})
}

// noWrites asserts that the calls are all reads: no PATCH, and no write of any kind.
func noWrites(t *testing.T, calls []cfemu.RecordedRequest) {
	t.Helper()
	for _, c := range calls {
		if c.Route == cfemu.RouteUpdateClient || c.Method != "GET" {
			t.Errorf("Cloudflare write during the round trip: %s %s %s", c.Method, c.Path, c.Body)
		}
	}
}

// fleetImport is the fleet test's state: the seeded clients by name and the import.
type fleetImport struct {
	account, ns string
	clients     []cfapi.OAuthClient
	id          map[string]string   // client name -> the first such client's ID
	all         map[string][]string // client name -> every such client's ID
	docs        []imported
	got         map[string]imported // client ID -> its document
}

func TestImportFleetRoundTrip(t *testing.T) {
	f := &fleetImport{account: importFleetAccount, id: map[string]string{}, all: map[string][]string{}}
	f.clients = seed(t, f.account, fleet()...)
	if len(f.clients) != 50 {
		t.Fatalf("seeded %d clients, want 50", len(f.clients))
	}
	for _, c := range f.clients {
		f.all[c.ClientName] = append(f.all[c.ClientName], c.ClientID)
		f.id[c.ClientName] = f.all[c.ClientName][0]
	}
	if err := suite.emu.SetVerification(f.account, f.id["unverified"], cfapi.VerificationPending); err != nil {
		t.Fatal(err)
	}
	boundNS := namespace(t, "import-fleet-bound")
	bind(t, boundNS, "by-spec", f.account, f.id["bound-spec"], "spec")
	bind(t, boundNS, "by-annotation", f.account, f.id["bound-annotation"], "annotation")
	bind(t, boundNS, "by-status", f.account, f.id["bound-status"], "status")
	bind(t, boundNS, "other-account", importOtherAccount, f.id["bound-in-another-account"], "spec")

	f.ns = namespace(t, "import-fleet")
	r := importOnce(t, nil, f.account, "--credentials-secret", f.ns+"/cf", "-n", f.ns)
	f.docs = decodeImport(t, r.stdout)
	f.got = byClientID(f.docs)
	if len(f.docs) != 47 {
		t.Fatalf("imported %d objects, want 47 (50 minus 3 bound)\n%s", len(f.docs), r.stderr)
	}
	t.Run("skip bound", func(t *testing.T) { f.checkSkipped(t, r.stderr, boundNS) })
	if !strings.Contains(r.stderr, "2 manifests leave fields unmanaged because the CRD refuses Cloudflare's value") {
		t.Errorf("stderr does not point at the fields left out:\n%s", r.stderr)
	}
	t.Run("names", f.checkNames)
	t.Run("every document", func(t *testing.T) {
		for _, d := range f.docs {
			checkImportedDocument(t, d, f.account, f.ns, v1alpha1.ManagementPolicyObserve)
		}
	})
	t.Run("specs", f.checkSpecs)
	if t.Failed() {
		return
	}

	// Round trip: every object is admitted, Ready with no drift, and nothing is written.
	before := len(cloudflareCalls(f.account))
	applyAll(t, f.ns, f.docs)
	calls := cloudflareCalls(f.account)[before:]
	noWrites(t, calls)
	if len(calls) == 0 {
		t.Error("the operator made no Cloudflare call: the round trip proves nothing")
	}
	if o := get(t, f.ns, f.got[f.id["Public Portal"]].obj.Name); !meta.IsStatusConditionTrue(o.Status.Conditions, v1alpha1.ConditionPromoted) {
		t.Errorf("Public Portal is not reported Promoted: %+v", o.Status.Conditions)
	}
}

func (f *fleetImport) checkSkipped(t *testing.T, stderr, boundNS string) {
	if !strings.Contains(stderr, "skipped 3 clients already bound") {
		t.Errorf("stderr does not say why 3 clients were skipped:\n%s", stderr)
	}
	for _, want := range []string{boundNS + "/by-spec (spec.clientID)", boundNS + "/by-annotation (annotation " + v1alpha1.AnnotationClientID + ")", boundNS + "/by-status (status.clientID)"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr does not name %q:\n%s", want, stderr)
		}
	}
	for _, name := range []string{"bound-spec", "bound-annotation", "bound-status"} {
		if _, ok := f.got[f.id[name]]; ok {
			t.Errorf("client %q is bound in the cluster but was imported", name)
		}
	}
	if _, ok := f.got[f.id["bound-in-another-account"]]; !ok {
		t.Error("a client bound only under another account ID was skipped")
	}
}

func (f *fleetImport) checkNames(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range f.docs {
		if errs := validation.IsDNS1123Label(d.obj.Name); len(errs) > 0 || seen[d.obj.Name] {
			t.Errorf("name %q: duplicate %v or invalid %v", d.obj.Name, seen[d.obj.Name], errs)
		}
		seen[d.obj.Name] = true
	}
	webs := []string{}
	for _, c := range f.clients {
		if dnsLabel(c.ClientName) == "web" {
			webs = append(webs, f.got[c.ClientID].obj.Name)
		}
	}
	if diff := cmp.Diff([]string{"web", "web-3", "web-4", "web-5"}, webs); diff != "" {
		t.Errorf("duplicate names, in creation order (-want +got):\n%s", diff)
	}
	long := strings.Repeat("a", 40) + " " + strings.Repeat("b", 59)
	for clientID, want := range map[string]string{
		f.id["web-2"]:                      "web-2",
		f.id["api"]:                        "api",
		f.all["api"][1]:                    "api-2",
		f.id["Mobile App (PKCE)"]:          "mobile-app-pkce",
		f.id["  ÜBER—App!! (prod) "]:       "ber-app-prod",
		"c0ffee00c0ffee00c0ffee00c0ffee00": "client-c0ffee00",
		"beef0000beef0000beef0000beef0000": "client-beef0000",
		f.id[long]:                         strings.Repeat("a", 40) + "-" + strings.Repeat("b", 22),
		f.id["a.b.c"]:                      "a-b-c",
		f.id["UPPER_case_Name"]:            "upper-case-name",
	} {
		if f.got[clientID].obj.Name != want {
			t.Errorf("client %s: name %q, want %q", clientID, f.got[clientID].obj.Name, want)
		}
	}
}

// checkImportedDocument checks what every imported document must hold: its place,
// policies, credentials, no protocol scope, and the comment that fits its auth method.
func checkImportedDocument(t *testing.T, d imported, account, ns string, policy v1alpha1.ManagementPolicy) {
	t.Helper()
	s := d.obj.Spec
	deletion := v1alpha1.DeletionPolicyOrphan
	if policy == v1alpha1.ManagementPolicyManage {
		deletion = v1alpha1.DeletionPolicyDelete
	}
	if d.obj.Namespace != ns || s.AccountID != account || s.ManagementPolicy != policy || s.DeletionPolicy != deletion ||
		s.CredentialsRef == nil || s.CredentialsRef.Name != "cf" {
		t.Errorf("%s: namespace %q, account %q, policies %s/%s, credentialsRef %v", d.obj.Name, d.obj.Namespace, s.AccountID,
			s.ManagementPolicy, s.DeletionPolicy, s.CredentialsRef)
	}
	if s.Scopes != nil && (slices.Contains(*s.Scopes, "openid") || slices.Contains(*s.Scopes, "offline_access")) {
		t.Errorf("%s: protocol scopes imported: %v", d.obj.Name, *s.Scopes)
	}
	if !strings.Contains(d.raw, "# Cloudflare OAuth client "+d.obj.AdoptedClientID()) || !strings.Contains(d.raw, "managementPolicy "+string(policy)+":") {
		t.Errorf("%s: the comment does not name the client and its policy:\n%s", d.obj.Name, d.raw)
	}
	secretless := s.TokenEndpointAuthMethod != nil && *s.TokenEndpointAuthMethod == v1alpha1.AuthMethodNone
	if secretless != strings.Contains(d.raw, "has no client secret and needs none") ||
		secretless == strings.Contains(d.raw, "cannot be recovered") ||
		secretless == strings.Contains(d.raw, "kubectl cfoauth rotate "+d.obj.Name+" -n "+ns+" --wait") {
		t.Errorf("%s: the secret note does not fit the auth method:\n%s", d.obj.Name, d.raw)
	}
}

func (f *fleetImport) checkSpecs(t *testing.T) {
	for _, d := range f.docs {
		public := d.obj.Spec.ClientName != nil && strings.HasPrefix(*d.obj.Spec.ClientName, "Public")
		if v := d.obj.Spec.Visibility; (v != nil) != public || (v != nil && *v != v1alpha1.VisibilityPublic) {
			t.Errorf("%s: visibility %v; want public exactly for the public clients", d.obj.Name, v)
		}
	}
	want := v1alpha1.OAuthClientSpec{
		AccountID:               f.account,
		CredentialsRef:          &v1alpha1.CredentialsSecretReference{Name: "cf"},
		ClientID:                ptr(f.id["Full Client"]),
		ClientName:              ptr("Full Client"),
		ClientURI:               ptr("https://full.example.com"),
		LogoURI:                 ptr("https://full.example.com/logo.png"),
		PolicyURI:               ptr("https://full.example.com/privacy"),
		TosURI:                  ptr("https://full.example.com/tos"),
		RedirectURIs:            &[]string{"https://full.example.com/a", "https://full.example.com/b"},
		PostLogoutRedirectURIs:  &[]string{"https://full.example.com/bye"},
		AllowedCORSOrigins:      &[]string{"https://full.example.com"},
		GrantTypes:              &[]v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode, v1alpha1.GrantTypeRefreshToken},
		ResponseTypes:           &[]v1alpha1.ResponseType{v1alpha1.ResponseTypeCode, v1alpha1.ResponseTypeIDToken},
		Scopes:                  &[]string{"account.read", "zone.read"},
		OptionalScopes:          &[]string{"zone.read"},
		TokenEndpointAuthMethod: ptr(v1alpha1.AuthMethodClientSecretPost),
		ManagementPolicy:        v1alpha1.ManagementPolicyObserve,
		DeletionPolicy:          v1alpha1.DeletionPolicyOrphan,
	}
	if diff := cmp.Diff(want, f.got[f.id["Full Client"]].obj.Spec); diff != "" {
		t.Errorf("Full Client (-want +got):\n%s", diff)
	}
	if s := f.got[f.id["empty lists"]].obj.Spec; s.PostLogoutRedirectURIs != nil || s.AllowedCORSOrigins != nil || s.OptionalScopes != nil {
		t.Errorf("empty remote lists were imported as managed: %+v", s)
	}
	if s := f.got[f.id["identity only"]].obj.Spec; s.Scopes != nil || s.ResponseTypes == nil {
		t.Errorf("identity only: scopes %v (want absent: only protocol scopes remain), responseTypes %v", s.Scopes, s.ResponseTypes)
	}
	if s := f.got[f.id["duplicate scopes"]].obj.Spec; s.Scopes == nil || !slices.Equal(*s.Scopes, []string{"dns-records.edit", "zone.read"}) {
		t.Errorf("duplicate scopes: %v, want a set", s.Scopes)
	}
	httpLogo := f.got[f.id["http logo"]]
	if httpLogo.obj.Spec.LogoURI != nil || !strings.Contains(httpLogo.raw, `logoURI is left out (unmanaged): the CRD refuses Cloudflare's value "http://logo.example.com/x.png" (not https)`) {
		t.Errorf("http logo: logoURI %v; want it left out with a note:\n%s", httpLogo.obj.Spec.LogoURI, httpLogo.raw)
	}
	ipv6 := f.got[f.id["ipv6 loopback"]]
	if ipv6.obj.Spec.RedirectURIs != nil || !strings.Contains(ipv6.raw, `redirectURIs is left out (unmanaged)`) {
		t.Errorf("ipv6 loopback: redirectURIs %v; want them left out with a note:\n%s", ipv6.obj.Spec.RedirectURIs, ipv6.raw)
	}
}

func TestImportManageRoundTrip(t *testing.T) {
	account := importManageAccount
	clients := seed(t, account,
		remoteClient("billing"),
		remoteClient("billing", refresh),
		remoteClient("reports", func(c *cfapi.OAuthClient) {
			c.TokenEndpointAuthMethod = cfapi.AuthMethodClientSecretPost
			c.PostLogoutRedirectURIs = []string{"https://reports.example.com/bye"}
			c.Scopes, c.OptionalScopes = []string{"account.read", "analytics.read"}, []string{"analytics.read"}
		}),
		remoteClient("storefront", func(c *cfapi.OAuthClient) {
			c.Visibility = cfapi.VisibilityPublic
			c.ClientURI, c.LogoURI = "https://store.example.com", "https://store.example.com/logo.png"
			c.ClientURIVerification = &cfapi.ClientURIVerification{Status: cfapi.VerificationVerified, Text: "cloudflare_oauth_client_publisher=cdef"}
		}),
		remoteClient("rotated", func(c *cfapi.OAuthClient) { c.HasRotatedSecret = true }),
		remoteClient("left alone"),
	)
	ns := namespace(t, "import-manage")
	args := make([]string, 0, 15)
	args = append(args, "--credentials-secret", ns+"/cf", "-n", ns, "--manage")
	for _, c := range clients[:5] {
		args = append(args, "--client-id", c.ClientID)
	}
	r := importOnce(t, nil, account, args...)
	docs := decodeImport(t, r.stdout)
	if len(docs) != 5 {
		t.Fatalf("imported %d objects, want the 5 asked for", len(docs))
	}
	for _, d := range docs {
		checkImportedDocument(t, d, account, ns, v1alpha1.ManagementPolicyManage)
		if !strings.Contains(d.raw, "deleting this object DELETES the client in Cloudflare") {
			t.Errorf("%s: no warning about deletionPolicy Delete:\n%s", d.obj.Name, d.raw)
		}
	}

	before := len(cloudflareCalls(account))
	applyAll(t, ns, docs)
	noWrites(t, cloudflareCalls(account)[before:])
	for _, d := range docs {
		o := get(t, ns, d.obj.Name)
		if msg := meta.FindStatusCondition(o.Status.Conditions, v1alpha1.ConditionReady).Message; !strings.Contains(msg, "until a rotation") {
			t.Errorf("%s: Ready message %q does not say the secret is unknown until a rotation", o.Name, msg)
		}
		sec := &corev1.Secret{}
		if err := suite.kube.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: o.SecretName()}, sec); err != nil {
			t.Fatal(err)
		}
		if string(sec.Data[v1alpha1.SecretKeyClientID]) != d.obj.AdoptedClientID() || len(sec.Data[v1alpha1.SecretKeyClientSecret]) != 0 {
			t.Errorf("%s: Secret %s holds keys %v; want client_id only", o.Name, sec.Name, slices.Sorted(maps.Keys(sec.Data)))
		}
	}
}

func TestImportFiltersAndSkipBound(t *testing.T) {
	account := importFiltersAccount
	clients := seed(t, account,
		remoteClient("alpha"),
		remoteClient("beta", pkce),
		remoteClient("staging-one"),
		remoteClient("staging-two", refresh),
		remoteClient("bound"),
	)
	ns := namespace(t, "import-filters")
	bind(t, ns, "holder", account, clients[4].ClientID, "spec")
	// An object of another account named like a client: its name must not be reused.
	bind(t, ns, "alpha", importOtherAccount, clients[0].ClientID, "spec")
	creds := []string{"--credentials-secret", ns + "/cf", "-n", ns}

	tests := []struct {
		name       string
		args       []string
		want       []string
		wantStderr string
	}{
		{"skip bound by default", nil, []string{"alpha-2", "beta", "staging-one", "staging-two"}, "skipped 1 clients already bound"},
		{"skip-bound=false", []string{"--skip-bound=false"}, []string{"alpha-2", "beta", "holder", "staging-one", "staging-two"}, "account " + account + " has 5 OAuth clients"},
		{"client-id", []string{"--client-id", clients[1].ClientID, "--client-id", clients[3].ClientID}, []string{"beta", "staging-two"}, "3 do not match --client-id/--name-regex"},
		{"name-regex", []string{"--name-regex", "^staging-"}, []string{"staging-one", "staging-two"}, "3 do not match"},
		{"both filters", []string{"--name-regex", "staging", "--client-id", clients[2].ClientID}, []string{"staging-one"}, "4 do not match"},
		{"a bound client asked for by ID", []string{"--client-id", clients[4].ClientID}, []string{}, ns + "/holder (spec.clientID)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := importOnce(t, nil, account, append(slices.Clone(creds), tt.args...)...)
			if diff := cmp.Diff(tt.want, sortedNames(decodeImport(t, r.stdout))); diff != "" {
				t.Errorf("imported names (-want +got):\n%s", diff)
			}
			if !strings.Contains(r.stderr, tt.wantStderr) {
				t.Errorf("stderr lacks %q:\n%s", tt.wantStderr, r.stderr)
			}
		})
	}

	t.Run("unknown client-id", func(t *testing.T) {
		before := len(cloudflareCalls(account))
		r := plugin(t, nil, append([]string{"import", "--account-id", account, "--api-url", suite.apiURL, "--client-id", "0000aaaa"}, creds...)...)
		if r.code != 1 || !strings.Contains(r.stderr, "has no OAuth client 0000aaaa") || r.stdout != "" {
			t.Errorf("exit %d, stdout %q, stderr %q; want 1 naming the missing client and no output", r.code, r.stdout, r.stderr)
		}
		if n := len(cloudflareCalls(account)) - before; n != 1 {
			t.Errorf("%d Cloudflare calls, want 1", n)
		}
	})

	t.Run("json", func(t *testing.T) {
		checkJSONImport(t, importOnce(t, nil, account, append(slices.Clone(creds), "-o", "json")...), 4)
	})

	t.Run("token from the environment", func(t *testing.T) {
		r := importOnce(t, []string{"CLOUDFLARE_API_TOKEN=" + testToken}, account, "-n", ns, "--client-id", clients[0].ClientID)
		docs := decodeImport(t, r.stdout)
		if len(docs) != 1 || docs[0].obj.Spec.CredentialsRef != nil || !strings.Contains(docs[0].raw, "No spec.credentialsRef") {
			t.Errorf("want one object without credentialsRef and a comment saying so:\n%s", r.stdout)
		}
	})

	t.Run("cluster unreachable with skip-bound=false", func(t *testing.T) {
		r := importOnce(t, []string{"CLOUDFLARE_API_TOKEN=" + testToken}, account, "-n", ns, "--skip-bound=false", "--server", "https://127.0.0.1:1")
		if len(decodeImport(t, r.stdout)) != 5 || !strings.Contains(r.stderr, "warning: could not list OAuthClients") {
			t.Errorf("want all 5 clients and a warning that names were not checked:\n%s", r.stderr)
		}
	})

	t.Run("credentials Secret of another namespace", func(t *testing.T) {
		r := importOnce(t, nil, account, "--credentials-secret", ns+"/cf", "-n", "elsewhere", "--client-id", clients[0].ClientID)
		docs := decodeImport(t, r.stdout)
		if len(docs) != 1 || docs[0].obj.Namespace != "elsewhere" || docs[0].obj.Spec.CredentialsRef != nil || docs[0].obj.Name != "alpha" {
			t.Errorf("want alpha in namespace elsewhere without credentialsRef:\n%s", r.stdout)
		}
	})
}

func sortedNames(docs []imported) []string {
	out := make([]string, 0, len(docs))
	for _, d := range docs {
		out = append(out, d.obj.Name)
	}
	slices.Sort(out)
	return out
}

// checkJSONImport checks that -o json printed a v1 List of OAuthClients, without
// comments, and the secret note once on stderr.
func checkJSONImport(t *testing.T, r result, items int) {
	t.Helper()
	var list struct {
		APIVersion string                 `json:"apiVersion"`
		Kind       string                 `json:"kind"`
		Items      []v1alpha1.OAuthClient `json:"items"`
	}
	dec := json.NewDecoder(strings.NewReader(r.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&list); err != nil {
		t.Fatalf("-o json is not a List of OAuthClients: %v\n%s", err, r.stdout)
	}
	if list.APIVersion != "v1" || list.Kind != "List" || len(list.Items) != items {
		t.Fatalf("List %s/%s with %d items, want v1/List with %d", list.APIVersion, list.Kind, len(list.Items), items)
	}
	for _, o := range list.Items {
		if o.APIVersion != v1alpha1.GroupVersion.String() || o.Kind != "OAuthClient" || o.AdoptedClientID() == "" {
			t.Errorf("item %s: %s/%s, clientID %q", o.Name, o.APIVersion, o.Kind, o.AdoptedClientID())
		}
	}
	if strings.Contains(r.stdout, "#") || strings.Count(r.stderr, "cannot be recovered") != 1 {
		t.Errorf("the secret note must be on stderr once, not in the JSON:\nstdout %s\nstderr %s", r.stdout, r.stderr)
	}
}

func TestImportUsageAndCredentialErrors(t *testing.T) {
	account := importErrorsAccount
	seed(t, account, remoteClient("only"))
	ns := namespace(t, "import-errors")
	if err := suite.kube.Create(t.Context(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "empty"},
		StringData: map[string]string{"token": testToken},
	}); err != nil {
		t.Fatal(err)
	}
	const refused = "refused-token-9d41"
	base := []string{"import", "--api-url", suite.apiURL, "-n", ns}
	tests := []struct {
		name     string
		env      []string
		args     []string
		wantCode int
		wantErr  string
		wantList bool // the one List call is made (and refused)
	}{
		{"missing account", nil, nil, 2, "--account-id is required", false},
		{"short account", nil, []string{"--account-id", "abc123"}, 2, `--account-id "abc123" is not a Cloudflare account ID`, false},
		{"uppercase account", nil, []string{"--account-id", strings.ToUpper(account)}, 2, "32 lowercase hexadecimal", false},
		{"bad regex", nil, []string{"--account-id", account, "--name-regex", "(web"}, 2, "--name-regex: error parsing regexp", false},
		{"bad output", nil, []string{"--account-id", account, "-o", "table"}, 2, `--output must be yaml or json, not "table"`, false},
		{"bad client id", nil, []string{"--account-id", account, "--client-id", "a b"}, 2, `--client-id "a b"`, false},
		{"bad secret ref", nil, []string{"--account-id", account, "--credentials-secret", "a/b/c"}, 2, "must be NAMESPACE/NAME", false},
		{"bad api url", nil, []string{"--account-id", account, "--api-url", "ftp://x"}, 2, "--api-url", false},
		{"stray argument", nil, []string{"--account-id", account, "extra"}, 2, "want no arguments", false},
		{"no credentials", nil, []string{"--account-id", account}, 1, "no Cloudflare credentials: set CLOUDFLARE_API_TOKEN", false},
		{"refused token", []string{"CLOUDFLARE_API_TOKEN=" + refused}, []string{"--account-id", account}, 1, "HTTP 401", true},
		{"malformed token", []string{"CLOUDFLARE_API_TOKEN=" + refused + "\n"}, []string{"--account-id", account}, 1, "CLOUDFLARE_API_TOKEN is malformed", false},
		{"missing Secret", nil, []string{"--account-id", account, "--credentials-secret", ns + "/nope"}, 1, "credentials Secret " + ns + "/nope not found", false},
		{"Secret without keys", nil, []string{"--account-id", account, "--credentials-secret", "empty"}, 1, `credentials Secret ` + ns + `/empty has no key "apiToken"`, false},
		{"cluster unreachable", []string{"CLOUDFLARE_API_TOKEN=" + testToken}, []string{"--account-id", account, "--server", "https://127.0.0.1:1"}, 1, "listing OAuthClients in every namespace, to skip clients already bound", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(cloudflareCalls(account))
			r := plugin(t, tt.env, append(slices.Clone(base), tt.args...)...)
			noToken(t, r)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) || r.stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want %d and %q", r.code, r.stdout, r.stderr, tt.wantCode, tt.wantErr)
			}
			if strings.Contains(r.stderr, refused) {
				t.Errorf("the refused token is printed: %q", r.stderr)
			}
			if tt.wantCode == 2 && !strings.Contains(r.stderr, "kubectl cfoauth import --help") {
				t.Errorf("no usage hint: %q", r.stderr)
			}
			calls := cloudflareCalls(account)[before:]
			if tt.wantList != (len(calls) == 1) || len(calls) > 1 {
				t.Errorf("Cloudflare calls %v, want a List: %v", calls, tt.wantList)
			}
		})
	}

	help := plugin(t, nil, "import", "--help")
	if help.code != 0 || !strings.Contains(help.stdout, "Examples:") || !strings.Contains(help.stdout, "--skip-bound") {
		t.Errorf("import --help: exit %d\n%s", help.code, help.stdout)
	}
}
