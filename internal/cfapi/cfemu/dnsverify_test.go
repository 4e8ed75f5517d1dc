package cfemu_test

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

const propagation = 30 * time.Second

// verifyEnv is a DNS emulator whose out-of-zone verifications would finish after 10 s
// (VerifyAfter) or fail after 1 h (FailVerificationAfter), to show that hosts inside a
// zone ignore both.
func verifyEnv(t *testing.T, mutate ...func(*cfemu.Options)) *env {
	t.Helper()
	return newDNSEnv(t, append([]func(*cfemu.Options){func(o *cfemu.Options) {
		o.VerifyAfter = 10 * time.Second
		o.Strict.FailVerificationAfter = time.Hour
		o.DNSPropagation = propagation
	}}, mutate...)...)
}

// client creates a client whose client_uri is uri and returns its id and text.
func (e *env) client(t *testing.T, uri string) (id, text string) {
	t.Helper()
	c := e.create(t, `{"client_name":"App","client_uri":"`+uri+`","redirect_uris":["https://app.example.com/cb"],`+
		`"grant_types":["authorization_code"],"response_types":["code"],"scopes":["account.read"],"token_endpoint_auth_method":"none"}`)
	return c.ClientID, c.ClientURIVerification.Text
}

// status reads the verification status through the API, as the operator does.
func (e *env) status(t *testing.T, id string) string {
	t.Helper()
	r := e.call(t, http.MethodGet, clients+"/"+id, "")
	c, ok := e.emu.GetClient(acct, id)
	if r.status != 200 || !ok {
		t.Fatalf("get client: %s", r.raw)
	}
	return c.ClientURIVerification.Status
}

// step is one moment of a verification story: advance the clock, then act, then
// expect.
type step struct {
	advance time.Duration
	act     func(t *testing.T, e *env, text string)
	want    string
}

// publish creates, through the API, a TXT record in example.com.
func publish(name string, content func(text string) string) func(*testing.T, *env, string) {
	return func(t *testing.T, e *env, text string) {
		t.Helper()
		e.addTXT(t, zoneA, name, content(text))
	}
}

func quoted(text string) string   { return cfapi.QuoteTXT(text) }
func unquoted(text string) string { return text }

// unpublish deletes, through the API, every TXT record at name in example.com.
func unpublish(name string) func(*testing.T, *env, string) {
	return func(t *testing.T, e *env, _ string) {
		t.Helper()
		for _, r := range e.emu.DNSRecords(zoneA) {
			if r.Type == "TXT" && r.Name == name {
				if got := e.call(t, http.MethodDelete, records+"/"+r.ID, "").codes(); got != "200" {
					t.Fatalf("delete: %s", got)
				}
			}
		}
	}
}

