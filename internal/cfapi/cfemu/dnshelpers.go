package cfemu

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Go helpers and control endpoints for zones, DNS records and tokens' DNS
// permissions. Like the other helpers they land due commit-later writes first and are
// not counted in Stats.

// AddZone creates a free zone named name in DefaultAccountID and returns its id. It
// panics on an invalid or duplicate name: a broken setup is a bug in the test.
func (s *Server) AddZone(name string) string {
	z, err := s.AddZoneSpec(ZoneSpec{Name: name})
	if err != nil {
		panic(err.Error())
	}
	return z.ID
}

// AddZoneSpec creates a zone and returns it with its defaults filled in (id, account,
// plan, comment limit). Verifications of client_uri hosts it holds follow its DNS from
// now on. Reset drops it (only Options.Zones come back).
func (s *Server) AddZoneSpec(z ZoneSpec) (ZoneSpec, error) {
	n, err := normaliseZone(z)
	if err != nil {
		return ZoneSpec{}, fmt.Errorf("cfemu: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	if err := s.addZoneLocked(n, s.now()); err != nil {
		return ZoneSpec{}, err
	}
	return n, nil
}

// Zones returns the zones as cfapi sees them, in creation order.
func (s *Server) Zones() []cfapi.Zone {
	specs := s.ZoneSpecs()
	out := make([]cfapi.Zone, 0, len(specs))
	for _, z := range specs {
		out = append(out, cfapi.Zone{ID: z.ID, Name: z.Name, Status: "active"})
	}
	return out
}

// ZoneSpecs returns every zone's settings, in creation order.
func (s *Server) ZoneSpecs() []ZoneSpec {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	out := make([]ZoneSpec, 0, len(s.dns.order))
	for _, id := range s.dns.order {
		out = append(out, s.dns.zones[id].spec)
	}
	return out
}

// DNSRecords returns the zone's records in creation order (none for an unknown zone).
func (s *Server) DNSRecords(zoneID string) []cfapi.DNSRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	out := []cfapi.DNSRecord{}
	if z := s.dns.zones[zoneID]; z != nil {
		for _, id := range z.order {
			out = append(out, z.records[id].public())
		}
	}
	return out
}

// AddDNSRecord stores a record out of band, as someone else would in the dashboard
// (another team's SPF record, a stale verification record), and returns its id. Nothing
// is checked but that the name lies in the zone: identical records, bad content and
// long comments are all allowed. An empty ID is drawn, TTL 0 is 1 (automatic), missing
// times are now. It panics on an unknown zone, a name outside it or an id in use.
func (s *Server) AddDNSRecord(zoneID string, r cfapi.DNSRecord) string {
	got, err := s.addRecord(zoneID, r)
	if err != nil {
		panic(err.Error())
	}
	return got.ID
}

func (s *Server) addRecord(zoneID string, in cfapi.DNSRecord) (cfapi.DNSRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	z := s.dns.zones[zoneID]
	if z == nil {
		return cfapi.DNSRecord{}, fmt.Errorf("%w: %s", ErrZoneNotFound, zoneID)
	}
	r, err := recordFromPublic(z, in, s.now())
	if err != nil {
		return cfapi.DNSRecord{}, err
	}
	if z.records[r.id] != nil {
		return cfapi.DNSRecord{}, fmt.Errorf("cfemu: record id %s is in use", r.id)
	}
	s.changeZoneLocked(s.now(), func() { z.put(r) })
	return r.public(), nil
}

// PutDNSRecord replaces record r.ID out of band, unchecked like AddDNSRecord; its
// created_on stays unless r sets one, modified_on is now unless r sets one.
func (s *Server) PutDNSRecord(zoneID string, r cfapi.DNSRecord) error {
	_, err := s.putRecord(zoneID, r)
	return err
}

func (s *Server) putRecord(zoneID string, in cfapi.DNSRecord) (cfapi.DNSRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	z := s.dns.zones[zoneID]
	if z == nil {
		return cfapi.DNSRecord{}, fmt.Errorf("%w: %s", ErrZoneNotFound, zoneID)
	}
	old := z.records[in.ID]
	if old == nil {
		return cfapi.DNSRecord{}, fmt.Errorf("%w: %s", ErrRecordNotFound, in.ID)
	}
	if in.CreatedOn == nil {
		in.CreatedOn = ptr(old.created)
	}
	r, err := recordFromPublic(z, in, s.now())
	if err != nil {
		return cfapi.DNSRecord{}, err
	}
	s.changeZoneLocked(s.now(), func() { z.put(r) })
	return r.public(), nil
}

// DeleteDNSRecord deletes a record out of band.
func (s *Server) DeleteDNSRecord(zoneID, recordID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	z := s.dns.zones[zoneID]
	switch {
	case z == nil:
		return fmt.Errorf("%w: %s", ErrZoneNotFound, zoneID)
	case z.records[recordID] == nil:
		return fmt.Errorf("%w: %s", ErrRecordNotFound, recordID)
	}
	s.changeZoneLocked(s.now(), func() { z.remove(recordID) })
	return nil
}

