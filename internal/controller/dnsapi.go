package controller

import (
	"context"
	"errors"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/dns"
)

// DNS calls go through the same pacer, and so spend the same per-user budget, as the
// OAuth calls: Cloudflare counts both against one 1,200-per-5-minutes limit.

var _ dns.CloudflareAPI = (*pacedAPI)(nil)

// errNoDNS and errNoVerify are returned when the Cloudflare client cannot make DNS or
// token verification calls (a test fake).
var (
	errNoDNS    = errors.New("this Cloudflare client cannot make DNS calls")
	errNoVerify = errors.New("this Cloudflare client cannot verify tokens")
)

func (p *pacedAPI) dns() (dns.CloudflareAPI, error) {
	d, ok := p.api.(dns.CloudflareAPI)
	if !ok {
		return nil, errNoDNS
	}
	return d, nil
}

func (p *pacedAPI) ListZones(ctx context.Context, name string) ([]cfapi.Zone, error) {
	d, err := p.dns()
	if err != nil {
		return nil, err
	}
	return paced(ctx, p, func() ([]cfapi.Zone, error) { return d.ListZones(ctx, name) })
}

func (p *pacedAPI) ListDNSRecords(ctx context.Context, zoneID string, f cfapi.DNSRecordFilter) ([]cfapi.DNSRecord, error) {
	d, err := p.dns()
	if err != nil {
		return nil, err
	}
	return paced(ctx, p, func() ([]cfapi.DNSRecord, error) { return d.ListDNSRecords(ctx, zoneID, f) })
}

func (p *pacedAPI) CreateDNSRecord(ctx context.Context, zoneID string, params cfapi.DNSRecordParams) (cfapi.DNSRecord, error) {
	d, err := p.dns()
	if err != nil {
		return cfapi.DNSRecord{}, err
	}
	return paced(ctx, p, func() (cfapi.DNSRecord, error) { return d.CreateDNSRecord(ctx, zoneID, params) })
}

func (p *pacedAPI) DeleteDNSRecord(ctx context.Context, zoneID, recordID string) error {
	d, err := p.dns()
	if err != nil {
		return err
	}
	_, err = paced(ctx, p, func() (struct{}, error) { return struct{}{}, d.DeleteDNSRecord(ctx, zoneID, recordID) })
	return err
}
