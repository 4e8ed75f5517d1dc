package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

const (
	// operatorUser is the identity the operator runs as; it holds only the ClusterRole
	// of config/rbac/role.yaml and, in its own namespace, the Role of
	// config/rbac/leader_election_role.yaml, as the manager's service account does in a
	// cluster.
	operatorUser = "cloudflare-oauth-operator"
	// The samples' account and the client config/samples/adopted-client.yaml adopts;
	// the emulator starts with that client, as if it had been made in the dashboard.
	sampleAccount   = "023e105f4ecef8ad9ca31a8372d0c353"
	adoptedClientID = "a1b2c3d4e5f6a1b2c3d4e5f6a1b2c3d4"
	// credentialsSecret is the samples' credentials Secret, whose placeholder token the
	// demo replaces with the emulator's.
	credentialsSecret = "cloudflare-credentials"
	fieldOwner        = "demo"
	// operatorNamespace is the operator's own namespace (--operator-namespace, which
	// the manager requires); the demo binds the leader-election Role there, as in a
	// cluster.
	operatorNamespace = "cfoauth-system"
)

// demo holds what the demo started, so that stop can end all of it.
type demo struct {
	opts  *options
	out   io.Writer
	start time.Time

	dir          string // absolute opts.dir
	env          *envtest.Environment
	k8s          client.Client
	cfg          *rest.Config
	emuServer    *http.Server
	emuURL       string
	operator     *exec.Cmd
	operatorDone chan struct{} // closed when the operator exits
	operatorErr  error         // its exit status, once operatorDone is closed
	logPath      string
	kubeconfig   string
	samples      []string // OAuthClient names
}

func (d *demo) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(d.out, format, args...)
}

func (d *demo) step(what, detail string) {
	d.printf("  %-34s %s\n", what, detail)
}

// setUp starts everything, in dependency order.
func (d *demo) setUp(ctx context.Context) error {
	d.dir = d.opts.dir
	if !filepath.IsAbs(d.dir) {
		d.dir = filepath.Join(testenv.RepoRoot(), d.dir)
	}
	if err := os.MkdirAll(d.dir, 0o755); err != nil {
		return err
	}
	d.printf("cloudflare-oauth-operator demo: a local control plane, the Cloudflare emulator and the real operator\n\n")

	binary := d.opts.binary
	if binary == "" {
		binary = filepath.Join(d.dir, "manager")
		t0 := time.Now()
		if err := buildManager(ctx, binary); err != nil {
			return err
		}
		d.step("built the operator", fmt.Sprintf("%s (%s)", d.rel(binary), since(t0)))
	}

	if err := d.startControlPlane(); err != nil {
		return err
	}
	if err := d.grantOperatorRBAC(ctx); err != nil {
		return err
	}
	token, err := d.startEmulator()
	if err != nil {
		return err
	}
	if err := d.startOperator(binary); err != nil {
		return err
	}
	return d.applySamples(ctx, token)
}

// buildManager builds cmd/manager into binary.
func buildManager(ctx context.Context, binary string) error {
	build := exec.CommandContext(ctx, "go", "build", "-o", binary, "./cmd/manager")
	build.Dir = testenv.RepoRoot()
	if out, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("building the operator: %w\n%s", err, out)
	}
	return nil
}

func (d *demo) startControlPlane() error {
	t0 := time.Now()
	env, err := testenv.New()
	if err != nil {
		return err
	}
	if _, err := env.Start(); err != nil {
		return fmt.Errorf("starting kube-apiserver and etcd from %s: %w", env.BinaryAssetsDirectory, err)
	}
	d.env = env
	d.step("started kube-apiserver and etcd", fmt.Sprintf("%s (%s)", env.Config.Host, since(t0)))
	d.step("installed the CRD", "oauthclients.cloudflare.oauth-operator.dev")

	user, err := env.AddUser(envtest.User{Name: "demo", Groups: []string{"system:masters"}}, nil)
	if err != nil {
		return err
	}
	d.cfg = user.Config()
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return err
	}
	if d.k8s, err = client.New(d.cfg, client.Options{Scheme: scheme}); err != nil {
		return err
	}
	d.kubeconfig = filepath.Join(d.dir, "kubeconfig")
	return writeKubeconfig(user, d.kubeconfig, d.opts.namespace)
}

