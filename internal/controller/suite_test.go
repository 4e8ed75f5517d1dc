package controller_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"go.uber.org/zap/zapcore"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	logf "sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/log/zap"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/controller"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// The envtest suite runs the real manager against a real kube-apiserver and the
// in-process Cloudflare emulator, and asserts what users see: status, conditions,
// Secrets, Events, and the exact Cloudflare calls made.

const (
	testToken    = "suite-token-8f1c2d"
	hygieneToken = "HYGIENE-token-6d1f0a9c3b"
	// readOnlyToken holds only OAuth Client Read: every write is answered 403.
	readOnlyToken = "suite-read-only-4e7a"
	syncPeriod    = 2 * time.Second
	// claimNamespace plays the operator's namespace, where client claims live.
	claimNamespace = "cfoauth-system"
)

var (
	env       *envtest.Environment
	k8sClient client.Client
	emu       *cfemu.Server
	emuURL    string
	cancelMgr context.CancelFunc

	// failNextBindings makes the manager's next N metadata patches that record a
	// client ID fail, as if the apiserver were down right after a Create.
	failNextBindings atomic.Int32
	// failNextSecretWrites makes the manager's next N client Secret writes fail.
	failNextSecretWrites atomic.Int32
	// conflictNextSecretWrites makes the manager's next N client Secret updates fail
	// with a Conflict, as if someone had edited the Secret since it was read.
	conflictNextSecretWrites atomic.Int32
)

func TestController(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "OAuthClient controller suite")
}

var _ = BeforeSuite(func() {
	// Every log line, debug included, is also kept for the secret-hygiene test.
	logf.SetLogger(zap.New(zap.WriteTo(io.MultiWriter(GinkgoWriter, &capturedLogs)), zap.UseDevMode(true), zap.Level(zapcore.Level(-5))))
	var err error
	env, err = testenv.Start()
	Expect(err).NotTo(HaveOccurred())

	scheme := runtime.NewScheme()
	Expect(clientgoscheme.AddToScheme(scheme)).To(Succeed())
	Expect(v1alpha1.AddToScheme(scheme)).To(Succeed())
	k8sClient, err = client.New(env.Config, client.Options{Scheme: scheme})
	Expect(err).NotTo(HaveOccurred())

	// The emulator plays every harsher answer where Cloudflare's behaviour is
	// undocumented (house style 21): shuffled lists, rotate conflicts as 400, promotion
	// judged before the PATCH, tokens of one user sharing a rate limit, a read-only
	// token. CFEMU_LENIENT=1 runs the suite against the lenient defaults instead.
	strict := cfemu.Harsh(20261130)
	if os.Getenv("CFEMU_LENIENT") == "1" {
		strict = cfemu.Strict{}
	}
	emu = cfemu.New(cfemu.Options{
		Tokens:         map[string][]string{testToken: nil, hygieneToken: nil},
		Users:          map[string]string{testToken: "suite-user", hygieneToken: "suite-user"},
		ReadOnlyTokens: []string{readOnlyToken},
		Strict:         strict,
		// The suite's token may also publish verification records; zones are added per
		// test, so hosts outside them keep the verification timer.
		DNS:            map[string]cfemu.DNSPermissions{testToken: cfemu.DNSEditor()},
		DNSPropagation: 300 * time.Millisecond,
	})
	srv := httptest.NewServer(emu)
	DeferCleanup(srv.Close)
	emuURL = srv.URL + "/client/v4"

	Expect(k8sClient.Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: claimNamespace}})).To(Succeed())

	mgr, err := ctrl.NewManager(managerConfig(), ctrl.Options{
		Scheme:  scheme,
		Metrics: metricsserver.Options{BindAddress: "0"},
	})
	Expect(err).NotTo(HaveOccurred())

	httpClient := &http.Client{Timeout: 5 * time.Second}
	r := &controller.OAuthClientReconciler{
		Client:    interceptor.NewClient(noWatch{mgr.GetClient()}, faultyWrites()),
		APIReader: mgr.GetAPIReader(),
		Recorder:  mgr.GetEventRecorder("cloudflare-oauth-operator"),
		NewAPI: func(creds cfapi.Credentials) (controller.CloudflareAPI, error) {
			return cfapi.New(creds, cfapi.WithBaseURL(emuURL), cfapi.WithHTTPClient(httpClient), cfapi.WithObserver(controller.ObserveRequests(creds)))
		},
		SyncPeriod:               syncPeriod,
		VerificationPollInterval: 300 * time.Millisecond,
		RequestTimeout:           httpClient.Timeout,
		CreateSettle:             time.Second,
		Issuer:                   "https://dash.cloudflare.com",
		AuthorizationServer:      srv.URL,
		MaxConcurrentReconciles:  4,
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancelMgr = cancel
	Expect(r.SetupWithManager(ctx, mgr)).To(Succeed())
	// Tokens are verified when an account or its Secret changes, and then hourly: the
	// tests count every call an account makes.
	Expect((&controller.CloudflareAccountReconciler{OAuth: r, VerifyInterval: time.Hour}).SetupWithManager(mgr)).To(Succeed())
	go func() {
		defer GinkgoRecover()
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
})