func TestVerificationReadsTheEmulatedDNS(t *testing.T) {
	const host = "app.example.com"
	tests := []struct {
		name  string
		uri   string
		opts  func(*cfemu.Options)
		steps []step
	}{
		{name: "quoted record at the host verifies after the propagation delay", steps: []step{
			{advance: time.Hour, want: cfapi.VerificationInProgress}, // neither VerifyAfter nor FailVerificationAfter
			{act: publish(host, quoted), want: cfapi.VerificationInProgress},
			{advance: propagation - time.Nanosecond, want: cfapi.VerificationInProgress},
			{advance: time.Nanosecond, want: cfapi.VerificationVerified},
		}},
		{name: "unquoted content verifies too", steps: []step{
			{advance: time.Minute, act: publish(host, unquoted), want: cfapi.VerificationInProgress},
			{advance: propagation, want: cfapi.VerificationVerified},
		}},
		{name: "content split into quoted strings verifies", steps: []step{
			{act: publish(host, func(text string) string { return fmt.Sprintf(`"%s" "%s"`, text[:10], text[10:]) })},
			{advance: propagation, want: cfapi.VerificationVerified},
		}},
		{name: "record removed before the delay restarts it", steps: []step{
			{act: publish(host, quoted)},
			{advance: propagation - time.Second, act: unpublish(host), want: cfapi.VerificationInProgress},
			{advance: time.Hour, act: publish(host, quoted), want: cfapi.VerificationInProgress},
			{advance: propagation - time.Second, want: cfapi.VerificationInProgress},
			{advance: time.Second, want: cfapi.VerificationVerified},
		}},
		{name: "record removed after the delay, unread meanwhile, has verified", steps: []step{
			{act: publish(host, quoted)},
			{advance: propagation, act: unpublish(host), want: cfapi.VerificationVerified},
		}},
		{name: "verified stays verified when the record goes", steps: []step{
			{act: publish(host, quoted)},
			{advance: propagation, act: unpublish(host), want: cfapi.VerificationVerified},
			{advance: 100 * time.Hour, want: cfapi.VerificationVerified},
		}},
		{name: "records elsewhere do not count; the verification fails after 48 h", steps: []step{
			{act: publish("example.com", quoted)},      // the apex, not the host
			{act: publish("_cf-verify."+host, quoted)}, // a label below it
			{act: publish(host, func(string) string { return `"cloudflare_oauth_client_publisher=other"` })},
			{act: publish(host, func(text string) string { return `"` + text + ` "` })}, // a stray space
			{advance: 48*time.Hour - time.Nanosecond, want: cfapi.VerificationInProgress},
			{advance: time.Nanosecond, want: cfapi.VerificationFailed},
			{act: publish(host, quoted), advance: propagation, want: cfapi.VerificationFailed}, // too late
		}},
		{name: "record published as the timeout ends: failed wins the tie", opts: func(o *cfemu.Options) { o.DNSVerificationTimeout = time.Hour }, steps: []step{
			{advance: time.Hour - propagation, act: publish(host, quoted)},
			{advance: propagation, want: cfapi.VerificationFailed},
		}},
		{name: "no delay and no timeout", opts: func(o *cfemu.Options) { o.DNSPropagation, o.DNSVerificationTimeout = -1, -1 }, steps: []step{
			{advance: 1000 * time.Hour, want: cfapi.VerificationInProgress},
			{act: publish(host, quoted), want: cfapi.VerificationVerified},
		}},
		{name: "the apex of a zone", uri: "https://Example.COM", steps: []step{
			{act: publish("example.com", quoted)},
			{advance: propagation, want: cfapi.VerificationVerified},
		}},
		{name: "a host outside every zone keeps VerifyAfter", uri: "https://app.example.net", steps: []step{
			{advance: 10*time.Second - time.Nanosecond, want: cfapi.VerificationInProgress},
			{advance: time.Nanosecond, want: cfapi.VerificationVerified},
		}},
		{name: "a host outside every zone keeps FailVerificationAfter", uri: "https://app.example.net",
			opts: func(o *cfemu.Options) { o.VerifyAfter = 0 }, steps: []step{
				{advance: time.Hour, want: cfapi.VerificationFailed},
			}},
		{name: "a record added out of band counts", steps: []step{
			{act: func(_ *testing.T, e *env, text string) {
				e.emu.AddDNSRecord(zoneA, cfapi.DNSRecord{Type: "TXT", Name: host, Content: quoted(text)})
			}},
			{advance: propagation, want: cfapi.VerificationVerified},
		}},
		{name: "a deeper zone holds the host: a record in the parent does not count", uri: "https://app.sub.example.com", steps: []step{
			{act: func(_ *testing.T, e *env, _ string) { e.emu.AddZone("sub.example.com") }},
			{act: publish("app.sub.example.com", quoted)},
			{advance: propagation, want: cfapi.VerificationInProgress},
			{act: func(t *testing.T, e *env, text string) {
				z := e.emu.Zones()[3]
				e.addTXT(t, z.ID, "app.sub.example.com", quoted(text))
			}},
			{advance: propagation, want: cfapi.VerificationVerified},
		}},
		{name: "a zone added later takes over from VerifyAfter", uri: "https://app.later.example", steps: []step{
			{advance: 5 * time.Second, act: func(_ *testing.T, e *env, _ string) { e.emu.AddZone("later.example") }},
			{advance: time.Hour - 5*time.Second - time.Nanosecond, want: cfapi.VerificationInProgress},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*cfemu.Options)
			if tt.opts != nil {
				opts = append(opts, tt.opts)
			}
			e := verifyEnv(t, opts...)
			uri := tt.uri
			if uri == "" {
				uri = "https://App.Example.com/welcome"
			}
			id, text := e.client(t, uri)
			for i, s := range tt.steps {
				e.clock.Advance(s.advance)
				if s.act != nil {
					s.act(t, e, text)
				}
				if s.want != "" {
					if got := e.status(t, id); got != s.want {
						t.Fatalf("step %d: status %q, want %q", i, got, s.want)
					}
				}
			}
		})
	}
}

