package main

import (
	"flag"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

func parseFlags(t *testing.T, args ...string) (*operatorOptions, error) {
	t.Helper()
	fs := flag.NewFlagSet("manager", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	o := &operatorOptions{}
	o.bindFlags(fs)
	return o, fs.Parse(args)
}

func TestScopeFlags(t *testing.T) {
	tests := []struct {
		name          string
		args          []string
		wantNS        []string
		wantSelector  string
		wantParseFail bool
	}{
		{name: "defaults manage everything"},
		{name: "namespaces are trimmed and deduplicated", args: []string{"--watch-namespaces= team-a, team-b,,team-a "}, wantNS: []string{"team-a", "team-b"}},
		{name: "an empty list means all namespaces", args: []string{"--watch-namespaces="}},
		{name: "a namespace must be a DNS label", args: []string{"--watch-namespaces=Team_A"}, wantParseFail: true},
		{name: "equality selector", args: []string{"--label-selector=shard=a"}, wantSelector: "shard=a"},
		{name: "set-based selector", args: []string{"--label-selector=shard in (a,b),!legacy"}, wantSelector: "!legacy,shard in (a,b)"},
		{name: "malformed selector", args: []string{"--label-selector=shard in a"}, wantParseFail: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(t, tc.args...)
			if tc.wantParseFail {
				if err == nil {
					t.Fatalf("parsing %v succeeded, want an error", tc.args)
				}
				return
			}
			if err != nil {
				t.Fatalf("parsing %v: %v", tc.args, err)
			}
			if diff := cmp.Diff(tc.wantNS, o.watchNamespaces); diff != "" {
				t.Errorf("watch namespaces (-want +got):\n%s", diff)
			}
			got := ""
			if o.labelSelector != nil {
				got = o.labelSelector.String()
			}
			if got != tc.wantSelector {
				t.Errorf("label selector = %q, want %q", got, tc.wantSelector)
			}
		})
	}
}

// TestCacheScope runs the manager's cache options against a real API server: only the
// watched namespaces' OAuthClients matching the selector are cached, Secrets only in the
// watched namespaces, and of the operator's namespace only the default credentials
// Secret.
func TestCacheScope(t *testing.T) {
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	g := NewWithT(t)
	ctx := t.Context()

	k8s, err := client.New(env.Config, client.Options{Scheme: scheme})
	g.Expect(err).NotTo(HaveOccurred())
	for _, ns := range []string{"team-a", "team-b", "unwatched", "operator"} {
		g.Expect(k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}})).To(Succeed())
		for _, name := range []string{"creds", "other"} {
			g.Expect(k8s.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name}})).To(Succeed())
		}
		for name, shard := range map[string]string{"mine": "a", "theirs": "b"} {
			obj := &v1alpha1.OAuthClient{
				ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, Labels: map[string]string{"shard": shard}},
				Spec:       v1alpha1.OAuthClientSpec{AccountID: "023e105f4ecef8ad9ca31a8372d0c353", ClientID: new("a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4")},
			}
			g.Expect(k8s.Create(ctx, obj)).To(Succeed())
		}
	}

	o, err := parseFlags(t, "--watch-namespaces=team-a,team-b", "--label-selector=shard=a",
		"--default-credentials-secret=creds", "--operator-namespace=operator")
	g.Expect(err).NotTo(HaveOccurred())
	opts := o.cacheOptions()
	opts.Scheme = scheme
	c, err := cache.New(env.Config, opts)
	g.Expect(err).NotTo(HaveOccurred())
	// The controller maps the default credentials Secret to objects through a field
	// index listed across namespaces; that must work on a namespace-scoped cache too.
	g.Expect(c.IndexField(ctx, &v1alpha1.OAuthClient{}, "credentials", func(o client.Object) []string {
		return []string{o.(*v1alpha1.OAuthClient).CredentialsSecretName()}
	})).To(Succeed())
	go func() { _ = c.Start(ctx) }()
	g.Expect(c.WaitForCacheSync(ctx)).To(BeTrue())

	list := &v1alpha1.OAuthClientList{}
	g.Eventually(func(g Gomega) []string {
		g.Expect(c.List(ctx, list)).To(Succeed())
		got := make([]string, 0, len(list.Items))
		for _, o := range list.Items {
			got = append(got, o.Namespace+"/"+o.Name)
		}
		return got
	}).WithTimeout(10 * time.Second).Should(ConsistOf("team-a/mine", "team-b/mine"))

	g.Expect(c.List(ctx, list, client.MatchingFields{"credentials": ""})).To(Succeed())
	g.Expect(list.Items).To(HaveLen(2))

	secretMeta := func(ns, name string) error {
		m := &metav1.PartialObjectMetadata{}
		m.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Secret"))
		return c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, m)
	}
	g.Eventually(func() error { return secretMeta("operator", "creds") }).WithTimeout(10 * time.Second).Should(Succeed())
	g.Expect(secretMeta("team-a", "other")).To(Succeed())
	g.Expect(secretMeta("team-b", "creds")).To(Succeed())
	g.Expect(apierrors.IsNotFound(secretMeta("operator", "other"))).To(BeTrue(), "only the default credentials Secret of the operator namespace is cached")
	g.Expect(secretMeta("unwatched", "creds")).NotTo(Succeed(), "Secrets of unwatched namespaces are not cached")
}

// The default credentials Secret and the leader-election Lease live in the operator's
// namespace: without one the manager refuses to start, and the other new flags are
// validated before anything starts.
func TestOperatorNamespaceAndHardeningFlags(t *testing.T) {
	t.Setenv("POD_NAMESPACE", "")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{name: "no operator namespace", args: nil, wantErr: "--operator-namespace"},
		{name: "operator namespace given", args: []string{"--operator-namespace=cfoauth-system"}},
		{name: "negative create settle", args: []string{"--operator-namespace=x", "--create-settle=-1s"}, wantErr: "--create-settle"},
		{name: "default credentials user", args: []string{"--operator-namespace=x", "--default-credentials-user=platform@example.com"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := parseFlags(t, tc.args...)
			if err != nil {
				t.Fatal(err)
			}
			err = o.validate()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("validate: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("validate = %v, want an error naming %s", err, tc.wantErr)
			}
		})
	}
}

// The benchmark's per-object GET baseline is not part of the production binary: its
// flag exists only in builds with the benchbaseline tag (make bench).
func TestNoBenchmarkBaselineInProductionBuilds(t *testing.T) {
	if f := flag.CommandLine.Lookup("bench-per-object-get"); f != nil {
		t.Fatal("--bench-per-object-get is registered in a build without the benchbaseline tag")
	}
}
