package dns

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// CloudflareAPI is the handful of Cloudflare DNS calls the publisher makes. The
// controller hands in a client paced by the same per-user budget as its OAuth calls.
type CloudflareAPI interface {
	ListZones(ctx context.Context, name string) ([]cfapi.Zone, error)
	ListDNSRecords(ctx context.Context, zoneID string, f cfapi.DNSRecordFilter) ([]cfapi.DNSRecord, error)
	CreateDNSRecord(ctx context.Context, zoneID string, p cfapi.DNSRecordParams) (cfapi.DNSRecord, error)
	DeleteDNSRecord(ctx context.Context, zoneID, recordID string) error
}

// zoneTTL is how long the zone found for a host is reused. Zones are created and
// deleted by people, rarely; a wrong zone shows as a failed create and is looked up
// again.
const zoneTTL = time.Hour

// Zones remembers which zone holds each host, per set of credentials.
type Zones struct {
	now func() time.Time

	mu    sync.Mutex
	found map[string]zoneEntry // credsKey + "/" + host
}

type zoneEntry struct {
	id string
	at time.Time
}

// NewZones returns an empty zone cache.
func NewZones(now func() time.Time) *Zones {
	return &Zones{now: now, found: map[string]zoneEntry{}}
}

// Find returns the zone that holds host: the first of host, its parent, its parent's
// parent... that the credentials can see (as cert-manager looks it up), skipping
// wildcard labels and never asking for a top-level domain.
func (z *Zones) Find(ctx context.Context, api CloudflareAPI, credsKey, host string) (string, error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	key := credsKey + "/" + host
	z.mu.Lock()
	e, ok := z.found[key]
	z.mu.Unlock()
	if ok && z.now().Sub(e.at) < zoneTTL {
		return e.id, nil
	}
	for candidate := host; strings.Contains(candidate, "."); candidate = candidate[strings.Index(candidate, ".")+1:] {
		if strings.HasPrefix(candidate, "*.") {
			continue
		}
		zones, err := api.ListZones(ctx, candidate)
		if cfapi.IsForbidden(err) || cfapi.IsUnauthorized(err) {
			return "", &Error{Problem: Forbidden, Cause: err, Message: fmt.Sprintf(
				"the DNS credentials may not look up zones (they need Zone → Zone → Read); grant it, or set spec.verification.cloudflareDNS.zoneID: %v", err)}
		}
		if err != nil {
			return "", err
		}
		for _, zone := range zones {
			if sameName(zone.Name, candidate) {
				z.mu.Lock()
				z.found[key] = zoneEntry{id: zone.ID, at: z.now()}
				z.mu.Unlock()
				return zone.ID, nil
			}
		}
	}
	return "", &Error{Problem: ZoneNotFound, Message: fmt.Sprintf(
		"no Cloudflare zone these DNS credentials can see holds %s; a token limited to one zone cannot look zones up by name: set spec.verification.cloudflareDNS.zoneID", host)}
}

// Forget drops what is cached for a host, after the zone turned out wrong.
func (z *Zones) Forget(credsKey, host string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	delete(z.found, credsKey+"/"+strings.ToLower(strings.TrimSuffix(host, ".")))
}

// Records is a shared view of each zone's TXT records, refreshed at most once per sync
// period: in steady state, publishing costs one record list per zone per sync period,
// whatever the number of objects.
type Records struct {
	now func() time.Time

	mu    sync.Mutex
	zones map[string]*zoneRecords // credsKey + "/" + zoneID
}

type zoneRecords struct {
	mu        sync.Mutex // held while listing, so one List serves every waiting object
	records   []cfapi.DNSRecord
	fetchedAt time.Time
}

// NewRecords returns an empty record view.
func NewRecords(now func() time.Time) *Records {
	return &Records{now: now, zones: map[string]*zoneRecords{}}
}

func (r *Records) zone(credsKey, zoneID string) *zoneRecords {
	r.mu.Lock()
	defer r.mu.Unlock()
	key := credsKey + "/" + zoneID
	z, ok := r.zones[key]
	if !ok {
		z = &zoneRecords{}
		r.zones[key] = z
	}
	return z
}

