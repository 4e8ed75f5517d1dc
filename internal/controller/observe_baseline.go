//go:build benchbaseline

package controller

import (
	"context"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// BenchPerObjectGET replaces the shared List snapshot with one GET per object per pass:
// the way most controllers observe, and the benchmark's baseline. It exists only in
// builds with the benchbaseline tag (hack/bench builds the manager so); the production
// binary cannot observe this way.
var BenchPerObjectGET bool

// observeBaseline observes with one GET when BenchPerObjectGET is set.
func (r *OAuthClientReconciler) observeBaseline(ctx context.Context, p *pass) (bool, error) {
	if !BenchPerObjectGET || boundIDOf(p.obj) == "" {
		return false, nil
	}
	p.boundID = boundIDOf(p.obj)
	p.createdByUs = p.obj.AdoptedClientID() == ""
	c, err := p.api.GetOAuthClient(ctx, p.accountID(), p.boundID)
	if cfapi.IsNotFound(err) {
		return true, nil
	}
	if err != nil {
		return true, err
	}
	p.remote = c
	return true, nil
}