// TestVerificationRestartNeedsTheNewText: a restart (PATCH with the same client_uri
// after a failure) draws a new text; the record for the old one no longer counts.
func TestVerificationRestartNeedsTheNewText(t *testing.T) {
	e := verifyEnv(t, func(o *cfemu.Options) { o.DNSVerificationTimeout = time.Hour })
	id, oldText := e.client(t, "https://app.example.com")
	e.clock.Advance(time.Hour)
	if got := e.status(t, id); got != cfapi.VerificationFailed {
		t.Fatalf("status %q, want failed", got)
	}
	e.addTXT(t, zoneA, "app.example.com", quoted(oldText))
	r := e.call(t, http.MethodPatch, clients+"/"+id, `{"client_uri":"https://app.example.com"}`)
	if r.status != 200 {
		t.Fatalf("restart: %s", r.raw)
	}
	c, _ := e.emu.GetClient(acct, id)
	newText := c.ClientURIVerification.Text
	if newText == oldText || c.ClientURIVerification.Status != cfapi.VerificationInProgress {
		t.Fatalf("after the restart: %+v", c.ClientURIVerification)
	}
	e.clock.Advance(propagation)
	if got := e.status(t, id); got != cfapi.VerificationInProgress {
		t.Errorf("the old text verified the restarted verification: %q", got)
	}
	e.addTXT(t, zoneA, "app.example.com", quoted(newText))
	e.clock.Advance(propagation)
	if got := e.status(t, id); got != cfapi.VerificationVerified {
		t.Errorf("the new text did not verify: %q", got)
	}
}

// TestVerificationWithARecordThatLandsLater: a Create that timed out but commits later
// starts the propagation delay when it lands.
func TestVerificationWithARecordThatLandsLater(t *testing.T) {
	e := verifyEnv(t)
	id, text := e.client(t, "https://app.example.com")
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{{Route: cfemu.RouteCreateDNSRecord, Kind: cfemu.FaultReset,
		CommitAfter: time.Minute, Count: 1}}})
	body := fmt.Sprintf(`{"type":"TXT","name":"app.example.com","content":%q,"ttl":1}`, quoted(text))
	if got := e.send(t, http.MethodPost, records, body); got != 0 {
		t.Fatalf("create: %d, want a reset", got)
	}
	e.clock.Advance(time.Minute + propagation - time.Nanosecond)
	if got := e.status(t, id); got != cfapi.VerificationInProgress {
		t.Errorf("before the landed record's delay: %q", got)
	}
	e.clock.Advance(time.Nanosecond)
	if got := e.status(t, id); got != cfapi.VerificationVerified {
		t.Errorf("after the landed record's delay: %q", got)
	}
}

// TestVerificationAfterOutOfBandEdits: changing the client_uri host out of band
// (MutateClient) makes the record at the old host irrelevant.
func TestVerificationAfterOutOfBandEdits(t *testing.T) {
	e := verifyEnv(t)
	id, text := e.client(t, "https://app.example.com")
	e.addTXT(t, zoneA, "app.example.com", quoted(text))
	e.clock.Advance(propagation / 2)
	if err := e.emu.MutateClient(acct, id, func(c *cfapi.OAuthClient) { c.ClientURI = "https://www.example.com" }); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(propagation)
	if got := e.status(t, id); got != cfapi.VerificationInProgress {
		t.Errorf("after moving the host: %q", got)
	}
	e.addTXT(t, zoneA, "www.example.com", quoted(text))
	e.clock.Advance(propagation)
	if got := e.status(t, id); got != cfapi.VerificationVerified {
		t.Errorf("with the record at the new host: %q", got)
	}
}
