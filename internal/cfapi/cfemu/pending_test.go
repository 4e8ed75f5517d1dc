package cfemu_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// TestCommitAfter: the request is answered with the fault and its write lands
// CommitAfter later on the clock, or is dropped if it is no longer valid then.
func TestCommitAfter(t *testing.T) {
	const later = 10 * time.Second
	tests := []struct {
		name       string
		rule       cfemu.FaultRule
		method     string
		path       func(f fixture) string
		body       string
		headers    []string
		setup      func(t *testing.T, f fixture) // before the request
		meanwhile  func(t *testing.T, f fixture) // between the request and its due time
		wantStatus int
		wantQueued int
		// before and after check the state just before and at the due time.
		before, after func(t *testing.T, f fixture)
	}{
		{
			name: "create lands later with created_at = commit time", rule: cfemu.FaultRule{Kind: cfemu.FaultTimeout, Delay: time.Millisecond},
			method: http.MethodPost, path: func(fixture) string { return clients }, body: validBody,
			wantStatus: 504, wantQueued: 1,
			before: func(t *testing.T, f fixture) { wantClients(t, f.e, 1) },
			after: func(t *testing.T, f fixture) {
				all := wantClients(t, f.e, 2)
				if c := all[1]; !c.CreatedAt.Equal(epoch.Add(later)) || !c.UpdatedAt.Equal(epoch.Add(later)) || c.ClientName != "App" {
					t.Errorf("landed client %+v", c)
				}
			},
		},
		{
			name: "rotate lands later", rule: cfemu.FaultRule{Kind: cfemu.FaultInternalError},
			method: http.MethodPost, path: rotatePath, wantStatus: 500, wantQueued: 1,
			before: func(t *testing.T, f fixture) { wantSecret(t, f, cfemu.SecretState{Current: true}) },
			after: func(t *testing.T, f fixture) {
				wantSecret(t, f, cfemu.SecretState{Previous: true})
				if got, _ := f.e.emu.GetClient(acct, f.client.ClientID); !got.HasRotatedSecret || !got.UpdatedAt.Equal(epoch.Add(later)) {
					t.Errorf("after the rotate landed: %+v", got)
				}
			},
		},
		{
			name: "rotate dropped when a rotated secret exists by then", rule: cfemu.FaultRule{Kind: cfemu.FaultReset},
			method: http.MethodPost, path: rotatePath, wantStatus: 0, wantQueued: 1,
			meanwhile: func(t *testing.T, f fixture) {
				// The client retried and got through; then the late write is refused.
				if r := f.e.call(t, http.MethodPost, rotatePath(f), ""); r.status != 200 {
					t.Fatalf("retry: %s", r.raw)
				}
			},
			after: func(t *testing.T, f fixture) { wantSecret(t, f, cfemu.SecretState{Previous: true}) },
		},
		{
			name: "patch lands later", rule: cfemu.FaultRule{Kind: cfemu.FaultBadGateway},
			method: http.MethodPatch, path: clientPath, body: `{"client_name":"Late"}`, wantStatus: 502, wantQueued: 1,
			before: func(t *testing.T, f fixture) { wantName(t, f, "App") },
			after: func(t *testing.T, f fixture) {
				wantName(t, f, "Late")
				if got, _ := f.e.emu.GetClient(acct, f.client.ClientID); !got.UpdatedAt.Equal(epoch.Add(later)) {
					t.Errorf("updated_at %v", got.UpdatedAt)
				}
			},
		},
		{
			name: "patch dropped when the client is deleted meanwhile", rule: cfemu.FaultRule{Kind: cfemu.FaultInternalError},
			method: http.MethodPatch, path: clientPath, body: `{"client_name":"Late"}`, wantStatus: 500, wantQueued: 1,
			meanwhile: func(t *testing.T, f fixture) {
				if err := f.e.emu.DeleteClient(acct, f.client.ClientID); err != nil {
					t.Fatal(err)
				}
			},
			after: func(t *testing.T, f fixture) { wantClients(t, f.e, 0) },
		},
		{
			name: "delete lands later", rule: cfemu.FaultRule{Kind: cfemu.FaultUnavailable},
			method: http.MethodDelete, path: clientPath, wantStatus: 503, wantQueued: 1,
			before: func(t *testing.T, f fixture) { wantClients(t, f.e, 1) },
			after:  func(t *testing.T, f fixture) { wantClients(t, f.e, 0) },
		},
		{
			name: "delete-rotated lands later", rule: cfemu.FaultRule{Kind: cfemu.FaultInternalError},
			method: http.MethodDelete, path: rotatePath, wantStatus: 500, wantQueued: 1,
			setup: func(t *testing.T, f fixture) {
				if r := f.e.call(t, http.MethodPost, rotatePath(f), ""); r.status != 200 {
					t.Fatalf("rotate: %s", r.raw)
				}
			},
			before: func(t *testing.T, f fixture) { wantSecret(t, f, cfemu.SecretState{Previous: true}) },
			after: func(t *testing.T, f fixture) {
				wantSecret(t, f, cfemu.SecretState{})
				if got, _ := f.e.emu.GetClient(acct, f.client.ClientID); got.HasRotatedSecret {
					t.Error("has_rotated_secret still true")
				}
			},
		},
		{
			name: "delete-rotated with nothing to delete queues nothing", rule: cfemu.FaultRule{Kind: cfemu.FaultInternalError},
			method: http.MethodDelete, path: rotatePath, wantStatus: 500, wantQueued: 0,
		},
		{
			name: "an invalid write queues nothing", rule: cfemu.FaultRule{Kind: cfemu.FaultInternalError},
			method: http.MethodPost, path: func(fixture) string { return clients }, body: `{"client_name":"x"}`,
			wantStatus: 500, wantQueued: 0,
			after: func(t *testing.T, f fixture) { wantClients(t, f.e, 1) },
		},
		{
			name: "an unauthenticated write queues nothing", rule: cfemu.FaultRule{Kind: cfemu.FaultInternalError},
			method: http.MethodPost, path: func(fixture) string { return clients }, body: validBody,
			headers: []string{"Authorization", "Bearer wrong"}, wantStatus: 500, wantQueued: 0,
			after: func(t *testing.T, f fixture) { wantClients(t, f.e, 1) },
		},
		{
			name: "a read is just answered with the fault", rule: cfemu.FaultRule{Kind: cfemu.FaultInternalError},
			method: http.MethodGet, path: clientPath, wantStatus: 500, wantQueued: 0,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			f := fixture{e: e, client: e.create(t, validBody)}
			if tt.setup != nil {
				tt.setup(t, f)
			}
			tt.rule.CommitAfter, tt.rule.Count = later, 1
			e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{tt.rule}})
			status := e.send(t, tt.method, tt.path(f), tt.body, tt.headers...)
			if status != tt.wantStatus {
				t.Errorf("status %d, want %d (the fault)", status, tt.wantStatus)
			}
			if got := e.emu.PendingCommits(); got != tt.wantQueued {
				t.Errorf("PendingCommits = %d, want %d", got, tt.wantQueued)
			}
			if tt.meanwhile != nil {
				tt.meanwhile(t, f)
			}
			e.clock.Advance(later - time.Nanosecond)
			if tt.before != nil {
				tt.before(t, f)
			}
			e.clock.Advance(time.Nanosecond)
			if tt.after != nil {
				tt.after(t, f)
			}
			if got := e.emu.PendingCommits(); got != 0 {
				t.Errorf("PendingCommits = %d after the due time", got)
			}
		})
	}
}

