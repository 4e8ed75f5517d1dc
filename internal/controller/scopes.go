package controller

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	logf "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// scopeCatalogTTL is how long Cloudflare's scope catalogue (GET /oauth/scopes) is
// trusted; a 400 about scopes refreshes it sooner.
const scopeCatalogTTL = 24 * time.Hour

// scopeCatalogs caches the scope catalogue per set of credentials.
type scopeCatalogs struct {
	mu      sync.Mutex
	byCreds map[string]*scopeCatalog
}

type scopeCatalog struct {
	ids     map[string]bool
	sorted  []string
	fetched time.Time
}

func newScopeCatalogs() *scopeCatalogs { return &scopeCatalogs{byCreds: map[string]*scopeCatalog{}} }

// get returns the catalogue for the credentials, fetching it when absent or stale.
func (s *scopeCatalogs) get(ctx context.Context, creds string, api CloudflareAPI, now time.Time) (*scopeCatalog, error) {
	s.mu.Lock()
	c := s.byCreds[creds]
	s.mu.Unlock()
	if c != nil && now.Sub(c.fetched) < scopeCatalogTTL {
		return c, nil
	}
	scopes, err := api.ListOAuthScopes(ctx)
	if err != nil {
		return nil, err
	}
	c = &scopeCatalog{ids: make(map[string]bool, len(scopes)), fetched: now}
	for _, sc := range scopes {
		c.ids[sc.ID] = true
		c.sorted = append(c.sorted, sc.ID)
	}
	sort.Strings(c.sorted)
	s.mu.Lock()
	s.byCreds[creds] = c
	s.mu.Unlock()
	return c, nil
}

// invalidate drops the catalogue of the credentials, e.g. after Cloudflare rejected a
// scope the catalogue had.
func (s *scopeCatalogs) invalidate(creds string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byCreds, creds)
}

// checkScopes verifies, before a write, that every dotted scope in scopes and
// optionalScopes exists in Cloudflare's catalogue (identity scopes without a dot are
// always allowed). An unknown scope stalls the object with the nearest catalogue
// entries as suggestions, and no write is attempted. If the catalogue cannot be read,
// the check is skipped: Cloudflare validates the write anyway.
func (r *OAuthClientReconciler) checkScopes(ctx context.Context, p *pass) error {
	spec := &p.obj.Spec
	var wanted []string
	for _, list := range []*[]string{spec.Scopes, spec.OptionalScopes} {
		if list != nil {
			wanted = append(wanted, *list...)
		}
	}
	if !slices.ContainsFunc(wanted, func(s string) bool { return strings.Contains(s, ".") }) {
		return nil
	}
	cat, err := r.scopes.get(ctx, p.credsKey, p.api, r.now())
	if err != nil {
		if _, limited := cfapi.IsRateLimited(err); limited {
			return err
		}
		logf.FromContext(ctx).V(1).Info("scope catalogue unavailable; leaving scope validation to Cloudflare", "error", err.Error())
		return nil
	}
	var problems []string
	for _, s := range wanted {
		if !strings.Contains(s, ".") || cat.ids[s] {
			continue
		}
		msg := fmt.Sprintf("scope %q is not in Cloudflare's catalogue", s)
		if near := nearest(s, cat.sorted, 3); len(near) > 0 {
			msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(near, ", "))
		}
		problems = append(problems, msg)
	}
	if len(problems) > 0 {
		return &failure{kind: kindSpec, reason: v1alpha1.ReasonUnknownScope, message: strings.Join(problems, "; ")}
	}
	return nil
}

// nearest returns up to n catalogue entries closest to s by edit distance, if close
// enough to be a plausible typo.
func nearest(s string, candidates []string, n int) []string {
	type scored struct {
		id   string
		dist int
	}
	limit := max(3, len(s)/3)
	var out []scored
	for _, c := range candidates {
		if d := editDistance(s, c); d <= limit {
			out = append(out, scored{c, d})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].dist < out[j].dist })
	ids := make([]string, 0, n)
	for i := 0; i < len(out) && i < n; i++ {
		ids = append(ids, out[i].id)
	}
	return ids
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// isScopeError reports whether Cloudflare rejected a request because of a scope.
func isScopeError(err error) bool {
	apiErr, ok := asAPIError(err)
	if !ok {
		return false
	}
	for _, e := range apiErr.Errors {
		if e.Source != nil && (strings.HasPrefix(e.Source.Pointer, "/scopes") || strings.HasPrefix(e.Source.Pointer, "/optional_scopes")) {
			return true
		}
		if strings.Contains(strings.ToLower(e.Message), "scope") {
			return true
		}
	}
	return false
}
