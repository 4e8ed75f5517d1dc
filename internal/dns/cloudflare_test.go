package dns

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// fakeDNS is an in-memory Cloudflare DNS that records every call. It is deliberately
// small: the emulator tests in internal/controller play Cloudflare in full.
type fakeDNS struct {
	zones   map[string]string // name -> id
	records map[string][]cfapi.DNSRecord
	calls   []string
	next    int
	// refuse answers 403 to calls whose "METHOD kind" starts with it.
	refuse string
	// hideZones makes zone lookups by name return nothing (a zone-scoped token).
	hideZones bool
}

func newFake() *fakeDNS {
	return &fakeDNS{zones: map[string]string{"example.com": "z1"}, records: map[string][]cfapi.DNSRecord{}}
}

func (f *fakeDNS) call(c string) error {
	f.calls = append(f.calls, c)
	if f.refuse != "" && strings.HasPrefix(c, f.refuse) {
		return &cfapi.APIError{StatusCode: http.StatusForbidden, Errors: []cfapi.ErrorDetail{{Code: 10000, Message: "Authentication error"}}}
	}
	return nil
}

func (f *fakeDNS) ListZones(_ context.Context, name string) ([]cfapi.Zone, error) {
	if err := f.call("GET zones " + name); err != nil {
		return nil, err
	}
	if id, ok := f.zones[name]; ok && !f.hideZones {
		return []cfapi.Zone{{ID: id, Name: name}}, nil
	}
	return nil, nil
}

func (f *fakeDNS) ListDNSRecords(_ context.Context, zoneID string, flt cfapi.DNSRecordFilter) ([]cfapi.DNSRecord, error) {
	if err := f.call("GET records " + zoneID); err != nil {
		return nil, err
	}
	var out []cfapi.DNSRecord
	for _, r := range f.records[zoneID] {
		if (flt.Name == "" || sameName(r.Name, flt.Name)) && (flt.CommentContains == "" || strings.Contains(strings.ToLower(r.Comment), strings.ToLower(flt.CommentContains))) {
			out = append(out, r)
		}
	}
	return out, nil
}

func (f *fakeDNS) CreateDNSRecord(_ context.Context, zoneID string, p cfapi.DNSRecordParams) (cfapi.DNSRecord, error) {
	if err := f.call("POST records " + zoneID); err != nil {
		return cfapi.DNSRecord{}, err
	}
	for _, r := range f.records[zoneID] {
		if sameName(r.Name, p.Name) && r.Type == p.Type && r.Content == p.Content {
			return cfapi.DNSRecord{}, &cfapi.APIError{StatusCode: http.StatusBadRequest, Errors: []cfapi.ErrorDetail{{Code: 81058, Message: "An identical record already exists."}}}
		}
	}
	f.next++
	r := cfapi.DNSRecord{ID: fmt.Sprintf("r%d", f.next), Type: p.Type, Name: p.Name, Content: p.Content, Comment: p.Comment, TTL: p.TTL}
	f.records[zoneID] = append(f.records[zoneID], r)
	return r, nil
}

func (f *fakeDNS) DeleteDNSRecord(_ context.Context, zoneID, id string) error {
	if err := f.call("DELETE records " + zoneID + " " + id); err != nil {
		return err
	}
	f.records[zoneID] = slices.DeleteFunc(f.records[zoneID], func(r cfapi.DNSRecord) bool { return r.ID == id })
	return nil
}

func (f *fakeDNS) contents(zoneID string) []string {
	out := make([]string, 0, len(f.records[zoneID]))
	for _, r := range f.records[zoneID] {
		out = append(out, r.Name+" "+r.Content)
	}
	slices.Sort(out)
	return out
}

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func publisher(f *fakeDNS, c *clock) *CloudflarePublisher {
	return &CloudflarePublisher{API: f, CredsKey: "k", Zones: NewZones(c.now), Records: NewRecords(c.now), MaxAge: time.Minute}
}

