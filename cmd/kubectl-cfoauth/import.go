package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi"
)

// cloudflareTimeout bounds the one List call an import makes.
const cloudflareTimeout = 30 * time.Second

// The CRD's patterns for spec.accountID and spec.clientID.
var (
	accountIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)
	clientIDPattern  = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)
)

// secretNote is printed once, on stderr, with -o json (YAML carries it per document).
const secretNote = `note: Cloudflare returns a client secret only when it creates a client, so the secret of an
imported client cannot be recovered. To get a new one, set managementPolicy: Manage and run
'kubectl cfoauth rotate NAME -n NAMESPACE --wait' (or set spec.secretRotation.rotationID); the
secret in use today keeps working for the overlap (24h by default), then the operator deletes
it. PKCE clients (tokenEndpointAuthMethod: none) have no secret and need none.`

type importOptions struct {
	accountID   string
	apiURL      string
	credsSecret string
	clientIDs   []string
	nameRegex   string
	skipBound   bool
	manage      bool
	output      string
}

func (a *app) importCmd() *cobra.Command {
	o := &importOptions{}
	cmd := &cobra.Command{
		Use:   "import --account-id ID [flags]",
		Short: "Print OAuthClient manifests for an account's existing Cloudflare clients",
		Long: `Lists the account's OAuth clients with one Cloudflare API call (it never writes to
Cloudflare) and prints one OAuthClient per client, adopting it by spec.clientID with every
field as Cloudflare holds it, so that applying the manifests changes nothing in Cloudflare.

Objects are managementPolicy Observe and deletionPolicy Orphan unless --manage is given
(Manage and Delete). Review the output, apply it, check that 'kubectl cfoauth status' shows
no drift (Ready reason Reconciled), then switch to Manage. Output is a YAML stream with a
comment above each document, or with -o json a v1 List (notes go to stderr).

Credentials: --credentials-secret NAMESPACE/NAME (a Secret with the key apiToken, or email
and apiKey, as the operator reads it; it wins when given), else CLOUDFLARE_API_TOKEN, else
CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY from the environment. When the Secret is in the
output namespace, the manifests name it in spec.credentialsRef.

Clients that an OAuthClient in any namespace already binds (spec.clientID, the
cloudflare.oauth-operator.dev/client-id annotation or status.clientID, same account) are
skipped unless --skip-bound=false; the operator lets only one object bind a client.`,
		Example: `  # every client of the account, as Observe objects in namespace team-a
  kubectl cfoauth import --account-id 023e105f4ecef8ad9ca31a8372d0c353 \
    --credentials-secret team-a/cloudflare-credentials -n team-a > clients.yaml

  # two clients by ID, managed from the start, with the token from the environment
  CLOUDFLARE_API_TOKEN=... kubectl cfoauth import --account-id 023e105f4ecef8ad9ca31a8372d0c353 \
    --client-id 9f3b... --client-id 4e1a... --manage -n team-a | kubectl apply -f -

  # clients whose name starts with "staging-", as a JSON List
  kubectl cfoauth import --account-id 023e105f4ecef8ad9ca31a8372d0c353 --name-regex '^staging-' -o json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runImport(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.accountID, "account-id", "", "the Cloudflare account ID (32 lowercase hex characters; required)")
	f.StringVar(&o.apiURL, "api-url", cfapi.DefaultBaseURL, "the Cloudflare API base URL")
	f.StringVar(&o.credsSecret, "credentials-secret", "", "read the Cloudflare credentials from this Secret, NAMESPACE/NAME (NAME alone: the output namespace)")
	f.StringArrayVar(&o.clientIDs, "client-id", nil, "import only this client ID (repeatable)")
	f.StringVar(&o.nameRegex, "name-regex", "", "import only clients whose client_name matches this regular expression (RE2, unanchored)")
	f.BoolVar(&o.skipBound, "skip-bound", true, "skip clients an OAuthClient in the cluster already binds")
	f.BoolVar(&o.manage, "manage", false, "print managementPolicy Manage and deletionPolicy Delete instead of Observe and Orphan")
	f.StringVarP(&o.output, "output", "o", "yaml", "output format: yaml or json")
	return cmd
}

// runImport checks the flags, reads the cluster, makes the one List call and prints.
func (a *app) runImport(ctx context.Context, o *importOptions) error {
	nameRE, err := o.validate()
	if err != nil {
		return err
	}
	ns, err := a.namespace()
	if err != nil {
		return err
	}
	kube := sync.OnceValues(a.kubeClient)
	creds, credsRef, err := a.importCredentials(ctx, o, ns, kube)
	if err != nil {
		return err
	}
	cluster, err := a.readCluster(ctx, o, ns, kube)
	if err != nil {
		return err
	}
	api, err := cfapi.New(creds, cfapi.WithBaseURL(o.apiURL), cfapi.WithUserAgent("kubectl-cfoauth/"+cfapi.Version),
		cfapi.WithHTTPClient(&http.Client{Timeout: cloudflareTimeout}))
	if err != nil {
		return fmt.Errorf("preparing the Cloudflare client: %w", err)
	}
	remote, err := api.ListOAuthClients(ctx, o.accountID)
	if err != nil {
		return listError(o.accountID, err)
	}
	selected, err := a.selectClients(o, remote, nameRE, cluster)
	if err != nil {
		return err
	}
	docs := make([]*document, 0, len(selected))
	for i := range selected {
		docs = append(docs, newDocument(&selected[i], o, ns, credsRef))
	}
	assignNames(docs, cluster)
	if err := a.render(docs, o, ns); err != nil {
		return err
	}
	policy := "managementPolicy Observe, deletionPolicy Orphan"
	if o.manage {
		policy = "managementPolicy Manage, deletionPolicy Delete"
	}
	_, _ = fmt.Fprintf(a.errOut, "printed %d OAuthClient manifests for namespace %s (%s)\n", len(docs), ns, policy)
	return nil
}

// validate checks every flag before anything is read, and compiles --name-regex.
func (o *importOptions) validate() (*regexp.Regexp, error) {
	switch {
	case o.accountID == "":
		return nil, usagef("--account-id is required")
	case !accountIDPattern.MatchString(o.accountID):
		return nil, usagef("--account-id %q is not a Cloudflare account ID (32 lowercase hexadecimal characters)", o.accountID)
	case o.output != "yaml" && o.output != "json":
		return nil, usagef("--output must be yaml or json, not %q", o.output)
	}
	for _, id := range o.clientIDs {
		if !clientIDPattern.MatchString(id) {
			return nil, usagef("--client-id %q is not a Cloudflare OAuth client ID (letters, digits, '_' and '-', at most 64)", id)
		}
	}
	if u, err := url.Parse(o.apiURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, usagef("--api-url %q is not an absolute http(s) URL", o.apiURL)
	}
	if o.credsSecret != "" {
		if _, _, err := splitSecretRef(o.credsSecret, "x"); err != nil {
			return nil, err
		}
	}
	if o.nameRegex == "" {
		return nil, nil
	}
	re, err := regexp.Compile(o.nameRegex)
	if err != nil {
		return nil, usagef("--name-regex: %v", err)
	}
	return re, nil
}

// splitSecretRef parses NAMESPACE/NAME, or NAME in the default namespace.
func splitSecretRef(ref, defaultNS string) (ns, name string, err error) {
	ns, name, found := strings.Cut(ref, "/")
	if !found {
		ns, name = defaultNS, ref
	}
	if ns == "" || name == "" || strings.Contains(name, "/") {
		return "", "", usagef("--credentials-secret %q must be NAMESPACE/NAME", ref)
	}
	return ns, name, nil
}

// importCredentials returns the Cloudflare credentials and, when they come from a Secret
// in the output namespace, its name for spec.credentialsRef. Errors name the Secret,
// key or variable, never a value.
func (a *app) importCredentials(ctx context.Context, o *importOptions, outNS string,
	kube func() (client.Client, error)) (cfapi.Credentials, string, error) {
	if o.credsSecret == "" {
		return a.envCredentials()
	}
	ns, name, err := splitSecretRef(o.credsSecret, outNS)
	if err != nil {
		return cfapi.Credentials{}, "", err
	}
	key := client.ObjectKey{Namespace: ns, Name: name}
	c, err := kube()
	if err != nil {
		return cfapi.Credentials{}, "", err
	}
	sec := &corev1.Secret{}
	if err := c.Get(ctx, key, sec); err != nil {
		if apierrors.IsNotFound(err) {
			return cfapi.Credentials{}, "", fmt.Errorf("credentials Secret %s not found", key)
		}
		return cfapi.Credentials{}, "", fmt.Errorf("reading credentials Secret %s: %w", key, err)
	}
	token, hasToken := sec.Data[v1alpha1.CredentialsKeyAPIToken]
	email, hasEmail := sec.Data[v1alpha1.CredentialsKeyEmail]
	apiKey, hasKey := sec.Data[v1alpha1.CredentialsKeyAPIKey]
	var creds cfapi.Credentials
	field := v1alpha1.CredentialsKeyAPIToken
	switch {
	case hasToken:
		creds = cfapi.Credentials{APIToken: string(token)}
	case hasEmail && hasKey:
		creds = cfapi.Credentials{Email: string(email), APIKey: string(apiKey)}
		field = v1alpha1.CredentialsKeyEmail + "/" + v1alpha1.CredentialsKeyAPIKey
	default:
		return cfapi.Credentials{}, "", fmt.Errorf("credentials Secret %s has no key %q (or both %q and %q)",
			key, v1alpha1.CredentialsKeyAPIToken, v1alpha1.CredentialsKeyEmail, v1alpha1.CredentialsKeyAPIKey)
	}
	if creds.Validate() != nil {
		return cfapi.Credentials{}, "", fmt.Errorf("credentials Secret %s key %s is malformed (empty, or contains whitespace or control characters)", key, field)
	}
	ref := ""
	if ns == outNS {
		ref = name
	}
	return creds, ref, nil
}

func (a *app) envCredentials() (cfapi.Credentials, string, error) {
	token, email, key := a.getenv("CLOUDFLARE_API_TOKEN"), a.getenv("CLOUDFLARE_EMAIL"), a.getenv("CLOUDFLARE_API_KEY")
	var creds cfapi.Credentials
	what := "CLOUDFLARE_API_TOKEN"
	switch {
	case token != "":
		creds = cfapi.Credentials{APIToken: token}
	case email != "" && key != "":
		creds = cfapi.Credentials{Email: email, APIKey: key}
		what = "CLOUDFLARE_EMAIL/CLOUDFLARE_API_KEY"
	case email != "" || key != "":
		return cfapi.Credentials{}, "", errors.New("CLOUDFLARE_EMAIL and CLOUDFLARE_API_KEY must be set together")
	default:
		return cfapi.Credentials{}, "", errors.New("no Cloudflare credentials: set CLOUDFLARE_API_TOKEN, or pass --credentials-secret NAMESPACE/NAME (a Secret with the key apiToken)")
	}
	if creds.Validate() != nil {
		return cfapi.Credentials{}, "", fmt.Errorf("%s is malformed (empty, or contains whitespace or control characters)", what)
	}
	return creds, "", nil
}

// listError explains a failed List; an APIError never holds a header or a token.
func listError(account string, err error) error {
	hint := ""
	switch {
	case cfapi.IsUnauthorized(err):
		hint = " (HTTP 401: Cloudflare refused the credentials; check the API token)"
	case cfapi.IsForbidden(err):
		hint = " (HTTP 403: the credentials lack OAuth Client Read on this account)"
	}
	return fmt.Errorf("listing the OAuth clients of account %s%s: %w", account, hint, err)
}

// clusterView is what the cluster already holds: the clients bound to an OAuthClient
// (in this account), and the OAuthClient names in the output namespace.
type clusterView struct {
	// boundBy maps a client ID to the object binding it and how, e.g. "ns/web (spec.clientID)".
	boundBy map[string]string
	// names maps each OAuthClient name in the output namespace to its spec.clientID in
	// this account ("" when it binds another account's client or creates its own).
	names map[string]string
}

// readCluster lists every OAuthClient. With --skip-bound (the default) it must succeed;
// otherwise it only helps to avoid names already taken, and a failure is a warning.
func (a *app) readCluster(ctx context.Context, o *importOptions, outNS string, kube func() (client.Client, error)) (clusterView, error) {
	view := clusterView{boundBy: map[string]string{}, names: map[string]string{}}
	list := &v1alpha1.OAuthClientList{}
	c, err := kube()
	if err == nil {
		err = c.List(ctx, list)
	}
	if err != nil {
		if o.skipBound {
			return view, fmt.Errorf("listing OAuthClients in every namespace, to skip clients already bound (pass --skip-bound=false to import without this check): %w", err)
		}
		_, _ = fmt.Fprintf(a.errOut, "warning: could not list OAuthClients (%v); names are not checked against existing objects in namespace %s\n", err, outNS)
		return view, nil
	}
	slices.SortFunc(list.Items, func(x, y v1alpha1.OAuthClient) int {
		return cmp.Or(strings.Compare(x.Namespace, y.Namespace), strings.Compare(x.Name, y.Name))
	})
	for i := range list.Items {
		obj := &list.Items[i]
		sameAccount := obj.BoundAccountID() == o.accountID
		if obj.Namespace == outNS {
			view.names[obj.Name] = ""
			if sameAccount {
				view.names[obj.Name] = obj.AdoptedClientID()
			}
		}
		if !sameAccount {
			continue
		}
		for _, b := range []struct{ id, via string }{
			{obj.AdoptedClientID(), "spec.clientID"},
			{obj.Annotations[v1alpha1.AnnotationClientID], "annotation " + v1alpha1.AnnotationClientID},
			{obj.Status.ClientID, "status.clientID"},
		} {
			if _, seen := view.boundBy[b.id]; b.id != "" && !seen {
				view.boundBy[b.id] = fmt.Sprintf("%s/%s (%s)", obj.Namespace, obj.Name, b.via)
			}
		}
	}
	return view, nil
}

// selectClients applies --client-id, --name-regex and --skip-bound, and says on stderr
// what was left out and why.
func (a *app) selectClients(o *importOptions, remote []cfapi.OAuthClient, nameRE *regexp.Regexp, cluster clusterView) ([]cfapi.OAuthClient, error) {
	byID := make(map[string]bool, len(remote))
	for _, c := range remote {
		byID[c.ClientID] = true
	}
	var missing []string
	for _, id := range o.clientIDs {
		if !byID[id] {
			missing = append(missing, id)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("account %s has no OAuth client %s", o.accountID, strings.Join(missing, ", "))
	}
	var out []cfapi.OAuthClient
	var skipped []string
	filtered := 0
	for _, c := range remote {
		switch {
		case len(o.clientIDs) > 0 && !slices.Contains(o.clientIDs, c.ClientID), nameRE != nil && !nameRE.MatchString(c.ClientName):
			filtered++
		case !clientIDPattern.MatchString(c.ClientID):
			_, _ = fmt.Fprintf(a.errOut, "warning: skipped client %q: its ID cannot be a spec.clientID (letters, digits, '_' and '-', at most 64)\n", c.ClientID)
		case o.skipBound && cluster.boundBy[c.ClientID] != "":
			skipped = append(skipped, fmt.Sprintf("  %s %q bound by %s", c.ClientID, c.ClientName, cluster.boundBy[c.ClientID]))
		default:
			out = append(out, c)
		}
	}
	_, _ = fmt.Fprintf(a.errOut, "account %s has %d OAuth clients", o.accountID, len(remote))
	if filtered > 0 {
		_, _ = fmt.Fprintf(a.errOut, "; %d do not match --client-id/--name-regex", filtered)
	}
	_, _ = fmt.Fprintln(a.errOut)
	if len(skipped) > 0 {
		slices.Sort(skipped)
		_, _ = fmt.Fprintf(a.errOut, "skipped %d clients already bound by an OAuthClient (a client is bound by one object; --skip-bound=false includes them):\n%s\n",
			len(skipped), strings.Join(skipped, "\n"))
	}
	return out, nil
}

// render prints the documents: a YAML stream with a comment above each, or a v1 List
// with the notes on stderr.
func (a *app) render(docs []*document, o *importOptions, ns string) error {
	if o.output == "json" {
		items := make([]manifest, len(docs))
		for i, d := range docs {
			items[i] = d.obj
			for _, n := range d.notes {
				_, _ = fmt.Fprintf(a.errOut, "note: %s/%s: %s\n", ns, d.obj.Metadata.Name, n)
			}
		}
		out, err := json.MarshalIndent(struct {
			APIVersion string     `json:"apiVersion"`
			Kind       string     `json:"kind"`
			Items      []manifest `json:"items"`
		}{"v1", "List", items}, "", "  ")
		if err != nil {
			return err
		}
		if len(docs) > 0 {
			_, _ = fmt.Fprintln(a.errOut, secretNote)
			if docs[0].obj.Spec.CredentialsRef == nil {
				_, _ = fmt.Fprintln(a.errOut, "note: the manifests have no spec.credentialsRef, so the operator's default credentials apply; add one to use a Secret of their namespace.")
			}
		}
		_, err = fmt.Fprintf(a.out, "%s\n", out)
		return err
	}
	noted := 0
	for _, d := range docs {
		out, err := yaml.Marshal(d.obj)
		if err != nil {
			return err
		}
		if _, err := io.WriteString(a.out, "---\n"+d.comment(o)+string(out)); err != nil {
			return err
		}
		if len(d.notes) > 0 {
			noted++
		}
	}
	if noted > 0 {
		_, _ = fmt.Fprintf(a.errOut, "%d manifests leave fields unmanaged because the CRD refuses Cloudflare's value: see the comments above them\n", noted)
	}
	return nil
}
