//go:build !benchbaseline

package controller

import "context"

// observeBaseline is the benchmark's per-object GET observation, compiled only into
// benchmark builds (see observe_baseline.go); here it never handles a pass.
func (r *OAuthClientReconciler) observeBaseline(context.Context, *pass) (bool, error) {
	return false, nil
}
