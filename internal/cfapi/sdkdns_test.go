package cfapi_test

// The official Go SDK's dns and zones packages as the oracle for the DNS and zone
// calls: our client must put on the wire what the SDK puts there for the same
// request. Helpers (sdkF, canonicalJSON) are in sdkhelpers_test.go.

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare/cloudflare-go/v7/dns"
	"github.com/cloudflare/cloudflare-go/v7/option"
	"github.com/cloudflare/cloudflare-go/v7/zones"
	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// sdkReplies answers any DNS or zone request with a canned success of the right shape.
func sdkReplies(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	p := r.URL.Path
	switch {
	case r.Method == http.MethodGet && (strings.HasSuffix(p, "/zones") || strings.HasSuffix(p, "/dns_records")):
		_, _ = w.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":[],"result_info":{"page":1,"per_page":50,"count":0,"total_count":0}}`))
	case strings.Contains(p, "/dns_records"):
		_, _ = w.Write([]byte(okRecord))
	default:
		_, _ = w.Write([]byte(`{"success":true,"errors":[],"messages":[],"result":{"id":"` + dnsZone + `","name":"example.com","status":"active"}}`))
	}
}

// wire is one request as the server saw it, in a comparable form.
type wire struct {
	Method, Path string
	Query        url.Values
	Body         string
}

func seen(t *testing.T, s *stub) wire {
	t.Helper()
	r := s.last.Load()
	return wire{Method: r.Method, Path: r.URL.EscapedPath(), Query: r.URL.Query(), Body: canonicalJSON(t, []byte(*s.lastBody.Load()))}
}

func TestSDKDNSRequestsMatchOurs(t *testing.T) {
	t.Parallel()
	const verification = `cloudflare_oauth_client_publisher=6f8ad92942ad06065fa17308a519f191`
	tests := []struct {
		name string
		ours func(t *testing.T, c *cfapi.Client) error
		sdk  func(t *testing.T, z *zones.ZoneService, r *dns.RecordService) error
	}{
		{
			name: "list zones by name",
			ours: func(t *testing.T, c *cfapi.Client) error {
				_, err := c.ListZones(t.Context(), "example.com")
				return err
			},
			sdk: func(t *testing.T, z *zones.ZoneService, _ *dns.RecordService) error {
				var p zones.ZoneListParams
				sdkF(&p.Name, "example.com")
				sdkF(&p.Page, 1.0)
				sdkF(&p.PerPage, 50.0)
				_, err := z.List(t.Context(), p)
				return err
			},
		},
		{
			name: "get zone",
			ours: func(t *testing.T, c *cfapi.Client) error { _, err := c.GetZone(t.Context(), dnsZone); return err },
			sdk: func(t *testing.T, z *zones.ZoneService, _ *dns.RecordService) error {
				var p zones.ZoneGetParams
				sdkF(&p.ZoneID, dnsZone)
				_, err := z.Get(t.Context(), p)
				return err
			},
		},
		{
			name: "list TXT records by name, content and comment",
			ours: func(t *testing.T, c *cfapi.Client) error {
				_, err := c.ListDNSRecords(t.Context(), dnsZone, cfapi.DNSRecordFilter{Type: "TXT", Name: "app.example.com",
					Content: cfapi.QuoteTXT(verification), CommentContains: "ns/name"})
				return err
			},
			sdk: func(t *testing.T, _ *zones.ZoneService, r *dns.RecordService) error {
				var p dns.RecordListParams
				var name dns.RecordListParamsName
				var content dns.RecordListParamsContent
				var comment dns.RecordListParamsComment
				sdkF(&p.ZoneID, dnsZone)
				sdkF(&p.Type, dns.RecordListParamsTypeTXT)
				sdkF(&name.Exact, "app.example.com")
				sdkF(&p.Name, name)
				sdkF(&content.Exact, `"`+verification+`"`)
				sdkF(&p.Content, content)
				sdkF(&comment.Contains, "ns/name")
				sdkF(&p.Comment, comment)
				sdkF(&p.Page, 1.0)
				sdkF(&p.PerPage, 100.0)
				_, err := r.List(t.Context(), p)
				return err
			},
		},
		{
			name: "create a TXT record",
			ours: func(t *testing.T, c *cfapi.Client) error {
				_, err := c.CreateDNSRecord(t.Context(), dnsZone, cfapi.DNSRecordParams{Type: "TXT", Name: "app.example.com",
					Content: cfapi.QuoteTXT(verification), Comment: "managed-by=cloudflare-oauth-operator ns/name", TTL: 1})
				return err
			},
			sdk: func(t *testing.T, _ *zones.ZoneService, r *dns.RecordService) error {
				var body dns.TXTRecordParam
				sdkF(&body.Type, dns.TXTRecordTypeTXT)
				sdkF(&body.Name, "app.example.com")
				sdkF(&body.Content, `"`+verification+`"`)
				sdkF(&body.Comment, "managed-by=cloudflare-oauth-operator ns/name")
				sdkF(&body.TTL, dns.TTL1)
				var p dns.RecordNewParams
				sdkF(&p.ZoneID, dnsZone)
				p.Body = body
				_, err := r.New(t.Context(), p)
				return err
			},
		},
		{
			name: "delete a record",
			ours: func(t *testing.T, c *cfapi.Client) error { return c.DeleteDNSRecord(t.Context(), dnsZone, dnsRecord) },
			sdk: func(t *testing.T, _ *zones.ZoneService, r *dns.RecordService) error {
				var p dns.RecordDeleteParams
				sdkF(&p.ZoneID, dnsZone)
				_, err := r.Delete(t.Context(), dnsRecord, p)
				return err
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ourStub, sdkStub := newStub(t, sdkReplies), newStub(t, sdkReplies)
			if err := tt.ours(t, ourStub.client(t, cfapi.Credentials{APIToken: secretToken})); err != nil {
				t.Fatalf("ours: %v", err)
			}
			opts := []option.RequestOption{
				option.WithBaseURL(sdkStub.srv.URL + "/client/v4/"), option.WithAPIToken(secretToken),
				option.WithHTTPClient(&http.Client{Timeout: 10 * time.Second}), option.WithMaxRetries(0),
			}
			if err := tt.sdk(t, zones.NewZoneService(opts...), dns.NewRecordService(opts...)); err != nil {
				t.Fatalf("sdk: %v", err)
			}
			if diff := cmp.Diff(seen(t, sdkStub), seen(t, ourStub)); diff != "" {
				t.Errorf("our request differs from the SDK's (-sdk +ours):\n%s", diff)
			}
			for _, st := range []*stub{ourStub, sdkStub} {
				if got := st.last.Load().Header.Get("Authorization"); got != "Bearer "+secretToken {
					t.Errorf("Authorization = %q", got)
				}
			}
		})
	}
}
