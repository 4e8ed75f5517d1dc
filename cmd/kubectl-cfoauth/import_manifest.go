package main

import (
	"cmp"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// This file turns a Cloudflare client into the OAuthClient that adopts it: a spec the
// CRD admits and in which the operator finds no drift, a unique name, and the comment
// printed above it.

// scopePattern is the CRD's rule for every entry of scopes and optionalScopes.
var scopePattern = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]*$`)

// protocolScopes are added and removed by Cloudflare itself (from grant and response
// types); the operator ignores them when it compares scopes, so they are not imported.
var protocolScopes = []string{"openid", "offline_access"}

// manifest is an OAuthClient as printed: no status, no server-set metadata.
type manifest struct {
	metav1.TypeMeta `json:",inline"`
	Metadata        manifestMeta             `json:"metadata"`
	Spec            v1alpha1.OAuthClientSpec `json:"spec"`
}

type manifestMeta struct {
	Name      string `json:"name"`
	Namespace string `json:"namespace"`
}

// document is one imported client: its manifest and what its comment says.
type document struct {
	remote *cfapi.OAuthClient
	obj    manifest
	base   string   // the sanitised client name, before de-duplication
	notes  []string // fields left out because the CRD would refuse Cloudflare's value
}

func newDocument(c *cfapi.OAuthClient, o *importOptions, ns, credsRef string) *document {
	d := &document{remote: c, base: dnsLabel(c.ClientName)}
	if d.base == "" {
		d.base = dnsLabel("client-" + c.ClientID[:min(8, len(c.ClientID))])
	}
	d.obj = manifest{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "OAuthClient"},
		Metadata: manifestMeta{Namespace: ns},
		Spec:     d.spec(o, credsRef),
	}
	return d
}

// spec is the remote client as an adopting spec: every field Cloudflare holds that the
// CRD admits, so that the operator finds no drift. An empty field is left out (absent is
// unmanaged), and so is a value the CRD would refuse, with a note.
func (d *document) spec(o *importOptions, credsRef string) v1alpha1.OAuthClientSpec {
	c := d.remote
	id := c.ClientID
	s := v1alpha1.OAuthClientSpec{AccountID: o.accountID, ClientID: &id,
		ManagementPolicy: v1alpha1.ManagementPolicyObserve, DeletionPolicy: v1alpha1.DeletionPolicyOrphan}
	if o.manage {
		s.ManagementPolicy, s.DeletionPolicy = v1alpha1.ManagementPolicyManage, v1alpha1.DeletionPolicyDelete
	}
	if credsRef != "" {
		s.CredentialsRef = &v1alpha1.CredentialsSecretReference{Name: credsRef}
	}
	s.ClientName = d.str("clientName", c.ClientName, func(v string) string {
		return refusedIf(utf8.RuneCountInString(v) > 255, "longer than 255 characters")
	})
	s.ClientURI = d.str("clientURI", c.ClientURI, checkHTTPS)
	s.LogoURI = d.str("logoURI", c.LogoURI, checkHTTPS)
	s.PolicyURI = d.str("policyURI", c.PolicyURI, checkHTTPS)
	s.TosURI = d.str("tosURI", c.TosURI, checkHTTPS)
	s.RedirectURIs = d.list("redirectURIs", c.RedirectURIs, 32, checkRedirect(false))
	s.PostLogoutRedirectURIs = d.list("postLogoutRedirectURIs", c.PostLogoutRedirectURIs, 32, checkRedirect(false))
	s.AllowedCORSOrigins = d.list("allowedCORSOrigins", c.AllowedCORSOrigins, 32, checkRedirect(true))
	if gt := d.list("grantTypes", c.GrantTypes, 2, oneOf(v1alpha1.GrantTypeAuthorizationCode, v1alpha1.GrantTypeRefreshToken)); gt != nil {
		if slices.Contains(*gt, string(v1alpha1.GrantTypeAuthorizationCode)) {
			s.GrantTypes = asTyped[v1alpha1.GrantType](*gt)
		} else {
			d.leaveOut("grantTypes", "the CRD requires authorization_code, which Cloudflare's grant types lack")
		}
	}
	if rt := d.list("responseTypes", c.ResponseTypes, 3, oneOf(v1alpha1.ResponseTypeCode, v1alpha1.ResponseTypeToken, v1alpha1.ResponseTypeIDToken)); rt != nil {
		s.ResponseTypes = asTyped[v1alpha1.ResponseType](*rt)
	}
	scopes := slices.DeleteFunc(slices.Clone(c.Scopes), func(sc string) bool { return slices.Contains(protocolScopes, sc) })
	s.Scopes = d.list("scopes", scopes, 128, checkScope)
	s.OptionalScopes = d.list("optionalScopes", c.OptionalScopes, 128, func(v string) string {
		if v == "offline" || slices.Contains(protocolScopes, v) {
			return "a protocol scope, never optional"
		}
		if s.Scopes == nil || !slices.Contains(*s.Scopes, v) {
			return "not among the imported scopes"
		}
		return checkScope(v)
	})
	if m := c.TokenEndpointAuthMethod; m != "" {
		s.TokenEndpointAuthMethod = asTypedPtr[v1alpha1.TokenEndpointAuthMethod](d.str("tokenEndpointAuthMethod", m,
			oneOf(v1alpha1.AuthMethodNone, v1alpha1.AuthMethodClientSecretBasic, v1alpha1.AuthMethodClientSecretPost)))
	}
	if c.Visibility == cfapi.VisibilityPublic {
		public := v1alpha1.VisibilityPublic
		s.Visibility = &public
	}
	return s
}

// str imports a string field: nil when empty or refused by check (with a note).
func (d *document) str(field, v string, check func(string) string) *string {
	if v == "" {
		return nil
	}
	if why := check(v); why != "" {
		d.refuse(field, v, why)
		return nil
	}
	return &v
}

// list imports a list field as a sorted set (the CRD lists are sets; the operator
// compares them as sets): nil when empty, or when any entry is refused (with a note).
func (d *document) list(field string, v []string, maxItems int, check func(string) string) *[]string {
	set := slices.Compact(slices.Sorted(slices.Values(v)))
	if len(set) == 0 {
		return nil
	}
	if len(set) > maxItems {
		d.leaveOut(field, fmt.Sprintf("Cloudflare holds %d entries, the CRD allows at most %d", len(set), maxItems))
		return nil
	}
	for _, s := range set {
		if why := check(s); why != "" {
			d.refuse(field, s, why)
			return nil
		}
	}
	return &set
}

// leaveOut records a field the import leaves unmanaged because the CRD would refuse it.
func (d *document) leaveOut(field, why string) {
	d.notes = append(d.notes, fmt.Sprintf("%s is left out (unmanaged): %s.", field, why))
}

func (d *document) refuse(field, value, why string) {
	d.leaveOut(field, fmt.Sprintf("the CRD refuses Cloudflare's value %q (%s)", value, why))
}

func refusedIf(bad bool, why string) string {
	if bad {
		return why
	}
	return ""
}

func oneOf[T ~string](allowed ...T) func(string) string {
	names := make([]string, len(allowed))
	for i, v := range allowed {
		names[i] = string(v)
	}
	why := "not one of " + strings.Join(names, ", ")
	return func(v string) string { return refusedIf(!slices.Contains(allowed, T(v)), why) }
}

func asTyped[T ~string](in []string) *[]T {
	out := make([]T, len(in))
	for i, v := range in {
		out[i] = T(v)
	}
	return &out
}

func asTypedPtr[T ~string](in *string) *T {
	if in == nil {
		return nil
	}
	v := T(*in)
	return &v
}

// checkHTTPS is the CRD's rule for clientURI, logoURI, policyURI and tosURI, with the
// apiserver's CEL url library semantics (ParseRequestURI, then Parse).
func checkHTTPS(v string) string {
	u, why := celURL(v)
	switch {
	case why != "":
		return why
	case u.Scheme != "https":
		return "not https"
	case u.Hostname() == "":
		return "no host"
	}
	return ""
}

// checkRedirect is the CRD's rule for redirect URIs or, with origin, CORS origins.
func checkRedirect(origin bool) func(string) string {
	return func(v string) string {
		u, why := celURL(v)
		switch {
		case why != "":
			return why
		case u.Hostname() == "":
			return "no host"
		case u.Scheme != "https" && (u.Scheme != "http" || (u.Hostname() != "localhost" && u.Hostname() != "127.0.0.1")):
			return "neither https nor http on localhost or 127.0.0.1"
		case origin && u.EscapedPath() != "":
			return "a path"
		case !origin && strings.Contains(v, "#"):
			return "a fragment"
		}
		return ""
	}
}

func celURL(v string) (*url.URL, string) {
	if utf8.RuneCountInString(v) > 2048 {
		return nil, "longer than 2048 characters"
	}
	if _, err := url.ParseRequestURI(v); err != nil {
		return nil, "not an absolute URL"
	}
	u, err := url.Parse(v)
	if err != nil {
		return nil, "not an absolute URL"
	}
	return u, ""
}

func checkScope(v string) string {
	switch {
	case len(v) > 128:
		return "longer than 128 characters"
	case strings.Contains(v, ":"):
		return "contains ':'"
	case !scopePattern.MatchString(v):
		return "not a lowercase identifier"
	}
	return ""
}

// dnsLabel turns a client name into a DNS-1123 label: lowercase letters and digits,
// every other run of characters one '-', no '-' at either end, at most 63 characters.
func dnsLabel(name string) string {
	var b strings.Builder
	dash := false
	for _, r := range strings.ToLower(name) {
		if (r >= 'a' && r <= 'z') || (r >= '0' && r <= '9') {
			if dash && b.Len() > 0 {
				b.WriteByte('-')
			}
			b.WriteRune(r)
			dash = false
		} else {
			dash = true
		}
	}
	s := b.String()
	if len(s) > 63 {
		s = strings.TrimRight(s[:63], "-")
	}
	return s
}

// assignNames gives every document a unique metadata.name. Documents are ordered by
// sanitised name, then creation time, then ID, so the output is stable. An object in
// the output namespace that already adopts a client keeps its name for it; otherwise a
// name taken by another object is never reused, since applying over it would rebind
// that object. The first client of each name gets it, later ones -2, -3, ...
func assignNames(docs []*document, cluster clusterView) {
	slices.SortStableFunc(docs, func(x, y *document) int {
		return cmp.Or(strings.Compare(x.base, y.base), remoteCreatedAt(x.remote).Compare(remoteCreatedAt(y.remote)),
			strings.Compare(x.remote.ClientID, y.remote.ClientID))
	})
	used := make(map[string]bool, len(cluster.names)+len(docs))
	for _, name := range slices.Sorted(maps.Keys(cluster.names)) {
		id := cluster.names[name]
		for _, d := range docs {
			if id != "" && id == d.remote.ClientID && d.obj.Metadata.Name == "" {
				d.obj.Metadata.Name = name
			}
		}
		used[name] = true
	}
	for _, d := range docs {
		if d.obj.Metadata.Name == "" && !used[d.base] {
			d.obj.Metadata.Name, used[d.base] = d.base, true
		}
	}
	for _, d := range docs {
		for n := 2; d.obj.Metadata.Name == ""; n++ {
			suffix := "-" + strconv.Itoa(n)
			name := strings.TrimRight(d.base[:min(len(d.base), 63-len(suffix))], "-") + suffix
			if !used[name] {
				d.obj.Metadata.Name, used[name] = name, true
			}
		}
	}
}

func remoteCreatedAt(c *cfapi.OAuthClient) time.Time {
	if c.CreatedAt == nil {
		return time.Time{}
	}
	return *c.CreatedAt
}

// comment is the YAML comment above a document. Every value from Cloudflare in it is
// quoted, so no client name can end the comment and inject YAML.
func (d *document) comment(o *importOptions) string {
	c, name, ns := d.remote, d.obj.Metadata.Name, d.obj.Metadata.Namespace
	lines := []string{fmt.Sprintf("Cloudflare OAuth client %s %q, account %s, imported by kubectl cfoauth.", c.ClientID, c.ClientName, o.accountID)}
	if o.manage {
		lines = append(lines,
			"managementPolicy Manage: the operator changes the client in Cloudflare to match this spec.",
			"deletionPolicy Delete: deleting this object DELETES the client in Cloudflare, revoking its authorizations.")
	} else {
		lines = append(lines,
			"managementPolicy Observe: the operator only reads the client and reports drift (Ready reason",
			"DriftDetected); it never writes to Cloudflare. deletionPolicy Orphan: deleting this object leaves the client.")
	}
	if c.TokenEndpointAuthMethod == cfapi.AuthMethodNone {
		lines = append(lines, "PKCE client (tokenEndpointAuthMethod none): it has no client secret and needs none.")
	} else {
		lines = append(lines,
			"The client secret cannot be recovered: Cloudflare returns it only when it creates a client.",
			fmt.Sprintf("To get a new one, set managementPolicy: Manage, then run `kubectl cfoauth rotate %s -n %s --wait`", name, ns),
			fmt.Sprintf("(or set spec.secretRotation.rotationID); it lands in Secret %s%s. The secret in use", name, v1alpha1.DefaultSecretNameSuffix),
			"today keeps working for the overlap (24h by default), then the operator deletes it in Cloudflare.")
	}
	if d.obj.Spec.CredentialsRef == nil {
		lines = append(lines, "No spec.credentialsRef: the operator's default credentials apply. To use a Secret of this",
			"namespace (key apiToken, or email and apiKey), add credentialsRef: {name: SECRET} to the spec.")
	}
	lines = append(lines, d.notes...)
	return "# " + strings.Join(lines, "\n# ") + "\n"
}
