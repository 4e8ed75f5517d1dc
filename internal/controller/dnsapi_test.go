package controller

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// countingDNS is a Cloudflare client that also makes DNS calls, counting them.
type countingDNS struct {
	countingAPI
	dnsCalls int
}

func (c *countingDNS) ListZones(context.Context, string) ([]cfapi.Zone, error) {
	c.dnsCalls++
	return nil, nil
}

func (c *countingDNS) ListDNSRecords(context.Context, string, cfapi.DNSRecordFilter) ([]cfapi.DNSRecord, error) {
	c.dnsCalls++
	return nil, nil
}

func (c *countingDNS) CreateDNSRecord(context.Context, string, cfapi.DNSRecordParams) (cfapi.DNSRecord, error) {
	c.dnsCalls++
	return cfapi.DNSRecord{}, nil
}

func (c *countingDNS) DeleteDNSRecord(context.Context, string, string) error {
	c.dnsCalls++
	return nil
}

// DNS calls spend the same per-user budget as OAuth calls: Cloudflare counts both
// against one limit.
func TestDNSCallsShareTheBudget(t *testing.T) {
	inner := &countingDNS{}
	// 200 per hour: a burst of 10, shared by every call of the user.
	api, _ := newTestPaced(inner, RequestBudget{Requests: 200, Window: time.Hour})
	for i := range 5 {
		if _, err := api.ListOAuthClients(t.Context(), "a"); err != nil {
			t.Fatalf("OAuth call %d: %v", i, err)
		}
		if _, err := api.ListDNSRecords(t.Context(), "z", cfapi.DNSRecordFilter{}); err != nil {
			t.Fatalf("DNS call %d: %v", i, err)
		}
	}
	_, err := api.CreateDNSRecord(t.Context(), "z", cfapi.DNSRecordParams{Type: "TXT", Name: "a.example.com", Content: `"t"`})
	var limited *rateLimitedError
	if !errors.As(err, &limited) || !limited.paced {
		t.Fatalf("the 11th call of the user: err = %v, want a paced refusal", err)
	}
	if inner.lists != 5 || inner.dnsCalls != 5 {
		t.Errorf("Cloudflare saw %d OAuth and %d DNS calls, want 5 and 5", inner.lists, inner.dnsCalls)
	}
}

// A client without DNS calls (a test fake) says so instead of panicking.
func TestDNSCallsOnAClientWithoutDNS(t *testing.T) {
	api, _ := newTestPaced(&countingAPI{}, DefaultRequestBudget)
	if _, err := api.ListZones(t.Context(), "example.com"); !errors.Is(err, errNoDNS) {
		t.Errorf("err = %v, want errNoDNS", err)
	}
}