// TestCommitAfterOrderAndLaziness: writes land in due order, at the start of the next
// API request too, and each with its own due time.
func TestCommitAfterOrderAndLaziness(t *testing.T) {
	e := newEnv(t)
	c := e.create(t, validBody)
	e.emu.SetFaults(cfemu.Faults{Rules: []cfemu.FaultRule{
		{Route: cfemu.RouteUpdateClient, Kind: cfemu.FaultInternalError, CommitAfter: 20 * time.Second, Count: 1},
		{Route: cfemu.RouteUpdateClient, Kind: cfemu.FaultInternalError, CommitAfter: 10 * time.Second, Count: 1},
	}})
	e.call(t, http.MethodPatch, clients+"/"+c.ClientID, `{"client_name":"Second"}`) // due at +20s
	e.call(t, http.MethodPatch, clients+"/"+c.ClientID, `{"client_name":"First"}`)  // due at +10s
	e.clock.Advance(time.Minute)
	// The API request lands both before it is answered.
	r := e.call(t, http.MethodGet, clients+"/"+c.ClientID, "")
	var got cfapi.OAuthClient
	if err := json.Unmarshal(r.env.Result, &got); err != nil || got.ClientName != "Second" || !got.UpdatedAt.Equal(epoch.Add(20*time.Second)) {
		t.Errorf("after both landed: %s", r.raw)
	}
	if st := e.emu.Stats(); st.PendingCommits != 0 || st.Faults != 2 {
		t.Errorf("stats %+v", st)
	}
}