var team = Owner{Namespace: "team", Name: "web", ClientID: "c1"}

func TestPublishLeavesOtherRecordsAlone(t *testing.T) {
	f, c := newFake(), &clock{t: time.Unix(0, 0)}
	spf := cfapi.DNSRecord{ID: "spf", Type: "TXT", Name: "app.example.com", Content: `"v=spf1 -all"`}
	other := cfapi.DNSRecord{ID: "g", Type: "TXT", Name: "app.example.com", Content: `"google-site-verification=x"`, Comment: "not ours"}
	f.records["z1"] = []cfapi.DNSRecord{spf, other}
	p := publisher(f, c)

	pub, err := p.Publish(t.Context(), team, Want{Host: "app.example.com", Text: "cloudflare_oauth_client_publisher=one"})
	if err != nil {
		t.Fatal(err)
	}
	if pub.ZoneID != "z1" || pub.Change.Created == "" || len(pub.Change.Deleted) != 0 {
		t.Fatalf("first publication %+v", pub)
	}
	want := []string{`app.example.com "cloudflare_oauth_client_publisher=one"`, `app.example.com "google-site-verification=x"`, `app.example.com "v=spf1 -all"`}
	if diff := cmp.Diff(want, f.contents("z1")); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}

	// A restarted verification: one create, one delete, the others untouched.
	f.calls = nil
	pub, err = p.Publish(t.Context(), team, Want{Host: "app.example.com", Text: "cloudflare_oauth_client_publisher=two"})
	if err != nil {
		t.Fatal(err)
	}
	want = []string{`app.example.com "cloudflare_oauth_client_publisher=two"`, `app.example.com "google-site-verification=x"`, `app.example.com "v=spf1 -all"`}
	if diff := cmp.Diff(want, f.contents("z1")); diff != "" {
		t.Errorf("records after the restart (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]string{"POST records z1", "DELETE records z1 r1"}, f.calls); diff != "" {
		t.Errorf("calls of the replacement (-want +got):\n%s", diff)
	}
	if len(pub.Change.Deleted) != 1 || pub.Change.Created != "r2" {
		t.Errorf("change %+v", pub.Change)
	}

	// Unpublish deletes ours only.
	ch, err := p.Unpublish(t.Context(), team, "app.example.com")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"r2"}, ch.Deleted); diff != "" {
		t.Errorf("deleted (-want +got):\n%s", diff)
	}
	want = []string{`app.example.com "google-site-verification=x"`, `app.example.com "v=spf1 -all"`}
	if diff := cmp.Diff(want, f.contents("z1")); diff != "" {
		t.Errorf("records after unpublishing (-want +got):\n%s", diff)
	}
}

