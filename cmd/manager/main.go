// Command manager runs the cloudflare-oauth-operator controller manager.
package main

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/validation"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	"sigs.k8s.io/controller-runtime/pkg/metrics/filters"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	cloudflarev1alpha1 "github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/controller"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

var scheme = runtime.NewScheme()

// The scheme holds the types the manager reads and writes as typed objects: core/v1
// (Secrets, Namespaces) and its own. The rest (the CRD, DNSEndpoints) are read as
// metadata or unstructured. Registering all of client-go's types would cost a few MiB
// of heap for nothing.
func init() {
	utilruntime.Must(corev1.AddToScheme(scheme))
	utilruntime.Must(cloudflarev1alpha1.AddToScheme(scheme))
}

func main() {
	var (
		metricsAddr          string
		probeAddr            string
		enableLeaderElection bool
		secureMetrics        bool
		enableHTTP2          bool
		leaderElectionID     string
		pprofAddr            string
	)
	flag.StringVar(&metricsAddr, "metrics-bind-address", "0", "The address the metrics endpoint binds to. "+
		"Use :8443 for HTTPS or :8080 for HTTP, or leave as 0 to disable the metrics service.")
	flag.StringVar(&probeAddr, "health-probe-bind-address", ":8081", "The address the probe endpoint binds to.")
	flag.StringVar(&pprofAddr, "pprof-bind-address", "",
		"The address Go's pprof endpoints (/debug/pprof/...) bind to, for example 127.0.0.1:6060; empty disables them. "+
			"They are unauthenticated: bind them to localhost only.")
	var leaderElectionNamespace string
	var leaseDuration, renewDeadline, retryPeriod time.Duration
	flag.StringVar(&leaderElectionNamespace, "leader-election-namespace", "",
		"Namespace of the leader election Lease; defaults to the Pod's namespace in-cluster (required out of cluster).")
	flag.DurationVar(&leaseDuration, "leader-elect-lease-duration", 15*time.Second,
		"How long a non-leader waits before taking over a lease that was not renewed.")
	flag.DurationVar(&renewDeadline, "leader-elect-renew-deadline", 10*time.Second,
		"How long the leader keeps retrying to renew its lease before giving up leadership.")
	flag.DurationVar(&retryPeriod, "leader-elect-retry-period", 2*time.Second,
		"How often leader election clients retry.")
	flag.BoolVar(&enableLeaderElection, "leader-elect", false,
		"Enable leader election for controller manager. Enabling this will ensure there is only one active controller manager.")
	flag.StringVar(&leaderElectionID, "leader-election-id", "cloudflare-oauth-operator.oauth-operator.dev",
		"Name of the leader election Lease. Installs sharing a namespace (for example shards with different "+
			"--label-selector) need different names, or only one of them runs.")
	flag.BoolVar(&secureMetrics, "metrics-secure", true,
		"If set, the metrics endpoint is served securely via HTTPS, with authentication and authorization.")
	flag.BoolVar(&enableHTTP2, "enable-http2", false,
		"If set, HTTP/2 will be enabled for the metrics server (off by default: HTTP/2 Stream Cancellation and Rapid Reset CVEs).")
	var op operatorOptions
	op.bindFlags(flag.CommandLine)
	opts := zap.Options{Development: false}
	opts.BindFlags(flag.CommandLine)
	flag.Parse()

	ctrl.SetLogger(zap.New(zap.UseFlagOptions(&opts)))
	setupLog := ctrl.Log.WithName("setup")

	// Validate options before anything starts.
	if err := op.validate(); err != nil {
		setupLog.Error(err, "invalid options")
		os.Exit(2)
	}

	var tlsOpts []func(*tls.Config)
	if !enableHTTP2 {
		tlsOpts = append(tlsOpts, func(c *tls.Config) { c.NextProtos = []string{"http/1.1"} })
	}
	metricsOptions := metricsserver.Options{
		BindAddress:   metricsAddr,
		SecureServing: secureMetrics,
		TLSOpts:       tlsOpts,
	}
	if secureMetrics {
		metricsOptions.FilterProvider = filters.WithAuthenticationAndAuthorization
	}

	mgr, err := ctrl.NewManager(ctrl.GetConfigOrDie(), ctrl.Options{
		Scheme:                  scheme,
		Metrics:                 metricsOptions,
		HealthProbeBindAddress:  probeAddr,
		PprofBindAddress:        pprofAddr,
		LeaderElection:          enableLeaderElection,
		LeaderElectionID:        leaderElectionID,
		LeaderElectionNamespace: leaderElectionNamespace,
		LeaseDuration:           &leaseDuration,
		RenewDeadline:           &renewDeadline,
		RetryPeriod:             &retryPeriod,
		// The process exits as soon as the manager stops, so releasing the lease on the
		// way out is safe, and lets the standby replica take over at once.
		LeaderElectionReleaseOnCancel: true,
		Cache:                         op.cacheOptions(),
	})
	if err != nil {
		setupLog.Error(err, "unable to create manager")
		os.Exit(1)
	}

	ctx := ctrl.SetupSignalHandler()
	if err := op.setupController(ctx, mgr); err != nil {
		setupLog.Error(err, "unable to set up the OAuthClient controller")
		os.Exit(1)
	}

	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up health check")
		os.Exit(1)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		setupLog.Error(err, "unable to set up ready check")
		os.Exit(1)
	}

	setupLog.Info("starting manager")
	if err := mgr.Start(ctx); err != nil {
		setupLog.Error(err, "problem running manager")
		os.Exit(1)
	}
}