var _ = AfterSuite(func() {
	if cancelMgr != nil {
		cancelMgr()
	}
	if env != nil {
		Expect(env.Stop()).To(Succeed())
	}
})

// lockedBuffer is a concurrency-safe log sink.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

var capturedLogs lockedBuffer

// noWatch adapts the manager's client to interceptor.NewClient; the reconciler never
// watches through its client.
type noWatch struct{ client.Client }

func (noWatch) Watch(context.Context, client.ObjectList, ...client.ListOption) (watch.Interface, error) {
	return nil, errors.New("watch is not supported")
}

// faultyWrites fails selected apiserver writes on demand.
func faultyWrites() interceptor.Funcs {
	return interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			if o, ok := obj.(*v1alpha1.OAuthClient); ok && o.Annotations[v1alpha1.AnnotationClientID] != "" && o.Annotations[v1alpha1.AnnotationCreateIntent] == "" {
				if failNextBindings.Add(-1) >= 0 {
					return errInjected
				}
				failNextBindings.Store(0)
			}
			return c.Patch(ctx, obj, patch, opts...)
		},
		Create: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.CreateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && failSecretWrite() {
				return errInjected
			}
			return c.Create(ctx, obj, opts...)
		},
		Update: func(ctx context.Context, c client.WithWatch, obj client.Object, opts ...client.UpdateOption) error {
			if _, ok := obj.(*corev1.Secret); ok && failSecretWrite() {
				return errInjected
			}
			if _, ok := obj.(*corev1.Secret); ok && conflictNextSecretWrites.Add(-1) >= 0 {
				return apierrors.NewConflict(corev1.Resource("secrets"), obj.GetName(), errors.New("injected conflict"))
			}
			if _, ok := obj.(*corev1.Secret); ok {
				conflictNextSecretWrites.Store(0)
			}
			return c.Update(ctx, obj, opts...)
		},
	}
}

func failSecretWrite() bool {
	if failNextSecretWrites.Add(-1) >= 0 {
		return true
	}
	failNextSecretWrites.Store(0)
	return false
}

type injectedError struct{}

func (injectedError) Error() string { return "injected apiserver failure" }

var errInjected = injectedError{}

// --- fixtures -------------------------------------------------------------------

func newAccount() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newNamespace creates a namespace holding a credentials Secret for the emulator.
func newNamespace() string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "oauth-"}}
	Expect(k8sClient.Create(ctx(), ns)).To(Succeed())
	Expect(k8sClient.Create(ctx(), &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns.Name, Name: "cf"},
		StringData: map[string]string{v1alpha1.CredentialsKeyAPIToken: testToken},
	})).To(Succeed())
	return ns.Name
}

func ctx() context.Context { return context.Background() }

func ptr[T any](v T) *T { return &v }

// confidential returns a complete object for a client the operator creates.
func confidential(ns, name, account string) *v1alpha1.OAuthClient {
	return &v1alpha1.OAuthClient{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name},
		Spec: v1alpha1.OAuthClientSpec{
			AccountID:               account,
			CredentialsRef:          &v1alpha1.CredentialsSecretReference{Name: "cf"},
			ClientName:              ptr("App " + name),
			ClientURI:               ptr("https://" + name + ".example.com"),
			RedirectURIs:            &[]string{"https://" + name + ".example.com/cb"},
			GrantTypes:              &[]v1alpha1.GrantType{v1alpha1.GrantTypeAuthorizationCode, v1alpha1.GrantTypeRefreshToken},
			ResponseTypes:           &[]v1alpha1.ResponseType{v1alpha1.ResponseTypeCode},
			Scopes:                  &[]string{"account.read", "user-details.read"},
			TokenEndpointAuthMethod: ptr(v1alpha1.AuthMethodClientSecretBasic),
		},
	}
}

// update changes an object the way a user would, retrying on conflicts with the
// operator's own writes.
func update(ns, name string, mutate func(*v1alpha1.OAuthClient)) {
	ExpectWithOffset(1, retry.RetryOnConflict(retry.DefaultRetry, func() error {
		o := &v1alpha1.OAuthClient{}
		if err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
			return err
		}
		mutate(o)
		return k8sClient.Update(ctx(), o)
	})).To(Succeed())
}

