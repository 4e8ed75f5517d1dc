package controller

import (
	"slices"
	"strings"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// protocolScopes are added and removed by Cloudflare itself from grant_types and
// response_types (offline_access from refresh_token, openid from id_token). They are
// ignored when comparing scopes, so a spec that lists or omits them never PATCHes.
var protocolScopes = []string{"openid", "offline_access"}

// drift is the difference between a spec and a remote client: one PATCH body holding
// only the managed fields that differ, and their spec names for conditions and Events.
type drift struct {
	params cfapi.UpdateOAuthClientParams
	fields []string
}

func (d drift) empty() bool { return len(d.fields) == 0 }

func (d drift) String() string { return strings.Join(d.fields, ", ") }

// computeDrift compares every managed (present) spec field with the remote client.
// Visibility is not part of it: promotion is gated separately (see promotion).
func computeDrift(spec *v1alpha1.OAuthClientSpec, remote *cfapi.OAuthClient) drift {
	var d drift
	str := func(name string, want *string, got string, set func(*string)) {
		if want != nil && *want != got {
			v := *want
			set(&v)
			d.fields = append(d.fields, name)
		}
	}
	list := func(name string, want *[]string, got []string, equal func(a, b []string) bool, set func(*[]string)) {
		if want != nil && !equal(*want, got) {
			v := slices.Clone(*want)
			if v == nil {
				v = []string{}
			}
			set(&v)
			d.fields = append(d.fields, name)
		}
	}
	p := &d.params
	str("clientName", spec.ClientName, remote.ClientName, func(v *string) { p.ClientName = v })
	str("clientURI", spec.ClientURI, remote.ClientURI, func(v *string) { p.ClientURI = v })
	str("logoURI", spec.LogoURI, remote.LogoURI, func(v *string) { p.LogoURI = v })
	str("policyURI", spec.PolicyURI, remote.PolicyURI, func(v *string) { p.PolicyURI = v })
	str("tosURI", spec.TosURI, remote.TosURI, func(v *string) { p.TosURI = v })
	if spec.TokenEndpointAuthMethod != nil {
		str("tokenEndpointAuthMethod", (*string)(spec.TokenEndpointAuthMethod), remote.TokenEndpointAuthMethod, func(v *string) { p.TokenEndpointAuthMethod = v })
	}
	// Every list is a set in the CRD (listType=set) and Cloudflare does not promise to
	// keep any order: compare them as sets, or a reordered answer is a PATCH every pass.
	list("redirectURIs", spec.RedirectURIs, remote.RedirectURIs, sameSet, func(v *[]string) { p.RedirectURIs = v })
	list("postLogoutRedirectURIs", spec.PostLogoutRedirectURIs, remote.PostLogoutRedirectURIs, sameSet, func(v *[]string) { p.PostLogoutRedirectURIs = v })
	list("allowedCORSOrigins", spec.AllowedCORSOrigins, remote.AllowedCORSOrigins, sameSet, func(v *[]string) { p.AllowedCORSOrigins = v })
	list("grantTypes", stringsOf(spec.GrantTypes), remote.GrantTypes, sameSet, func(v *[]string) { p.GrantTypes = v })
	list("responseTypes", stringsOf(spec.ResponseTypes), remote.ResponseTypes, sameSet, func(v *[]string) { p.ResponseTypes = v })
	list("scopes", spec.Scopes, remote.Scopes, sameScopes, func(v *[]string) { p.Scopes = v })
	list("optionalScopes", spec.OptionalScopes, remote.OptionalScopes, sameSet, func(v *[]string) { p.OptionalScopes = v })
	return d
}

// stringsOf converts a managed list of a string type to a managed []string.
func stringsOf[T ~string](in *[]T) *[]string {
	if in == nil {
		return nil
	}
	out := make([]string, len(*in))
	for i, v := range *in {
		out[i] = string(v)
	}
	return &out
}

// sameSet compares two lists as sets: Cloudflare does not promise to keep their order.
func sameSet(a, b []string) bool {
	return slices.Equal(setOf(a), setOf(b))
}

// sameScopes compares scopes as sets, ignoring the protocol scopes Cloudflare manages.
func sameScopes(a, b []string) bool {
	strip := func(in []string) []string {
		return slices.DeleteFunc(slices.Clone(in), func(s string) bool { return slices.Contains(protocolScopes, s) })
	}
	return sameSet(strip(a), strip(b))
}

func setOf(in []string) []string {
	out := slices.Clone(in)
	slices.Sort(out)
	return slices.Compact(out)
}

// promotionGaps lists what Cloudflare still requires before it accepts a promotion to
// public, judged on the client as it will be once the drift PATCH has landed. An empty
// result means the PATCH may carry visibility: public.
func promotionGaps(spec *v1alpha1.OAuthClientSpec, remote *cfapi.OAuthClient) (gaps []string, awaitingVerification bool) {
	name, logo, scopes := remote.ClientName, remote.LogoURI, remote.Scopes
	if spec.ClientName != nil {
		name = *spec.ClientName
	}
	if spec.LogoURI != nil {
		logo = *spec.LogoURI
	}
	if spec.Scopes != nil {
		scopes = *spec.Scopes
	}
	if name == "" {
		gaps = append(gaps, "clientName is empty")
	}
	if logo == "" {
		gaps = append(gaps, "logoURI is not set")
	}
	if !slices.ContainsFunc(scopes, func(s string) bool { return strings.Contains(s, ".") }) {
		gaps = append(gaps, "no non-identity scope (such as account.read) is requested")
	}
	clientURI := remote.ClientURI
	if spec.ClientURI != nil {
		clientURI = *spec.ClientURI
	}
	switch {
	case clientURI == "":
		gaps = append(gaps, "clientURI is not set (its host must be verified)")
	case clientURI != remote.ClientURI || remote.ClientURIVerification == nil || remote.ClientURIVerification.Status != cfapi.VerificationVerified:
		awaitingVerification = true
		gaps = append(gaps, "the clientURI host is not verified yet (publish status.verificationRecord)")
	}
	return gaps, awaitingVerification
}
