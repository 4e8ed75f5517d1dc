package cfemu

import (
	"strings"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// Verification that reads the emulated DNS. A client_uri host inside an emulated zone
// (the zone name itself or a name below it) is verified the way Cloudflare's poller
// would: once a TXT record named exactly the host, whose content (quotes stripped,
// cfapi.TXTContent) is the verification text, has been present for DNSPropagation.
// Without one, the verification fails DNSVerificationTimeout after it started. Hosts
// outside every zone keep VerifyAfter and Strict.FailVerificationAfter.
//
// The state is evaluated lazily, like the rest of verification: every zone change
// first settles all verifications as of its time (a record removed after its
// propagation delay has still verified), then records, per client, since when the
// record it needs has been present (clientRecord.dnsSeen). A record that disappears
// before the delay is over restarts the delay when it comes back. Once verified, a
// client stays verified if the record goes: nothing says Cloudflare looks again.

// settleVerificationsLocked lands every client's verification as of at.
func (s *Server) settleVerificationsLocked(at time.Time) {
	for _, acct := range s.accounts {
		for _, rec := range acct.clients {
			s.refreshVerificationAt(rec, at)
		}
	}
}

// trackAllDNSLocked runs trackClientDNSLocked for every client.
func (s *Server) trackAllDNSLocked(at time.Time) {
	for _, acct := range s.accounts {
		for _, rec := range acct.clients {
			s.trackClientDNSLocked(rec, at)
		}
	}
}

// trackClientDNSLocked records whether the TXT record that verifies rec is present as
// of at: dnsSeen keeps the time it appeared while it stays, and is cleared when it is
// gone or when the host or text it was for changes.
func (s *Server) trackClientDNSLocked(rec *clientRecord, at time.Time) {
	v := rec.c.ClientURIVerification
	if v == nil || rec.c.ClientURI == "" {
		rec.dnsKey, rec.dnsSeen = "", time.Time{}
		return
	}
	host := uriHost(rec.c.ClientURI)
	if key := host + " " + v.Text; key != rec.dnsKey {
		rec.dnsKey, rec.dnsSeen = key, time.Time{}
	}
	switch {
	case !s.txtPublishedLocked(host, v.Text):
		rec.dnsSeen = time.Time{}
	case rec.dnsSeen.IsZero():
		rec.dnsSeen = at
	}
}

// zoneOfHostLocked is the deepest zone holding host (host is the zone name or ends
// with "." + it), or nil.
func (s *Server) zoneOfHostLocked(host string) *zone {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	for cut := host; cut != ""; {
		if id, ok := s.dns.byName[cut]; ok {
			return s.dns.zones[id]
		}
		_, rest, found := strings.Cut(cut, ".")
		if !found {
			break
		}
		cut = rest
	}
	return nil
}

// txtPublishedLocked reports a TXT record named host, in the zone holding it, whose
// content stands for text.
func (s *Server) txtPublishedLocked(host, text string) bool {
	z := s.zoneOfHostLocked(host)
	if z == nil {
		return false
	}
	for _, id := range z.order {
		if r := z.records[id]; r.typ == typeTXT && r.name == host && cfapi.TXTContent(r.content) == text {
			return true
		}
	}
	return false
}

// dnsVerificationDeadlines is verificationDeadlines for a host inside an emulated zone:
// verified DNSPropagation after the record appeared (or after the verification
// started, if later), in_progress only; failed DNSVerificationTimeout after it
// started, pending or in_progress.
func (s *Server) dnsVerificationDeadlines(rec *clientRecord) (verifyAt, failAt time.Time) {
	v := rec.c.ClientURIVerification
	if v.Status == cfapi.VerificationInProgress && !rec.dnsSeen.IsZero() {
		from := rec.dnsSeen
		if rec.verifyStarted.After(from) {
			from = rec.verifyStarted
		}
		verifyAt = from.Add(positive(s.opts.DNSPropagation, DefaultDNSPropagation))
	}
	if timeout := positive(s.opts.DNSVerificationTimeout, DefaultDNSVerificationTimeout); unfinished(v.Status) && timeout > 0 {
		failAt = rec.verifyStarted.Add(timeout)
	}
	return verifyAt, failAt
}

// positive reads a duration option where 0 means def and a negative value means 0
// (none, or never).
func positive(d, def time.Duration) time.Duration {
	switch {
	case d == 0:
		return def
	case d < 0:
		return 0
	}
	return d
}
