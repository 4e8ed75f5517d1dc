package controller

import (
	"context"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Token verification goes through the pacer like every other call of the user.

var _ tokenVerifier = (*pacedAPI)(nil)

func (p *pacedAPI) verifier() (tokenVerifier, error) {
	v, ok := p.api.(tokenVerifier)
	if !ok {
		return nil, errNoVerify
	}
	return v, nil
}

func (p *pacedAPI) VerifyUserToken(ctx context.Context) (cfapi.TokenVerification, error) {
	v, err := p.verifier()
	if err != nil {
		return cfapi.TokenVerification{}, err
	}
	return paced(ctx, p, func() (cfapi.TokenVerification, error) { return v.VerifyUserToken(ctx) })
}

func (p *pacedAPI) VerifyAccountToken(ctx context.Context, accountID string) (cfapi.TokenVerification, error) {
	v, err := p.verifier()
	if err != nil {
		return cfapi.TokenVerification{}, err
	}
	return paced(ctx, p, func() (cfapi.TokenVerification, error) { return v.VerifyAccountToken(ctx, accountID) })
}