// writeKubeconfig writes a user's kubeconfig, defaulting to namespace.
func writeKubeconfig(user *envtest.AuthenticatedUser, path, namespace string) error {
	raw, err := user.KubeConfig()
	if err != nil {
		return err
	}
	cfg, err := clientcmd.Load(raw)
	if err != nil {
		return err
	}
	if kctx := cfg.Contexts[cfg.CurrentContext]; kctx != nil && namespace != "" {
		kctx.Namespace = namespace
	}
	return clientcmd.WriteToFile(*cfg, path)
}

// grantOperatorRBAC gives the operator's user exactly what config/rbac gives the
// manager's service account, so that the demo fails if the operator needs more: the
// ClusterRole generated from the RBAC markers, and the Role of its own namespace
// (Leases, for leader election only), in the operator namespace it creates.
func (d *demo) grantOperatorRBAC(ctx context.Context) error {
	role := &rbacv1.ClusterRole{}
	if err := readManifest("role.yaml", role); err != nil {
		return err
	}
	if err := d.k8s.Create(ctx, role); err != nil {
		return err
	}
	subjects := []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: operatorUser}}
	if err := d.k8s.Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: role.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: role.Name},
		Subjects:   subjects,
	}); err != nil {
		return err
	}

	if err := d.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: operatorNamespace}}); err != nil {
		return err
	}
	nsRole := &rbacv1.Role{}
	if err := readManifest("leader_election_role.yaml", nsRole); err != nil {
		return err
	}
	nsRole.Namespace = operatorNamespace
	if err := d.k8s.Create(ctx, nsRole); err != nil {
		return err
	}
	return d.k8s.Create(ctx, &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: operatorNamespace, Name: nsRole.Name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: nsRole.Name},
		Subjects:   subjects,
	})
}

// readManifest decodes config/rbac/<name>.
func readManifest(name string, into any) error {
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "config", "rbac", name))
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(raw, into); err != nil {
		return fmt.Errorf("config/rbac/%s: %w", name, err)
	}
	return nil
}

// startEmulator serves the Cloudflare emulator on a free loopback port, seeded with the
// client the adoption sample refers to, and returns the one token it accepts.
func (d *demo) startEmulator() (string, error) {
	token := "demo-" + randomHex(12)
	// The samples' hosts lie in the zone example.com, which the demo token may edit: the
	// web-app sample's verification record is published there by the operator, and the
	// emulator verifies a host only once its record is in the zone.
	emu := cfemu.New(cfemu.Options{
		Tokens:         map[string][]string{token: {sampleAccount}},
		VerifyAfter:    d.opts.verifyAfter,
		Zones:          []cfemu.ZoneSpec{{Name: "example.com", AccountID: sampleAccount}},
		DNS:            map[string]cfemu.DNSPermissions{token: cfemu.DNSEditor()},
		DNSPropagation: d.opts.verifyAfter,
	})
	if _, err := emu.SeedClient(sampleAccount, cfapi.OAuthClient{
		ClientID:                adoptedClientID,
		ClientName:              "Legacy dashboard client",
		RedirectURIs:            []string{"https://legacy.example.com/callback"},
		GrantTypes:              []string{"authorization_code", "refresh_token"},
		ResponseTypes:           []string{"code"},
		Scopes:                  []string{"account.read"},
		TokenEndpointAuthMethod: "client_secret_basic",
	}, ""); err != nil {
		return "", err
	}
	ln, err := (&net.ListenConfig{}).Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	d.emuServer = &http.Server{Handler: emu, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = d.emuServer.Serve(ln) }()
	d.emuURL = "http://" + ln.Addr().String() + cfemu.BasePath
	d.step("started the Cloudflare emulator", fmt.Sprintf("%s (verifies client URIs after %s)", d.emuURL, d.opts.verifyAfter))
	return token, nil
}

