package cfemu

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"

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

// Stats returns a copy of the request counters and the number of clients per account.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	st := s.stats
	st.Requests = maps.Clone(s.stats.Requests)
	st.Clients = map[string]int{}
	for id, acct := range s.accounts {
		if len(acct.clients) > 0 {
			st.Clients[id] = len(acct.clients)
		}
	}
	return st
}

// Requests returns the log of public API requests, oldest first (at most the last
// 10,000).
func (s *Server) Requests() []RecordedRequest {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	s.stats = Stats{Requests: map[string]int{}}
	s.log = nil
}

// Reset forgets everything: clients, counters, log, faults and rate-limit windows.
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
	out := []cfapi.OAuthClient{}
	if acct := s.accounts[accountID]; acct != nil {
		for _, id := range acct.order {
			out = append(out, s.view(acct.clients[id]))
		}
	}
	return out
}

// MutateClient changes a client out of band (drift made in the dashboard), without
// validation, and bumps updated_at. The client id cannot change. Setting the
// verification to in_progress restarts its VerifyAfter clock.
func (s *Server) MutateClient(accountID, clientID string, fn func(*cfapi.OAuthClient)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
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
	if v := c.ClientURIVerification; v != nil && v.Status == cfapi.VerificationInProgress &&
		(before == nil || before.Status != cfapi.VerificationInProgress) {
		rec.verifyStarted = s.now()
	}
	rec.c = c
	return nil
}

// DeleteClient deletes a client out of band.
func (s *Server) DeleteClient(accountID, clientID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	acct := s.accounts[accountID]
	if acct == nil || acct.clients[clientID] == nil {
		return ErrNotFound
	}
	delete(acct.clients, clientID)
	acct.order = slices.DeleteFunc(acct.order, func(id string) bool { return id == clientID })
	return nil
}