// operatorOptions are the operator's own flags, next to kubebuilder's standard ones.
type operatorOptions struct {
	apiURL                   string
	apiTimeout               time.Duration
	syncPeriod               time.Duration
	verificationPollInterval time.Duration
	defaultCredentialsSecret string
	namespace                string
	defaultCredentialsUser   string
	createSettle             time.Duration
	issuer                   string
	authorizationServer      string
	maxConcurrentReconciles  int
	requestBudget            string
	watchNamespaces          []string
	labelSelector            labels.Selector
	// defaultCredentialsNamespaces selects the namespaces that may use the default
	// credentials; nil means every namespace.
	defaultCredentialsNamespaces labels.Selector
}

func envOr(name, def string) string {
	if v, ok := os.LookupEnv(name); ok && v != "" {
		return v
	}
	return def
}

func (o *operatorOptions) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&o.apiURL, "cloudflare-api-url", envOr("CLOUDFLARE_API_URL", cfapi.DefaultBaseURL),
		"Base URL of Cloudflare's API (env CLOUDFLARE_API_URL). The local emulator is http://127.0.0.1:8787/client/v4.")
	fs.DurationVar(&o.apiTimeout, "cloudflare-api-timeout", 30*time.Second, "Timeout of each Cloudflare API request.")
	fs.DurationVar(&o.syncPeriod, "remote-sync-period", time.Minute,
		"How long a List of an account's clients is reused, and how often each object is re-checked for drift.")
	fs.DurationVar(&o.verificationPollInterval, "verification-poll-interval", 15*time.Second,
		"How often objects whose client URI verification is pending re-read the account snapshot.")
	fs.StringVar(&o.defaultCredentialsSecret, "default-credentials-secret", envOr("CLOUDFLARE_CREDENTIALS_SECRET", ""),
		"Secret in the operator's namespace holding default credentials (apiToken, or email and apiKey), for objects "+
			"without spec.credentialsRef. CLOUDFLARE_API_TOKEN (or CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY) take precedence.")
	fs.StringVar(&o.namespace, "operator-namespace", envOr("POD_NAMESPACE", ""),
		"The operator's namespace (env POD_NAMESPACE; required): it holds the leader-election Lease and the "+
			"--default-credentials-secret.")
	fs.StringVar(&o.defaultCredentialsUser, "default-credentials-user", envOr("CLOUDFLARE_USER", ""),
		"The Cloudflare user of the default credentials (env CLOUDFLARE_USER; any stable name). Credentials naming the "+
			"same user (a credentials Secret's cloudflare.oauth-operator.dev/cloudflare-user annotation) share one "+
			"request budget, as Cloudflare's rate limit is per user.")
	fs.DurationVar(&o.createSettle, "create-settle", 0,
		"How long after a Create ended without a clear answer (timeout, reset, 5xx) it may still commit in Cloudflare; "+
			"the search for its client waits that long instead of creating another. 0 means --cloudflare-api-timeout.")
	fs.StringVar(&o.authorizationServer, "authorization-server", envOr("CLOUDFLARE_AUTHORIZATION_SERVER", ""),
		"Base URL of the OAuth authorization server the clients are used with (env CLOUDFLARE_AUTHORIZATION_SERVER; "+
			"default "+controller.DefaultAuthorizationServer+"): the issuer, and the base of the endpoints "+
			"spec.secretTemplate renders (/oauth2/auth, /oauth2/token, /.well-known/jwks.json, ...). When set, it is "+
			"also written to client Secrets without a template under the key issuer.")
	fs.StringVar(&o.issuer, "oauth-issuer", envOr("CLOUDFLARE_OAUTH_ISSUER", ""),
		"Deprecated: use --authorization-server, of which it is an alias.")
	fs.IntVar(&o.maxConcurrentReconciles, "max-concurrent-reconciles", 4, "How many OAuthClients are reconciled in parallel.")
	fs.StringVar(&o.requestBudget, "cloudflare-request-budget", "1080/5m",
		"Cloudflare requests allowed per Cloudflare user per window (N/DURATION), paced client-side below "+
			"Cloudflare's 1200/5m per user so its 5-minute block is never triggered; 0 disables pacing.")
	o.defaultCredentialsNamespaces = labels.SelectorFromSet(labels.Set{cloudflarev1alpha1.LabelDefaultCredentials: "true"})
	fs.Func("default-credentials-namespace-selector",
		"Label selector of the namespaces whose OAuthClients may use the operator-wide default credentials (objects "+
			"without credentialsRef or accountRef). Default "+cloudflarev1alpha1.LabelDefaultCredentials+"=true: a namespace opts "+
			"in with that label. An empty value allows every namespace (a single-tenant cluster); shared clusters give "+
			"teams a CloudflareAccount instead.",
		o.setDefaultCredentialsNamespaces)
	fs.Func("watch-namespaces",
		"Comma-separated namespaces whose OAuthClients this install manages; empty (the default) means all. "+
			"Secrets are then watched only in these namespaces, plus the default credentials Secret.",
		o.setWatchNamespaces)
	fs.Func("label-selector",
		"Label selector (for example shard=a, or 'shard in (a,b)') restricting the OAuthClients this install manages, "+
			"so that several installs can share one cluster. Empty (the default) means every OAuthClient.",
		o.setLabelSelector)
}