// SetTokenDNS gives token these zone and DNS permissions from now on, replacing what
// it had; a token unknown until now becomes accepted for zone and DNS routes only.
// Reset returns to Options.DNS. It panics on a zone id that is not 32 lowercase hex.
func (s *Server) SetTokenDNS(token string, p DNSPermissions) {
	if err := p.validate(); err != nil {
		panic("cfemu.SetTokenDNS: " + err.Error())
	}
	p.ZoneIDs = slices.Clone(p.ZoneIDs)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	s.dns.perms[token] = p
}

// ClearTokenDNS takes every zone and DNS permission from token; a token that has no
// other permission is no longer accepted.
func (s *Server) ClearTokenDNS(token string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	delete(s.dns.perms, token)
}

// serveControlDNS serves /_emulator/zones... and /_emulator/dns-permissions; it
// reports whether p was one of them.
func (s *Server) serveControlDNS(c control, p string) bool {
	switch {
	case p == "/dns-permissions":
		s.controlDNSPermissions(c)
	case p == "/zones":
		s.controlZones(c)
	case strings.HasPrefix(p, "/zones/"):
		s.controlZoneRecords(c, strings.TrimPrefix(p, "/zones/"))
	default:
		return false
	}
	return true
}

func (s *Server) controlZones(c control) {
	switch c.r.Method {
	case http.MethodGet:
		c.reply(http.StatusOK, s.ZoneSpecs())
	case http.MethodPost:
		var in ZoneSpec
		if !c.decode(&in) {
			return
		}
		z, err := s.AddZoneSpec(in)
		if err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
		c.reply(http.StatusOK, z)
	default:
		c.fail(http.StatusMethodNotAllowed, "use GET or POST")
	}
}

// controlZoneRecords serves /zones/{zone_id}/dns_records (GET, POST) and
// /zones/{zone_id}/dns_records/{id} (PUT, DELETE).
func (s *Server) controlZoneRecords(c control, rest string) {
	parts := strings.Split(rest, "/")
	for i, part := range parts {
		v, err := url.PathUnescape(part)
		if err != nil || v == "" {
			parts = nil
			break
		}
		parts[i] = v
	}
	if len(parts) < 2 || len(parts) > 3 || parts[1] != "dns_records" {
		c.fail(http.StatusNotFound, "expected %s/zones/{zone_id}/dns_records[/{id}]", controlPrefix)
		return
	}
	zoneID := parts[0]
	var (
		got any
		err error
	)
	switch method := c.r.Method; {
	case len(parts) == 2 && method == http.MethodGet:
		s.mu.Lock()
		known := s.dns.zones[zoneID] != nil
		s.mu.Unlock()
		if !known {
			err = fmt.Errorf("%w: %s", ErrZoneNotFound, zoneID)
		}
		got = s.DNSRecords(zoneID)
	case len(parts) == 2 && method == http.MethodPost:
		var in cfapi.DNSRecord
		if !c.decode(&in) {
			return
		}
		got, err = s.addRecord(zoneID, in)
	case len(parts) == 3 && method == http.MethodPut:
		var in cfapi.DNSRecord
		if !c.decode(&in) {
			return
		}
		in.ID = parts[2]
		got, err = s.putRecord(zoneID, in)
	case len(parts) == 3 && method == http.MethodDelete:
		got, err = map[string]string{"id": parts[2]}, s.DeleteDNSRecord(zoneID, parts[2])
	default:
		c.fail(http.StatusMethodNotAllowed, "use GET or POST on .../dns_records, PUT or DELETE on .../dns_records/{id}")
		return
	}
	if err != nil {
		c.failFor(err)
		return
	}
	c.reply(http.StatusOK, got)
}

// controlDNSPermissions: PUT {"token", "permissions"} sets a token's DNS permissions,
// DELETE {"token"} clears them. The answer never repeats the token.
func (s *Server) controlDNSPermissions(c control) {
	var in struct {
		Token       string         `json:"token"`
		Permissions DNSPermissions `json:"permissions"`
	}
	if c.r.Method != http.MethodPut && c.r.Method != http.MethodDelete {
		c.fail(http.StatusMethodNotAllowed, "use PUT or DELETE")
		return
	}
	if !c.decode(&in) {
		return
	}
	if in.Token == "" {
		c.fail(http.StatusBadRequest, "token is required")
		return
	}
	if c.r.Method == http.MethodDelete {
		s.ClearTokenDNS(in.Token)
		c.reply(http.StatusOK, map[string]bool{"cleared": true})
		return
	}
	if err := in.Permissions.validate(); err != nil {
		c.fail(http.StatusBadRequest, "%v", err)
		return
	}
	s.SetTokenDNS(in.Token, in.Permissions)
	c.reply(http.StatusOK, map[string]DNSPermissions{"permissions": in.Permissions})
}

// isNotFound reports the helpers' not-found errors, answered 404 by the control
// endpoints.
func isNotFound(err error) bool {
	return errors.Is(err, ErrNotFound) || errors.Is(err, ErrZoneNotFound) || errors.Is(err, ErrRecordNotFound)
}
