package main

import (
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

func ptr[T any](v T) *T { return &v }

// confidential is an object for a client the operator creates.
func confidential(ns, name, account string) *v1alpha1.OAuthClient {
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			AccountID:               account,
			CredentialsRef:          &v1alpha1.CredentialsSecretReference{Name: "cf"},
			ClientName:              ptr("App " + name),
			ClientURI:               ptr("https://" + name + ".example.com"),
			RedirectURIs:            &[]string{"https://" + name + ".example.com/cb"},
			GrantTypes:              &[]v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode},
			ResponseTypes:           &[]v1alpha1.ResponseType{v1alpha1.ResponseTypeCode},
			Scopes:                  &[]string{"account.read"},
			TokenEndpointAuthMethod: ptr(v1alpha1.AuthMethodClientSecretBasic),
		},
	}
}

func get(t *testing.T, ns, name string) *v1alpha1.OAuthClient {
	t.Helper()
	o := &v1alpha1.OAuthClient{}
	if err := suite.kube.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
		t.Fatal(err)
	}
	return o
}

func readyReason(t *testing.T, ns, name string) string {
	t.Helper()
	c := meta.FindStatusCondition(get(t, ns, name).Status.Conditions, v1alpha1.ConditionReady)
	if c == nil {
		return ""
	}
	return string(c.Status) + "/" + c.Reason
}

func create(t *testing.T, o *v1alpha1.OAuthClient) {
	t.Helper()
	if err := suite.kube.Create(t.Context(), o); err != nil {
		t.Fatal(err)
	}
}

// observeDrifting adopts a seeded client in Observe mode with a spec that differs from
// it, and waits for the drift to be reported.
func observeDrifting(t *testing.T, ns, name, account string) {
	t.Helper()
	seeded, err := suite.emu.SeedClient(account, cfapi.OAuthClient{
		ClientName: "Legacy", RedirectURIs: []string{"https://legacy.example.com/cb"}, GrantTypes: []string{"authorization_code"},
		ResponseTypes: []string{"code"}, Scopes: []string{"account.read"}, TokenEndpointAuthMethod: "client_secret_basic",
	}, "s")
	if err != nil {
		t.Fatal(err)
	}
	create(t, &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{AccountID: account, ClientID: &seeded.ClientID, ManagementPolicy: v1alpha1.ManagementPolicyObserve,
			CredentialsRef: &v1alpha1.CredentialsSecretReference{Name: "cf"}, ClientName: ptr("Renamed")},
	})
	eventually(t, 20*time.Second, name+" drift reported", func() bool {
		return readyReason(t, ns, name) == "True/"+v1alpha1.ReasonDriftDetected
	})
}

// containsAll reports the first of want missing from s.
func containsAll(s string, want ...string) string {
	for _, w := range want {
		if !strings.Contains(s, w) {
			return w
		}
	}
	return ""
}