// startOperator runs the operator binary as its own user, logging to a file.
func (d *demo) startOperator(binary string) error {
	user, err := d.env.AddUser(envtest.User{Name: operatorUser}, nil)
	if err != nil {
		return err
	}
	operatorKubeconfig := filepath.Join(d.dir, "operator.kubeconfig")
	if err := writeKubeconfig(user, operatorKubeconfig, ""); err != nil {
		return err
	}
	d.logPath = filepath.Join(d.dir, "manager.log")
	logFile, err := os.Create(d.logPath)
	if err != nil {
		return err
	}
	cmd := exec.Command(binary,
		"--cloudflare-api-url="+d.emuURL,
		// The emulator also serves the authorization server's discovery document, so
		// the endpoints rendered into templated Secrets (the oauth2-proxy sample) point
		// at something that answers.
		"--authorization-server="+strings.TrimSuffix(d.emuURL, cfemu.BasePath),
		// Verification progress is read from the account snapshot, which is refreshed
		// every --remote-sync-period: keep it short so the demo shows it within seconds.
		"--remote-sync-period=5s",
		"--verification-poll-interval=1s",
		"--metrics-bind-address=0",
		"--health-probe-bind-address=0",
		"--operator-namespace="+operatorNamespace,
		"--zap-encoder=console",
	)
	cmd.Env = append(operatorEnv(), "KUBECONFIG="+operatorKubeconfig)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = childProcAttr()
	if err := cmd.Start(); err != nil {
		_ = logFile.Close()
		return fmt.Errorf("starting the operator: %w", err)
	}
	d.operator = cmd
	d.operatorDone = make(chan struct{})
	go func() {
		d.operatorErr = cmd.Wait()
		_ = logFile.Close()
		close(d.operatorDone)
	}()
	d.step("started the operator", fmt.Sprintf("pid %d, as user %q with config/rbac's roles, in namespace %s; log %s",
		cmd.Process.Pid, operatorUser, operatorNamespace, d.rel(d.logPath)))
	return nil
}

// operatorEnv is this process's environment without Cloudflare credentials or
// Kubernetes settings that would change what the operator talks to.
func operatorEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(name, "CLOUDFLARE_") || name == "KUBECONFIG" || name == "POD_NAMESPACE" {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// applySamples renders config/samples like `kubectl apply -k config/samples` and
// applies it server-side in the demo namespace, with the emulator's token in place of
// the credentials Secret's placeholder.
func (d *demo) applySamples(ctx context.Context, token string) error {
	if err := d.k8s.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: d.opts.namespace}}); err != nil {
		return err
	}
	objs, err := renderSamples()
	if err != nil {
		return err
	}
	var applied []string
	for _, o := range objs {
		o.SetNamespace(d.opts.namespace)
		if o.GetKind() == "Secret" && o.GetName() == credentialsSecret {
			if err := unstructured.SetNestedField(o.Object, token, "stringData", v1alpha1.CredentialsKeyAPIToken); err != nil {
				return err
			}
		}
		if err := d.k8s.Apply(ctx, client.ApplyConfigurationFromUnstructured(o), client.FieldOwner(fieldOwner), client.ForceOwnership); err != nil {
			return fmt.Errorf("applying %s %s: %w", o.GetKind(), o.GetName(), err)
		}
		applied = append(applied, strings.ToLower(o.GetKind())+"/"+o.GetName())
		if o.GetKind() == "OAuthClient" {
			d.samples = append(d.samples, o.GetName())
		}
	}
	d.step("applied config/samples", "in namespace "+d.opts.namespace+": "+strings.Join(applied, ", "))
	d.step("", "(the Secret's placeholder token is replaced with the emulator's)")
	return nil
}

func renderSamples() ([]*unstructured.Unstructured, error) {
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy
	resMap, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(), "config", "samples"))
	if err != nil {
		return nil, fmt.Errorf("rendering config/samples: %w", err)
	}
	var objs []*unstructured.Unstructured
	for _, r := range resMap.Resources() {
		m, err := r.Map()
		if err != nil {
			return nil, err
		}
		objs = append(objs, &unstructured.Unstructured{Object: m})
	}
	return objs, nil
}