func get(ns, name string) *v1alpha1.OAuthClient {
	o := &v1alpha1.OAuthClient{}
	ExpectWithOffset(1, k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, o)).To(Succeed())
	return o
}

func condition(o *v1alpha1.OAuthClient, typ string) *metav1.Condition {
	for i := range o.Status.Conditions {
		if o.Status.Conditions[i].Type == typ {
			return &o.Status.Conditions[i]
		}
	}
	return nil
}

// readyReason returns "<status>/<reason>" of Ready, for readable Eventually failures.
func readyReason(ns, name string) func() string {
	return func() string {
		o := &v1alpha1.OAuthClient{}
		if err := k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, o); err != nil {
			return err.Error()
		}
		c := condition(o, v1alpha1.ConditionReady)
		if c == nil {
			return "no Ready condition"
		}
		return string(c.Status) + "/" + c.Reason
	}
}

func waitReady(ns, name string) *v1alpha1.OAuthClient {
	EventuallyWithOffset(1, readyReason(ns, name), 30*time.Second, 50*time.Millisecond).Should(Equal("True/Reconciled"))
	return get(ns, name)
}

func secretOf(ns, name string) *corev1.Secret {
	s := &corev1.Secret{}
	ExpectWithOffset(1, k8sClient.Get(ctx(), client.ObjectKey{Namespace: ns, Name: name}, s)).To(Succeed())
	return s
}

// calls returns the Cloudflare requests made for one account, as "METHOD route".
func calls(account string) []string {
	var out []string
	for _, r := range emu.Requests() {
		if strings.Contains(r.Path, "/accounts/"+account+"/") || strings.HasSuffix(r.Path, "/accounts/"+account) {
			out = append(out, r.Route)
		}
	}
	return out
}

// writes returns the Cloudflare write requests made for one account.
func writes(account string) []string {
	var out []string
	for _, c := range calls(account) {
		if !strings.HasPrefix(c, "GET ") {
			out = append(out, c)
		}
	}
	return out
}

func requestsFor(account, method string) []cfemu.RecordedRequest {
	var out []cfemu.RecordedRequest
	for _, r := range emu.Requests() {
		if r.Method == method && strings.Contains(r.Path, "/accounts/"+account) {
			out = append(out, r)
		}
	}
	return out
}

const (
	routeList         = "GET /accounts/{account_id}/oauth_clients"
	routeCreate       = "POST /accounts/{account_id}/oauth_clients"
	routeUpdate       = "PATCH /accounts/{account_id}/oauth_clients/{oauth_client_id}"
	routeDelete       = "DELETE /accounts/{account_id}/oauth_clients/{oauth_client_id}"
	routeRotate       = "POST /accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret"
	routeDeleteRotate = "DELETE /accounts/{account_id}/oauth_clients/{oauth_client_id}/rotate_secret"
)

func count(list []string, route string) int {
	n := 0
	for _, c := range list {
		if c == route {
			n++
		}
	}
	return n
}

// managerUser is who the suite's manager runs as.
const managerUser = "system:serviceaccount:" + claimNamespace + ":controller-manager"

// managerConfig grants the manager exactly the RBAC the install ships (the generated
// config/rbac/role.yaml cluster-wide, and the leader-election Role, which also covers
// the claims, in its namespace) and returns a config that impersonates it: a verb the
// code needs and the ClusterRole lacks fails this suite, not a user's cluster.
func managerConfig() *rest.Config {
	grant := func(file string, obj client.Object) {
		data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", file))
		Expect(err).NotTo(HaveOccurred())
		Expect(yaml.Unmarshal(data, obj)).To(Succeed())
	}
	cr := &rbacv1.ClusterRole{}
	grant("role.yaml", cr)
	cr.Name = "suite-manager-role"
	Expect(k8sClient.Create(ctx(), cr)).To(Succeed())
	subject := []rbacv1.Subject{{Kind: rbacv1.UserKind, APIGroup: rbacv1.GroupName, Name: managerUser}}
	Expect(k8sClient.Create(ctx(), &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "suite-manager-role"},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: cr.Name},
		Subjects:   subject,
	})).To(Succeed())
	role := &rbacv1.Role{}
	grant("leader_election_role.yaml", role)
	role.Namespace = claimNamespace
	Expect(k8sClient.Create(ctx(), role)).To(Succeed())
	Expect(k8sClient.Create(ctx(), &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: claimNamespace, Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: role.Name},
		Subjects:   subject,
	})).To(Succeed())
	cfg := rest.CopyConfig(env.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: managerUser}
	return cfg
}