func TestStatusShowsStateRecordAndSecretAge(t *testing.T) {
	ns := namespace(t, "status-a")
	account := "5a7a1e5000000000000000000000000a"
	create(t, confidential(ns, "web", account))
	pub := confidential(ns, "pub", account)
	pub.Spec.LogoURI = ptr("https://pub.example.com/logo.png")
	pub.Spec.Visibility = ptr(v1alpha1.VisibilityPublic)
	create(t, pub)
	eventually(t, 20*time.Second, "web Ready", func() bool { return readyReason(t, ns, "web") == "True/Reconciled" })
	eventually(t, 20*time.Second, "pub awaiting verification", func() bool {
		return readyReason(t, ns, "pub") == "False/"+v1alpha1.ReasonAwaitingVerification
	})
	observeDrifting(t, ns, "legacy", account)
	record := get(t, ns, "pub").Status.VerificationRecord
	if record == nil {
		t.Fatal("no verification record in status")
	}

	r := plugin(t, nil, "status", "-n", ns)
	noToken(t, r)
	if r.code != 0 {
		t.Fatalf("status: exit %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	lines = append(lines[:1], lines[2:]...) // legacy, checked by --todo below
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "NAME") || !strings.Contains(lines[0], "RECORD TO PUBLISH") {
		t.Fatalf("status table:\n%s", r.stdout)
	}
	if missing := containsAll(lines[1], "pub", "False", v1alpha1.ReasonAwaitingVerification, "in_progress", record.Content, "private"); missing != "" {
		t.Errorf("row %q lacks %q", lines[1], missing)
	}
	if missing := containsAll(lines[2], "web", "True", "Reconciled"); missing != "" {
		t.Errorf("row %q lacks %q", lines[2], missing)
	}
	if fields := strings.Fields(lines[2]); !strings.HasSuffix(fields[len(fields)-3], "s") && !strings.HasSuffix(fields[len(fields)-3], "m") {
		t.Errorf("web's secret age is missing: %q", lines[2])
	}

	todo := plugin(t, nil, "status", "-A", "--todo")
	if todo.code != 0 {
		t.Fatalf("status --todo: exit %d\n%s", todo.code, todo.stderr)
	}
	if missing := containsAll(todo.stdout, ns, "pub", "publish the DNS record "+record.Name, "legacy", "make the spec match Cloudflare"); missing != "" {
		t.Errorf("--todo output lacks %q:\n%s", missing, todo.stdout)
	}
	if strings.Contains(todo.stdout, " web ") {
		t.Errorf("--todo lists web, which needs nothing:\n%s", todo.stdout)
	}
}

func TestRotateWaitsForTheNewSecret(t *testing.T) {
	ns := namespace(t, "rotate-a")
	account := "5a7a1e5000000000000000000000000b"
	create(t, confidential(ns, "rot", account))
	eventually(t, 20*time.Second, "rot Ready", func() bool { return readyReason(t, ns, "rot") == "True/Reconciled" })
	id := get(t, ns, "rot").Status.ClientID
	secretOf := func() string {
		sec := &corev1.Secret{}
		if err := suite.kube.Get(t.Context(), client.ObjectKey{Namespace: ns, Name: "rot-oauth-client"}, sec); err != nil {
			t.Fatal(err)
		}
		return string(sec.Data[v1alpha1.SecretKeyClientSecret])
	}
	old := secretOf()

	r := plugin(t, nil, "rotate", "rot", "-n", ns, "--overlap", "1h", "--wait", "--timeout", "30s")
	noToken(t, r)
	if r.code != 0 {
		t.Fatalf("rotate: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "waiting for the new secret") || !strings.Contains(r.stderr, "done") {
		t.Errorf("no progress on stderr: %q", r.stderr)
	}
	now := secretOf()
	if now == old || !suite.emu.CheckSecret(account, id, now).Current {
		t.Fatal("after rotate --wait the Secret does not hold a new, current secret")
	}
	if !suite.emu.CheckSecret(account, id, old).Previous {
		t.Error("the previous secret is not valid during the 1h overlap")
	}
	o := get(t, ns, "rot")
	if o.Spec.SecretRotation.Overlap == nil || o.Spec.SecretRotation.Overlap.Duration != time.Hour {
		t.Errorf("overlap = %v, want 1h", o.Spec.SecretRotation.Overlap)
	}
}

func TestRestartVerification(t *testing.T) {
	ns := namespace(t, "verify-a")
	account := "5a7a1e5000000000000000000000000c"
	create(t, confidential(ns, "ver", account))
	eventually(t, 20*time.Second, "ver Ready", func() bool { return readyReason(t, ns, "ver") == "True/Reconciled" })

	busy := plugin(t, nil, "restart-verification", "ver", "-n", ns)
	if busy.code != 1 || !strings.Contains(busy.stderr, "verification is in_progress") {
		t.Fatalf("restart while in progress: exit %d, %q; want 1 naming the status", busy.code, busy.stderr)
	}

	id := get(t, ns, "ver").Status.ClientID
	if err := suite.emu.SetVerification(account, id, cfapi.VerificationFailed); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "the failure in status", func() bool {
		v := get(t, ns, "ver").Status.ClientURIVerification
		return v != nil && v.Status == cfapi.VerificationFailed
	})
	r := plugin(t, nil, "restart-verification", "ver", "-n", ns, "--wait", "--timeout", "30s")
	noToken(t, r)
	if r.code != 0 {
		t.Fatalf("restart-verification: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "verification is in_progress") {
		t.Errorf("stdout %q does not report the new status", r.stdout)
	}
	if got := get(t, ns, "ver").Annotations[v1alpha1.AnnotationVerificationRestarted]; got == "" {
		t.Error("the operator did not record the restart")
	}
}

func TestUsageAndErrors(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"unknown subcommand", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"unknown flag", []string{"status", "--bogus"}, 2, "unknown flag: --bogus"},
		{"rotate without a name", []string{"rotate"}, 2, "exactly one OAuthClient name"},
		{"negative overlap", []string{"rotate", "x", "--overlap", "-1h"}, 2, "--overlap must not be negative"},
		{"missing object", []string{"rotate", "nope", "-n", "default"}, 1, `"nope" not found`},
		{"unreachable cluster", []string{"status", "--server", "https://127.0.0.1:1"}, 1, "listing OAuthClients"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := plugin(t, nil, tt.args...)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.wantCode, tt.wantErr)
			}
		})
	}
	help := plugin(t, nil, "status", "--help")
	if help.code != 0 || !strings.Contains(help.stdout, "Examples:") || !strings.Contains(help.stdout, "--todo") {
		t.Errorf("status --help: exit %d\n%s", help.code, help.stdout)
	}
}