func (o *operatorOptions) validate() error {
	u, err := url.Parse(o.apiURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("--cloudflare-api-url %q must be an absolute http(s) URL", o.apiURL)
	}
	if o.apiTimeout <= 0 || o.syncPeriod <= 0 || o.verificationPollInterval <= 0 {
		return errors.New("--cloudflare-api-timeout, --remote-sync-period and --verification-poll-interval must be positive")
	}
	if o.maxConcurrentReconciles < 1 {
		return errors.New("--max-concurrent-reconciles must be at least 1")
	}
	if _, err := controller.ParseRequestBudget(o.requestBudget); err != nil {
		return fmt.Errorf("--cloudflare-request-budget: %w", err)
	}
	if o.namespace == "" {
		return errors.New("--operator-namespace (or POD_NAMESPACE) is required: the default credentials Secret and the leader-election Lease live there")
	}
	if o.createSettle < 0 {
		return errors.New("--create-settle must not be negative")
	}
	if _, _, err := o.authorizationServers(); err != nil {
		return err
	}
	if creds := envCredentials(); creds != (cfapi.Credentials{}) {
		if err := creds.Validate(); err != nil {
			return fmt.Errorf("default credentials from the environment: %w", err)
		}
	}
	return nil
}

// authorizationServers resolves --authorization-server and its deprecated alias
// --oauth-issuer: the server's base URL, and the issuer to write to client Secrets
// without a template. That key appears exactly when the server was named explicitly,
// as --oauth-issuer always did, so an upgrade changes no existing Secret.
func (o *operatorOptions) authorizationServers() (server, issuer string, err error) {
	named, alias := strings.TrimRight(o.authorizationServer, "/"), strings.TrimRight(o.issuer, "/")
	if named != "" && alias != "" && named != alias {
		return "", "", errors.New("--oauth-issuer is a deprecated alias of --authorization-server: set only one")
	}
	issuer = cmp.Or(named, alias)
	server = cmp.Or(issuer, controller.DefaultAuthorizationServer)
	u, err := url.Parse(server)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", "", fmt.Errorf("--authorization-server %q must be an absolute http(s) URL without a query or fragment", server)
	}
	return server, issuer, nil
}