func TestPublishFindsTheZoneWalkingUp(t *testing.T) {
	f, c := newFake(), &clock{t: time.Unix(0, 0)}
	p := publisher(f, c)
	if _, err := p.Publish(t.Context(), team, Want{Host: "a.b.example.com", Text: "t"}); err != nil {
		t.Fatal(err)
	}
	want := []string{"GET zones a.b.example.com", "GET zones b.example.com", "GET zones example.com", "GET records z1", "POST records z1"}
	if diff := cmp.Diff(want, f.calls); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	// The zone is remembered and the record list is shared: steady state costs nothing
	// until the list is older than MaxAge, then one list.
	f.calls = nil
	for range 5 {
		if _, err := p.Publish(t.Context(), team, Want{Host: "a.b.example.com", Text: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if len(f.calls) != 0 {
		t.Errorf("steady state made calls: %v", f.calls)
	}
	c.t = c.t.Add(time.Minute)
	for _, o := range []Owner{team, {Namespace: "b", Name: "x", ClientID: "c2"}} {
		if _, err := p.Publish(t.Context(), o, Want{Host: "a.b.example.com", Text: "t"}); err != nil {
			t.Fatal(err)
		}
	}
	if diff := cmp.Diff([]string{"GET records z1"}, f.calls); diff != "" {
		t.Errorf("calls after a sync period (-want +got):\n%s", diff)
	}
}

func TestPublishTreatsAnExistingRecordAsSuccess(t *testing.T) {
	f, c := newFake(), &clock{t: time.Unix(0, 0)}
	p := publisher(f, c)
	if _, err := p.Records.At(t.Context(), f, "k", "z1", "app.example.com", time.Minute); err != nil {
		t.Fatal(err)
	}
	// Another replica created it after our list: the create answers 81058.
	f.records["z1"] = append(f.records["z1"], cfapi.DNSRecord{ID: "theirs", Type: "TXT", Name: "app.example.com", Content: cfapi.QuoteTXT("t")})
	pub, err := p.Publish(t.Context(), team, Want{Host: "app.example.com", Text: "t"})
	if err != nil {
		t.Fatal(err)
	}
	if pub.RecordID != "theirs" {
		t.Errorf("record %q, want the existing one", pub.RecordID)
	}
}

func TestPublishNamesTheMissingPermission(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakeDNS, *CloudflarePublisher)
		problem Problem
		message string
	}{
		{"no zone read", func(f *fakeDNS, _ *CloudflarePublisher) { f.refuse = "GET zones" }, Forbidden, "Zone → Zone → Read"},
		{"no DNS write", func(f *fakeDNS, _ *CloudflarePublisher) { f.refuse = "POST" }, Forbidden, "DNS Write (Zone → DNS → Edit)"},
		{"no DNS read", func(f *fakeDNS, _ *CloudflarePublisher) { f.refuse = "GET records" }, Forbidden, "DNS Read (Zone → DNS → Read)"},
		{"zone-scoped token without zoneID", func(f *fakeDNS, _ *CloudflarePublisher) { f.hideZones = true }, ZoneNotFound, "set spec.verification.cloudflareDNS.zoneID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(), &clock{t: time.Unix(0, 0)}
			p := publisher(f, c)
			tt.setup(f, p)
			_, err := p.Publish(t.Context(), team, Want{Host: "app.example.com", Text: "t"})
			e, ok := AsError(err)
			if !ok {
				t.Fatalf("error %v, want a publication Error", err)
			}
			if e.Problem != tt.problem || !strings.Contains(e.Message, tt.message) {
				t.Errorf("got %d %q, want %d containing %q", e.Problem, e.Message, tt.problem, tt.message)
			}
		})
	}
	t.Run("zone-scoped token with zoneID", func(t *testing.T) {
		f, c := newFake(), &clock{t: time.Unix(0, 0)}
		f.hideZones = true
		p := publisher(f, c)
		p.ZoneID = "z1"
		if _, err := p.Publish(t.Context(), team, Want{Host: "app.example.com", Text: "t"}); err != nil {
			t.Fatal(err)
		}
		if slices.ContainsFunc(f.calls, func(c string) bool { return strings.HasPrefix(c, "GET zones") }) {
			t.Errorf("looked a zone up although zoneID was given: %v", f.calls)
		}
	})
}

func TestMarkerFitsAFreeZone(t *testing.T) {
	short := Owner{Namespace: "team", Name: "web", ClientID: "0123456789abcdef0123456789abcdef"}
	if got := short.Marker(); got != "cloudflare-oauth-operator team/web 0123456789abcdef0123456789abcdef" {
		t.Errorf("marker %q", got)
	}
	long := Owner{Namespace: strings.Repeat("n", 63), Name: strings.Repeat("x", 200), ClientID: "c"}
	if m := long.Marker(); len(m) > maxComment || !strings.HasPrefix(m, markerPrefix) || m == (Owner{Namespace: long.Namespace, Name: long.Name + "y", ClientID: "c"}).Marker() {
		t.Errorf("long marker %q (%d characters)", m, len(m))
	}
}