// At returns the zone's TXT records named name, from a list no older than maxAge.
func (r *Records) At(ctx context.Context, api CloudflareAPI, credsKey, zoneID, name string, maxAge time.Duration) ([]cfapi.DNSRecord, error) {
	z := r.zone(credsKey, zoneID)
	z.mu.Lock()
	defer z.mu.Unlock()
	if z.fetchedAt.IsZero() || r.now().Sub(z.fetchedAt) >= maxAge {
		records, err := api.ListDNSRecords(ctx, zoneID, cfapi.DNSRecordFilter{Type: typeTXT})
		if err != nil {
			return nil, err
		}
		z.records, z.fetchedAt = records, r.now()
	}
	var out []cfapi.DNSRecord
	for _, rec := range z.records {
		if sameName(rec.Name, name) && strings.EqualFold(rec.Type, typeTXT) {
			out = append(out, rec)
		}
	}
	return out, nil
}

// put records a record we created.
func (r *Records) put(credsKey, zoneID string, rec cfapi.DNSRecord) {
	z := r.zone(credsKey, zoneID)
	z.mu.Lock()
	defer z.mu.Unlock()
	if !z.fetchedAt.IsZero() {
		z.records = append(slices.DeleteFunc(z.records, func(o cfapi.DNSRecord) bool { return o.ID == rec.ID }), rec)
	}
}

// remove records a record we deleted.
func (r *Records) remove(credsKey, zoneID, id string) {
	z := r.zone(credsKey, zoneID)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.records = slices.DeleteFunc(z.records, func(o cfapi.DNSRecord) bool { return o.ID == id })
}

// invalidate makes the next At list the zone again.
func (r *Records) invalidate(credsKey, zoneID string) {
	z := r.zone(credsKey, zoneID)
	z.mu.Lock()
	defer z.mu.Unlock()
	z.fetchedAt = time.Time{}
}

// CloudflarePublisher publishes the record on Cloudflare DNS.
type CloudflarePublisher struct {
	API CloudflareAPI
	// CredsKey identifies the credentials behind API, for the shared caches.
	CredsKey string
	Zones    *Zones
	Records  *Records
	// ZoneID, when set, is the zone to use; no zone is looked up by name.
	ZoneID string
	// MaxAge is how old the shared record list may be (the sync period).
	MaxAge time.Duration
}

// ttlAuto is Cloudflare's "automatic" TTL.
const ttlAuto = 1

// Publish makes the owner's TXT record hold want.Text at want.Host: it creates the
// record (quoted, with the owner's marker) unless a record with that text is already
// there, and then deletes records of ours that hold another text (a restarted
// verification). Records without our marker are never touched.
func (p *CloudflarePublisher) Publish(ctx context.Context, owner Owner, want Want) (Published, error) {
	zoneID, err := p.zone(ctx, want.Host)
	if err != nil {
		return Published{}, err
	}
	out := Published{ZoneID: zoneID}
	records, err := p.Records.At(ctx, p.API, p.CredsKey, zoneID, want.Host, p.MaxAge)
	if err != nil {
		return out, p.explain(err, "list the DNS records of zone "+zoneID, "DNS Read")
	}
	marker := owner.Marker()
	var stale []cfapi.DNSRecord
	for _, rec := range records {
		switch {
		case cfapi.TXTContent(rec.Content) == want.Text:
			out.RecordID = rec.ID
		case rec.Comment == marker:
			stale = append(stale, rec)
		}
	}
	if out.RecordID == "" {
		if out.RecordID, err = p.create(ctx, zoneID, owner, want); err != nil {
			return out, err
		}
		out.Change.Created = out.RecordID
	}
	// The new record exists before the old one goes: the host never lacks one.
	for _, rec := range stale {
		if err := p.API.DeleteDNSRecord(ctx, zoneID, rec.ID); err != nil && !cfapi.IsNotFound(err) {
			return out, p.explain(err, "delete the old verification record "+rec.ID, "DNS Write")
		}
		p.Records.remove(p.CredsKey, zoneID, rec.ID)
		out.Change.Deleted = append(out.Change.Deleted, rec.ID)
	}
	return out, nil
}