// SetVerification forces the client_uri verification status, as if Cloudflare's DNS
// poller had decided. in_progress restarts the VerifyAfter clock. It does not bump
// updated_at.
func (s *Server) SetVerification(accountID, clientID, status string) error {
	switch status {
	case cfapi.VerificationPending, cfapi.VerificationInProgress, cfapi.VerificationVerified, cfapi.VerificationFailed:
	default:
		return fmt.Errorf("cfemu: unknown verification status %q", status)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
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
	if status == cfapi.VerificationInProgress {
		rec.verifyStarted = s.now()
	}
	return nil
}

// CheckSecret reports whether secret is the client's current secret or the previous
// one that a rotation left valid.
func (s *Server) CheckSecret(accountID, clientID, secret string) SecretState {
	s.mu.Lock()
	defer s.mu.Unlock()
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

// control is one /_emulator request: plain JSON in and out, no credentials.
type control struct {
	w http.ResponseWriter
	r *http.Request
}

func (c control) reply(status int, v any) {
	c.w.Header().Set("Content-Type", "application/json")
	c.w.WriteHeader(status)
	_ = json.NewEncoder(c.w).Encode(v)
}

func (c control) fail(status int, format string, args ...any) {
	c.reply(status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

// failFor answers 404 for ErrNotFound and 400 for anything else.
func (c control) failFor(err error) {
	status := http.StatusBadRequest
	if errors.Is(err, ErrNotFound) {
		status = http.StatusNotFound
	}
	c.fail(status, "%v", err)
}

// decode reads a JSON body into dst, answering 400 itself when it cannot.
func (c control) decode(dst any) bool {
	dec := json.NewDecoder(io.LimitReader(c.r.Body, maxRequestBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		c.fail(http.StatusBadRequest, "invalid JSON body: %v", err)
		return false
	}
	return true
}

// clientRef names a client in control request bodies.
type clientRef struct {
	AccountID string `json:"account_id"`
	ClientID  string `json:"client_id"`
}

// serveControl serves /_emulator/*. Control calls are never counted or logged.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request, p string) {
	c := control{w: w, r: r}
	if rest, ok := strings.CutPrefix(p, "/clients/"); ok {
		s.controlClient(c, rest)
		return
	}
	switch r.Method + " " + p {
	case "GET /stats":
		c.reply(http.StatusOK, s.Stats())
	case "GET /requests":
		c.reply(http.StatusOK, requestsView(s.Requests()))
	case "POST /reset":
		s.Reset()
		c.reply(http.StatusOK, map[string]bool{"reset": true})
	case "POST /reset-stats":
		s.ResetStats()
		c.reply(http.StatusOK, map[string]bool{"reset": true})
	case "PUT /faults":
		var f Faults
		if !c.decode(&f) {
			return
		}
		if err := f.Validate(); err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
		s.SetFaults(f)
		c.reply(http.StatusOK, f)
	case "DELETE /faults":
		s.ClearFaults()
		c.reply(http.StatusOK, Faults{Rules: []FaultRule{}})
	case "POST /verification":
		s.controlVerification(c)
	case "POST /clients":
		s.controlSeed(c)
	case "POST /secret-check":
		var in struct {
			clientRef
			ClientSecret string `json:"client_secret"`
		}
		if c.decode(&in) {
			c.reply(http.StatusOK, s.CheckSecret(in.AccountID, in.ClientID, in.ClientSecret))
		}
	default:
		c.fail(http.StatusNotFound, "unknown emulator control endpoint %s %s", r.Method, controlPrefix+p)
	}
}

func (s *Server) controlVerification(c control) {
	var in struct {
		clientRef
		Status string `json:"status"`
	}
	if !c.decode(&in) {
		return
	}
	if err := s.SetVerification(in.AccountID, in.ClientID, in.Status); err != nil {
		c.failFor(err)
		return
	}
	got, _ := s.GetClient(in.AccountID, in.ClientID)
	c.reply(http.StatusOK, got)
}

func (s *Server) controlSeed(c control) {
	var in struct {
		AccountID    string            `json:"account_id"`
		Client       cfapi.OAuthClient `json:"client"`
		ClientSecret string            `json:"client_secret"`
	}
	if !c.decode(&in) {
		return
	}
	got, err := s.SeedClient(in.AccountID, in.Client, in.ClientSecret)
	if err != nil {
		c.fail(http.StatusBadRequest, "%v", err)
		return
	}
	c.reply(http.StatusOK, got)
}

// controlClient reads (GET), changes (PATCH: a JSON merge of the sent fields,
// unvalidated) or deletes one client out of band: /clients/{account_id}/{client_id}.
func (s *Server) controlClient(c control, rest string) {
	parts := strings.Split(rest, "/")
	var accountID, clientID string
	var err1, err2 error
	if len(parts) == 2 {
		accountID, err1 = url.PathUnescape(parts[0])
		clientID, err2 = url.PathUnescape(parts[1])
	}
	if len(parts) != 2 || err1 != nil || err2 != nil || accountID == "" || clientID == "" {
		c.fail(http.StatusNotFound, "expected %s/clients/{account_id}/{client_id}", controlPrefix)
		return
	}
	switch c.r.Method {
	case http.MethodGet:
		got, ok := s.GetClient(accountID, clientID)
		if !ok {
			c.failFor(ErrNotFound)
			return
		}
		c.reply(http.StatusOK, got)
	case http.MethodDelete:
		if err := s.DeleteClient(accountID, clientID); err != nil {
			c.failFor(err)
			return
		}
		c.reply(http.StatusOK, map[string]string{"id": clientID})
	case http.MethodPatch:
		var patch map[string]json.RawMessage
		if !c.decode(&patch) {
			return
		}
		current, ok := s.GetClient(accountID, clientID)
		if !ok {
			c.failFor(ErrNotFound)
			return
		}
		if err := mergeJSON(&current, patch); err != nil {
			c.fail(http.StatusBadRequest, "%v", err)
			return
		}
		if err := s.MutateClient(accountID, clientID, func(cl *cfapi.OAuthClient) { *cl = current }); err != nil {
			c.failFor(err)
			return
		}
		got, _ := s.GetClient(accountID, clientID)
		c.reply(http.StatusOK, got)
	default:
		c.fail(http.StatusMethodNotAllowed, "use GET, PATCH or DELETE")
	}
}

// mergeJSON overlays the patch's top-level fields on c. On error c is unchanged.
func mergeJSON(c *cfapi.OAuthClient, patch map[string]json.RawMessage) error {
	b, err := json.Marshal(c)
	if err != nil {
		return err
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(b, &fields); err != nil {
		return err
	}
	maps.Copy(fields, patch)
	merged, err := json.Marshal(fields)
	if err != nil {
		return err
	}
	var out cfapi.OAuthClient
	dec := json.NewDecoder(strings.NewReader(string(merged)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return fmt.Errorf("invalid client fields: %w", err)
	}
	*c = out
	return nil
}

// requestView shows a recorded body as JSON when it is JSON, else as a string.
type requestView struct {
	Method string          `json:"method"`
	Route  string          `json:"route"`
	Path   string          `json:"path"`
	Body   json.RawMessage `json:"body,omitempty"`
	Status int             `json:"status"`
}

func requestsView(in []RecordedRequest) []requestView {
	out := make([]requestView, len(in))
	for i, r := range in {
		v := requestView{Method: r.Method, Route: r.Route, Path: r.Path, Status: r.Status}
		switch {
		case len(r.Body) == 0:
		case json.Valid(r.Body):
			v.Body = r.Body
		default:
			v.Body, _ = json.Marshal(string(r.Body))
		}
		out[i] = v
	}
	return out
}