// setWatchNamespaces parses --watch-namespaces: a comma-separated list of namespace
// names, deduplicated.
func (o *operatorOptions) setWatchNamespaces(v string) error {
	o.watchNamespaces = nil
	for ns := range strings.SplitSeq(v, ",") {
		ns = strings.TrimSpace(ns)
		if ns == "" || slices.Contains(o.watchNamespaces, ns) {
			continue
		}
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return fmt.Errorf("%q is not a namespace name: %s", ns, strings.Join(errs, "; "))
		}
		o.watchNamespaces = append(o.watchNamespaces, ns)
	}
	return nil
}

// setLabelSelector parses --label-selector with the same syntax as kubectl -l.
func (o *operatorOptions) setLabelSelector(v string) error {
	o.labelSelector = nil
	if strings.TrimSpace(v) == "" {
		return nil
	}
	sel, err := labels.Parse(v)
	if err != nil {
		return err
	}
	o.labelSelector = sel
	return nil
}

// cacheOptions scopes the manager's cache to what this install manages. The controller
// watches Secrets (metadata only) to notice credential and client Secret changes; with
// --watch-namespaces those informers cover the watched namespaces, plus the one default
// credentials Secret in the operator's namespace, selected by name so that the operator
// namespace's other Secrets stay out of memory.
//
// Cached objects keep only what the operator reads (see leanCache).
func (o *operatorOptions) cacheOptions() cache.Options {
	opts := cache.Options{DefaultTransform: leanCache}
	if len(o.watchNamespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range o.watchNamespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
		if o.defaultCredentialsSecret != "" && !slices.Contains(o.watchNamespaces, o.namespace) {
			secretNamespaces := maps.Clone(opts.DefaultNamespaces)
			secretNamespaces[o.namespace] = cache.Config{
				FieldSelector: fields.OneTermEqualSelector("metadata.name", o.defaultCredentialsSecret),
			}
			opts.ByObject = map[client.Object]cache.ByObject{&corev1.Secret{}: {Namespaces: secretNamespaces}}
		}
	}
	if o.labelSelector != nil {
		if opts.ByObject == nil {
			opts.ByObject = map[client.Object]cache.ByObject{}
		}
		// Namespaces stays nil so it defaults to DefaultNamespaces.
		opts.ByObject[&cloudflarev1alpha1.OAuthClient{}] = cache.ByObject{Label: o.labelSelector}
	}
	return opts
}

