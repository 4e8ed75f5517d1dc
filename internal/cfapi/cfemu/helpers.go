package cfemu

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// ErrNotFound is returned by the Go helpers for an unknown account or client.
var ErrNotFound = errors.New("cfemu: OAuth client not found")

// SecretState says whether a secret is the client's current one or the older one
// still valid after a rotation.
type SecretState struct {
	Current  bool `json:"current"`
	Previous bool `json:"previous"`
}

// Stats returns a copy of the request counters, the number of clients per account and
// the number of pending commits. Like every Go helper, it first lands the writes that
// are due (FaultRule.CommitAfter).
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	st := s.stats
	st.Requests = maps.Clone(s.stats.Requests)
	st.Clients = map[string]int{}
	for id, acct := range s.accounts {
		if len(acct.clients) > 0 {
			st.Clients[id] = len(acct.clients)
		}
	}
	st.PendingCommits = len(s.pending)
	st.DNSRecords = s.recordCountsLocked()
	return st
}

// Requests returns the log of public API requests, oldest first (at most the last
// 10,000).
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	out := make([]RecordedRequest, len(s.log))
	for i, r := range s.log {
		r.Body = slices.Clone(r.Body)
		out[i] = r
	}
	return out
}

// ResetStats clears the counters and the request log, nothing else.
func (s *Server) ResetStats() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	s.stats = Stats{Requests: map[string]int{}}
	s.log = nil
}

// Reset forgets everything: clients, counters, log, faults, rate-limit windows and
// pending commits; the strict modes return to Options.Strict.
func (s *Server) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.resetLocked()
}

// SetFaults replaces the fault rules (and restarts the random source from f.Seed). It
// panics when f.Validate fails: a broken rule is a bug in the test.
func (s *Server) SetFaults(f Faults) {
	if err := f.Validate(); err != nil {
		panic("cfemu.SetFaults: " + err.Error())
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	s.faults = newFaultState(f)
}

// ClearFaults removes every fault rule.
func (s *Server) ClearFaults() { s.SetFaults(Faults{}) }

// SeedClient stores a client as if it had been created earlier, without validation:
// an empty ClientID is generated, an empty Visibility becomes private, missing
// timestamps become now, and a client_uri without verification starts one. secret is
// the current secret; empty generates one unless the auth method is none.
func (s *Server) SeedClient(accountID string, c cfapi.OAuthClient, secret string) (cfapi.OAuthClient, error) {
	if !accountIDPattern.MatchString(accountID) {
		return cfapi.OAuthClient{}, fmt.Errorf("cfemu: account id %q is not 32 lowercase hex characters", accountID)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	c = cloneClient(c)
	if c.ClientID == "" {
		c.ClientID = randomHex(16)
	}
	if acct := s.accounts[accountID]; acct != nil && acct.clients[c.ClientID] != nil {
		return cfapi.OAuthClient{}, fmt.Errorf("cfemu: client %s already exists in account %s", c.ClientID, accountID)
	}
	if c.Visibility == "" {
		c.Visibility = cfapi.VisibilityPrivate
	}
	now := s.now().UTC()
	if c.CreatedAt == nil {
		c.CreatedAt = ptr(now)
	}
	if c.UpdatedAt == nil {
		c.UpdatedAt = ptr(now)
	}
	rec := &clientRecord{c: c, verifyStarted: s.now()}
	if c.ClientURI != "" && c.ClientURIVerification == nil {
		s.startVerification(rec)
	}
	if c.TokenEndpointAuthMethod != cfapi.AuthMethodNone {
		rec.secret = secret
		if rec.secret == "" {
			rec.secret = newSecret()
		}
		if c.HasRotatedSecret {
			rec.previous = newSecret()
		}
	}
	s.store(accountID, rec)
	return s.view(rec), nil
}

// GetClient returns a client as the API would show it.
func (s *Server) GetClient(accountID, clientID string) (cfapi.OAuthClient, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	rec := s.findLocked(accountID, clientID)
	if rec == nil {
		return cfapi.OAuthClient{}, false
	}
	return s.view(rec), true
}

// Clients returns the account's clients in creation order.
func (s *Server) Clients(accountID string) []cfapi.OAuthClient {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	out := []cfapi.OAuthClient{}
	if acct := s.accounts[accountID]; acct != nil {
		for _, id := range acct.order {
			out = append(out, s.view(acct.clients[id]))
		}
	}
	return out
}

// MutateClient changes a client out of band (drift made in the dashboard), without
// validation, and bumps updated_at. The client id cannot change. Changing the
// verification status to pending or in_progress restarts its clock (VerifyAfter,
// Strict.FailVerificationAfter).
func (s *Server) MutateClient(accountID, clientID string, fn func(*cfapi.OAuthClient)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	rec := s.findLocked(accountID, clientID)
	if rec == nil {
		return ErrNotFound
	}
	s.refreshVerification(rec)
	before := rec.c.ClientURIVerification
	c := cloneClient(rec.c)
	fn(&c)
	c = cloneClient(c) // drop aliasing with whatever fn kept
	c.ClientID = clientID
	c.UpdatedAt = ptr(s.now().UTC())
	if v := c.ClientURIVerification; v != nil && unfinished(v.Status) && (before == nil || before.Status != v.Status) {
		rec.verifyStarted = s.now()
	}
	rec.c = c
	s.trackClientDNSLocked(rec, s.now())
	return nil
}

// DeleteClient deletes a client out of band.
func (s *Server) DeleteClient(accountID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	if !s.removeClient(accountID, clientID) {
		return ErrNotFound
	}
	return nil
}

// SetVerification forces the client_uri verification status, as if Cloudflare's DNS
// poller had decided. pending and in_progress restart the clock (VerifyAfter,
// Strict.FailVerificationAfter). It does not bump updated_at.
func (s *Server) SetVerification(accountID, clientID, status string) error {
	switch status {
	case cfapi.VerificationPending, cfapi.VerificationInProgress, cfapi.VerificationVerified, cfapi.VerificationFailed:
	default:
		return fmt.Errorf("cfemu: unknown verification status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	rec := s.findLocked(accountID, clientID)
	if rec == nil {
		return ErrNotFound
	}
	if rec.c.ClientURI == "" {
		return fmt.Errorf("cfemu: client %s has no client_uri to verify", clientID)
	}
	if rec.c.ClientURIVerification == nil {
		s.startVerification(rec)
	}
	rec.c.ClientURIVerification.Status = status
	if unfinished(status) {
		rec.verifyStarted = s.now()
	}
	return nil
}

// CheckSecret reports whether secret is the client's current secret or the previous
// one that a rotation left valid.
func (s *Server) CheckSecret(accountID, clientID, secret string) SecretState {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commitDueLocked()
	rec := s.findLocked(accountID, clientID)
	if rec == nil || secret == "" {
		return SecretState{}
	}
	eq := func(a string) bool { return a != "" && subtle.ConstantTimeCompare([]byte(a), []byte(secret)) == 1 }
	return SecretState{Current: eq(rec.secret), Previous: rec.c.HasRotatedSecret && eq(rec.previous)}
}

func (s *Server) findLocked(accountID, clientID string) *clientRecord {
	if acct := s.accounts[accountID]; acct != nil {
		return acct.clients[clientID]
	}
	return nil
}

// unfinished reports whether a verification status still waits for the DNS poller.
func unfinished(status string) bool {
	return status == cfapi.VerificationPending || status == cfapi.VerificationInProgress
}