// create creates the record; "already exists" means another pass (or a replica that
// lost its leader lease mid-call) created it first, which is success.
func (p *CloudflarePublisher) create(ctx context.Context, zoneID string, owner Owner, want Want) (string, error) {
	rec, err := p.API.CreateDNSRecord(ctx, zoneID, cfapi.DNSRecordParams{
		Type: typeTXT, Name: want.Host, Content: cfapi.QuoteTXT(want.Text), TTL: ttlAuto, Comment: owner.Marker(),
	})
	if cfapi.IsRecordExists(err) {
		p.Records.invalidate(p.CredsKey, zoneID)
		found, err := p.API.ListDNSRecords(ctx, zoneID, cfapi.DNSRecordFilter{Type: typeTXT, Name: want.Host})
		if err != nil {
			return "", p.explain(err, "list the DNS records of zone "+zoneID, "DNS Read")
		}
		for _, r := range found {
			if cfapi.TXTContent(r.Content) == want.Text {
				return r.ID, nil
			}
		}
		return "", fmt.Errorf("a TXT record for %s already exists says Cloudflare (81057/81058), but none holds the verification text: another record (a CNAME?) may be in the way", want.Host)
	}
	if err != nil {
		if cfapi.IsNotFound(err) && p.ZoneID == "" {
			p.Zones.Forget(p.CredsKey, want.Host) // the zone went away: look it up again
		}
		return "", p.explain(err, "create the verification record in zone "+zoneID, "DNS Write")
	}
	p.Records.put(p.CredsKey, zoneID, rec)
	return rec.ID, nil
}

// Unpublish deletes every record of ours at host, whatever text it holds. It lists the
// host's records afresh: a deletion must not act on a stale view.
func (p *CloudflarePublisher) Unpublish(ctx context.Context, owner Owner, host string) (Change, error) {
	var ch Change
	zoneID, err := p.zone(ctx, host)
	if err != nil {
		return ch, err
	}
	marker := owner.Marker()
	found, err := p.API.ListDNSRecords(ctx, zoneID, cfapi.DNSRecordFilter{Type: typeTXT, Name: host, CommentContains: marker})
	if err != nil {
		return ch, p.explain(err, "list the DNS records of zone "+zoneID, "DNS Read")
	}
	for _, rec := range found {
		if rec.Comment != marker || !sameName(rec.Name, host) {
			continue
		}
		if err := p.API.DeleteDNSRecord(ctx, zoneID, rec.ID); err != nil && !cfapi.IsNotFound(err) {
			return ch, p.explain(err, "delete the verification record "+rec.ID, "DNS Write")
		}
		p.Records.remove(p.CredsKey, zoneID, rec.ID)
		ch.Deleted = append(ch.Deleted, rec.ID)
	}
	return ch, nil
}

func (p *CloudflarePublisher) zone(ctx context.Context, host string) (string, error) {
	if p.ZoneID != "" {
		return p.ZoneID, nil
	}
	return p.Zones.Find(ctx, p.API, p.CredsKey, host)
}

// explain turns a refusal into a publication Error naming the missing permission;
// other errors pass through for the controller's usual retry policy.
func (p *CloudflarePublisher) explain(err error, what, permission string) error {
	switch {
	case cfapi.IsForbidden(err) || cfapi.IsUnauthorized(err):
		return &Error{Problem: Forbidden, Cause: err, Message: fmt.Sprintf(
			"Cloudflare refused to %s: the DNS credentials need %s (Zone → DNS → %s) on that zone: %v", what, permission, dashboardName(permission), err)}
	case cfapi.IsNotFound(err) && p.ZoneID != "":
		return &Error{Problem: ZoneNotFound, Cause: err, Message: fmt.Sprintf(
			"zone %s (spec.verification.cloudflareDNS.zoneID) does not exist or these DNS credentials cannot see it: %v", p.ZoneID, err)}
	}
	return err
}

func dashboardName(permission string) string {
	if permission == "DNS Write" {
		return "Edit"
	}
	return "Read"
}