// leanCache drops from every cached object what the operator never reads; at thousands
// of objects it is a large share of the manager's memory:
//   - managed fields, from every object;
//   - kubectl's last-applied-configuration annotation (a second copy of the spec);
//   - from metadata-only objects (Secrets, Namespaces, the CRD), annotations and owner
//     references: their watches read names, labels, finalizers, deletion and
//     resourceVersion only. Secret data and annotations are read from the apiserver.
//
// The operator never Updates an object it read from the cache (it patches, and a patch
// from a stripped copy leaves the stripped fields alone).
func leanCache(obj any) (any, error) {
	o, ok := obj.(metav1.Object)
	if !ok {
		return obj, nil // a tombstone
	}
	o.SetManagedFields(nil)
	if m, isMeta := obj.(*metav1.PartialObjectMetadata); isMeta {
		m.Annotations, m.OwnerReferences = nil, nil
		return obj, nil
	}
	if a := o.GetAnnotations(); a[corev1.LastAppliedConfigAnnotation] != "" {
		a = maps.Clone(a)
		delete(a, corev1.LastAppliedConfigAnnotation)
		o.SetAnnotations(a)
	}
	return obj, nil
}

// envCredentials reads the operator-wide default credentials from the environment.
func envCredentials() cfapi.Credentials {
	if token := os.Getenv("CLOUDFLARE_API_TOKEN"); token != "" {
		return cfapi.Credentials{APIToken: token}
	}
	return cfapi.Credentials{Email: os.Getenv("CLOUDFLARE_EMAIL"), APIKey: os.Getenv("CLOUDFLARE_API_KEY")}
}

// setupController wires the OAuthClient reconciler: one shared HTTP client with a
// timeout, a cfapi client per set of credentials, metrics.
func (o *operatorOptions) setupController(ctx context.Context, mgr ctrl.Manager) error {
	httpClient := &http.Client{Timeout: o.apiTimeout}
	newAPI := func(creds cfapi.Credentials) (controller.CloudflareAPI, error) {
		return cfapi.New(creds,
			cfapi.WithBaseURL(o.apiURL),
			cfapi.WithHTTPClient(httpClient),
			cfapi.WithUserAgent("cloudflare-oauth-operator/"+version),
			cfapi.WithObserver(controller.ObserveRequests(creds)),
		)
	}
	budget, _ := controller.ParseRequestBudget(o.requestBudget) // validated before start
	server, issuer, _ := o.authorizationServers()               // validated before start
	r := &controller.OAuthClientReconciler{
		Client:    mgr.GetClient(),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("cloudflare-oauth-operator"),
		NewAPI:    newAPI,
		DefaultCredentials: controller.DefaultCredentials{
			Env:     envCredentials(),
			EnvUser: o.defaultCredentialsUser,
			Secret:  types.NamespacedName{Namespace: o.namespace, Name: o.defaultCredentialsSecret},
		},
		RequestTimeout:           o.apiTimeout,
		CreateSettle:             o.createSettle,
		SyncPeriod:               o.syncPeriod,
		VerificationPollInterval: o.verificationPollInterval,
		Issuer:                   issuer,
		AuthorizationServer:      server,
		MaxConcurrentReconciles:  o.maxConcurrentReconciles,
		RequestBudget:            budget,
	}
	r.DefaultCredentialsNamespaces = o.defaultCredentialsNamespaces
	if err := r.SetupWithManager(ctx, mgr); err != nil {
		return err
	}
	if err := (&controller.CloudflareAccountReconciler{OAuth: r}).SetupWithManager(mgr); err != nil {
		return err
	}
	return r.RegisterMetrics(mgr)
}

func (o *operatorOptions) setDefaultCredentialsNamespaces(v string) error {
	if strings.TrimSpace(v) == "" {
		o.defaultCredentialsNamespaces = nil
		return nil
	}
	sel, err := labels.Parse(v)
	if err != nil {
		return fmt.Errorf("--default-credentials-namespace-selector %q: %w", v, err)
	}
	o.defaultCredentialsNamespaces = sel
	return nil
}