// report prints what the operator produced: the Secrets' keys (never their values) and
// the DNS records to publish.
func (d *demo) report(ctx context.Context) error {
	list := &v1alpha1.OAuthClientList{}
	if err := d.k8s.List(ctx, list, client.InNamespace(d.opts.namespace)); err != nil {
		return err
	}
	d.printf("\nSecrets written by the operator (keys only; the values stay in the cluster):\n")
	w := tabwriter.NewWriter(d.out, 0, 4, 3, ' ', 0)
	for _, o := range list.Items {
		if o.Status.SecretName == "" {
			continue
		}
		sec := &corev1.Secret{}
		if err := d.k8s.Get(ctx, client.ObjectKey{Namespace: o.Namespace, Name: o.Status.SecretName}, sec); err != nil {
			return err
		}
		keys := make([]string, 0, len(sec.Data))
		for k := range sec.Data {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		_, _ = fmt.Fprintf(w, "  secret/%s\t(of %s)\t%s\n", sec.Name, o.Name, strings.Join(keys, ", "))
	}
	if err := w.Flush(); err != nil {
		return err
	}

	var records bytes.Buffer
	for _, o := range list.Items {
		rec := o.Status.VerificationRecord
		if rec == nil {
			continue
		}
		state := ""
		if v := o.Status.ClientURIVerification; v != nil {
			state = v.Status
		}
		by := "to publish by hand"
		if pub := rec.Publication; pub != nil {
			by = fmt.Sprintf("published by the operator: %s", publishedAt(pub))
		}
		fmt.Fprintf(&records, "  %s (%s, verification %s, visibility %s):\n    %s  %s  %q\n    %s\n",
			o.Name, derefOr(o.Spec.ClientURI), state, o.Status.Visibility, rec.Name, rec.Type, rec.Content, by)
	}
	if records.Len() > 0 {
		d.printf("\nDNS TXT records with which Cloudflare verifies the client URI hosts:\n%s", records.String())
	}

	if d.opts.once {
		d.printf("\nWithout --once the demo stays up until Ctrl-C, to explore with:\n")
	} else {
		d.printf("\nExplore (the control plane stays up until Ctrl-C):\n")
	}
	kc := d.rel(d.kubeconfig)
	d.printf("  kubectl --kubeconfig %s get oauthclients -o wide\n", kc)
	d.printf("  kubectl --kubeconfig %s describe oauthclient web-app\n", kc)
	d.printf("  kubectl --kubeconfig %s get events --field-selector involvedObject.kind=OAuthClient\n", kc)
	d.printf("Operator log: %s\n", d.rel(d.logPath))
	return nil
}

// serve waits for Ctrl-C, or for the operator to die.
func (d *demo) serve(ctx context.Context) error {
	select {
	case <-ctx.Done():
		d.printf("\nstopping...\n")
		return nil
	case <-d.operatorDone:
		return d.operatorExited("")
	}
}

// operatorExited explains an unexpected exit of the operator, with its last log lines.
func (d *demo) operatorExited(when string) error {
	cause := d.operatorErr
	if cause == nil {
		cause = errors.New("exit status 0")
	}
	return fmt.Errorf("the operator exited%s: %w; see %s:\n%s", when, cause, d.rel(d.logPath), tail(d.logPath, 20))
}

// stop ends everything setUp started, the operator first so that it does not log
// errors about a vanished API server.
func (d *demo) stop() error {
	var errs []error
	if d.operator != nil && d.operator.Process != nil {
		select {
		case <-d.operatorDone: // already exited
		default:
			_ = d.operator.Process.Signal(os.Interrupt)
			select {
			case <-d.operatorDone:
			case <-time.After(15 * time.Second):
				_ = d.operator.Process.Kill()
				<-d.operatorDone
				errs = append(errs, errors.New("the operator did not stop within 15s and was killed"))
			}
		}
	}
	if d.emuServer != nil {
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := d.emuServer.Shutdown(shutdownCtx); err != nil {
			errs = append(errs, fmt.Errorf("stopping the emulator: %w", err))
		}
		cancel()
	}
	if d.env != nil {
		// On Ctrl-C the terminal also signals kube-apiserver and etcd, which may be
		// gone already; envtest then just cleans up their directories.
		if err := d.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping the control plane: %w", err))
		}
	}
	if d.env != nil {
		d.printf("stopped the operator, the emulator, kube-apiserver and etcd\n")
	}
	return errors.Join(errs...)
}

// rel shows a path relative to the working directory when it is below it.
func (d *demo) rel(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if r, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(r, "..") {
		return r
	}
	return path
}

// tail returns the last n lines of a file.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "    " + strings.Join(lines, "\n    ")
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

func derefOr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// publishedAt says where the operator published a verification record.
func publishedAt(pub *v1alpha1.RecordPublication) string {
	if pub.Publish == v1alpha1.PublishExternalDNS {
		return "DNSEndpoint " + pub.DNSEndpoint
	}
	return fmt.Sprintf("TXT record %s in zone %s", pub.RecordID, pub.ZoneID)
}