func TestCommitAfterRateLimitStatsAndReset(t *testing.T) {
	e := newEnv(t, func(o *cfemu.Options) { o.RateLimit, o.RateWindow = 2, time.Minute })
	ctl := e.controlFunc(t)
	if status, _ := ctl("PUT", "/faults", `{"rules":[{"route":"`+cfemu.RouteCreateClient+`","kind":"500","commit_after":"1m","count":1}]}`); status != 200 {
		t.Fatalf("PUT /faults with commit_after: %d", status)
	}
	r := e.call(t, http.MethodPost, clients, validBody)
	if r.status != 500 || r.header.Get("Ratelimit") != `"default";r=1;t=60` {
		t.Errorf("commit-later request: %d %q; want the fault, counted by the limiter", r.status, r.header.Get("Ratelimit"))
	}
	if status, st := ctl("GET", "/stats", ""); status != 200 || st["pending_commits"] != float64(1) {
		t.Errorf("stats: %d %v", status, st)
	}
	e.emu.Reset()
	e.clock.Advance(time.Hour)
	if n := e.emu.PendingCommits(); n != 0 || len(e.emu.Clients(acct)) != 0 {
		t.Errorf("Reset kept %d pending commits, %d clients", n, len(e.emu.Clients(acct)))
	}
}

func TestCommitAfterValidation(t *testing.T) {
	for _, f := range []cfemu.Faults{
		{Rules: []cfemu.FaultRule{{Kind: "500", CommitAfter: -time.Second}}},
		{Rules: []cfemu.FaultRule{{Kind: "500", CommitAfter: 9000 * time.Hour}}},
		{Rules: []cfemu.FaultRule{{Kind: "500", CommitAfter: time.Second, AfterApply: true}}},
	} {
		if f.Validate() == nil {
			t.Errorf("Validate(%+v) = nil", f)
		}
	}
	e := newEnv(t)
	ctl := e.controlFunc(t)
	for _, bad := range []string{
		`{"rules":[{"kind":"500","commit_after":"soon"}]}`,
		`{"rules":[{"kind":"500","commit_after":"-1s"}]}`,
		`{"rules":[{"kind":"500","commit_after":"1s","after_apply":true}]}`,
		`{"rules":[{"kind":"500","comit_after":"1s"}]}`,
	} {
		if status, _ := ctl("PUT", "/faults", bad); status != 400 {
			t.Errorf("PUT /faults %s: %d, want 400", bad, status)
		}
	}
	b, err := json.Marshal(cfemu.FaultRule{Kind: "reset", CommitAfter: 90 * time.Second})
	if err != nil || string(b) != `{"kind":"reset","commit_after":"1m30s"}` {
		t.Errorf("marshal: %s %v", b, err)
	}
}

// fixture is one TestCommitAfter case's emulator and the client created before the
// fault was installed.
type fixture struct {
	e      *env
	client cfapi.CreatedOAuthClient
}

func clientPath(f fixture) string { return clients + "/" + f.client.ClientID }
func rotatePath(f fixture) string { return clientPath(f) + "/rotate_secret" }

func wantClients(t *testing.T, e *env, n int) []cfapi.OAuthClient {
	t.Helper()
	all := e.emu.Clients(acct)
	if len(all) != n {
		t.Fatalf("%d clients, want %d", len(all), n)
	}
	return all
}

func wantSecret(t *testing.T, f fixture, want cfemu.SecretState) {
	t.Helper()
	if got := f.e.emu.CheckSecret(acct, f.client.ClientID, f.client.ClientSecret); got != want {
		t.Errorf("original secret %+v, want %+v", got, want)
	}
}

func wantName(t *testing.T, f fixture, want string) {
	t.Helper()
	if got, _ := f.e.emu.GetClient(acct, f.client.ClientID); got.ClientName != want {
		t.Errorf("client_name %q, want %q", got.ClientName, want)
	}
}

// send is call for requests that may get no response at all (a "reset" fault): it
// returns the status, 0 for a transport error.
func (e *env) send(t *testing.T, method, path, body string, headers ...string) int {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, e.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		return 0
	}
	_ = resp.Body.Close()
	return resp.StatusCode
}
