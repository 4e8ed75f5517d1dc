package docs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// checkedKinds are the kinds whose examples are applied.
var checkedKinds = map[string]bool{"OAuthClient": true, "CloudflareAccount": true}

var declaresRE = regexp.MustCompile(`(?m)^\s*kind:\s*(OAuthClient|CloudflareAccount)\s*$`)

// firstDocument is a block's text up to its first "---" separator after the start.
func firstDocument(body string) string {
	if i := strings.Index(body, "\n---"); i >= 0 {
		return body[:i+1]
	}
	return body
}

// hasSpecSnippet: a document of the block has spec: at the top and no kind.
func hasSpecSnippet(body string) bool {
	dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(body), 4096)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return false
		}
		if _, spec := m["spec"]; spec && m["kind"] == nil {
			return true
		}
	}
}

// snippetBase is the OAuthClient a snippet marked markerComplete is merged into: the
// README's example.
const snippetBase = `
apiVersion: cloudflare.oauth-operator.dev/v1alpha1
kind: OAuthClient
metadata:
  name: snippet
spec:
  accountID: 023e105f4ecef8ad9ca31a8372d0c353
  credentialsRef: {name: cloudflare-credentials}
  clientName: Example Web App
  clientURI: https://app.example.com
  redirectURIs: [https://app.example.com/oauth/callback]
  grantTypes: [authorization_code, refresh_token]
  responseTypes: [code]
  scopes: [account.read, user-details.read]
  tokenEndpointAuthMethod: client_secret_basic
`

// completeSnippet merges a snippet (the block's first document: spec:, maybe with
// metadata:) into snippetBase, map by map; the snippet's values win.
func completeSnippet(body string) (*unstructured.Unstructured, error) {
	var base, snippet map[string]any
	if err := yaml.Unmarshal([]byte(snippetBase), &base); err != nil {
		return nil, err
	}
	if err := yaml.Unmarshal([]byte(firstDocument(body)), &snippet); err != nil {
		return nil, fmt.Errorf("the snippet is not YAML: %w", err)
	}
	if _, ok := snippet["spec"]; !ok {
		return nil, fmt.Errorf("a block marked %s must have spec: at the top", markerComplete)
	}
	merge(base, snippet)
	return &unstructured.Unstructured{Object: base}, nil
}

func merge(dst, src map[string]any) {
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				merge(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
}

// example is one document of a yaml block that declares a checked kind.
type example struct {
	at  block
	obj *unstructured.Unstructured
}

// examples returns every OAuthClient and CloudflareAccount the docs declare outside
// blocks marked as fragments; a block that declares one but does not parse fails.
func examples(t *testing.T) (out []example, fragments int) {
	t.Helper()
	for _, f := range docFiles(t) {
		blocks, _ := parseBlocks(f, readDoc(t, f))
		for _, b := range blocks {
			if b.lang != "yaml" && b.lang != "yml" {
				continue
			}
			if b.marker == markerFragment {
				fragments++
				continue
			}
			if b.marker == markerComplete {
				u, err := completeSnippet(b.body)
				if err != nil {
					t.Errorf("%s: %v", b, err)
					continue
				}
				out = append(out, example{at: b, obj: u})
				continue
			}
			if !declaresRE.MatchString(b.body) {
				if hasSpecSnippet(b.body) {
					t.Errorf("%s: a spec: snippet; mark it %s to have it checked in a complete OAuthClient, or %s", b, markerComplete, markerFragment)
				}
				continue
			}
			dec := utilyaml.NewYAMLOrJSONDecoder(strings.NewReader(b.body), 4096)
			found := false
			for {
				var m map[string]any
				err := dec.Decode(&m)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Errorf("%s: the block declares an OAuthClient or CloudflareAccount but is not YAML (%v); complete it or mark it %s", b, err, markerFragment)
					break
				}
				u := &unstructured.Unstructured{Object: m}
				if m == nil || !checkedKinds[u.GetKind()] {
					continue
				}
				found = true
				if u.GetAPIVersion() != v1alpha1.GroupVersion.String() {
					t.Errorf("%s: %s %q has apiVersion %q, want %s", b, u.GetKind(), u.GetName(), u.GetAPIVersion(), v1alpha1.GroupVersion)
				}
				out = append(out, example{at: b, obj: u})
			}
			if !found {
				t.Errorf("%s: a kind: line names %s, but no document of the block is one; mark it %s", b, declaresRE.FindStringSubmatch(b.body)[1], markerFragment)
			}
		}
	}
	return out, fragments
}

// TestYAMLExamplesAreValid applies every OAuthClient and CloudflareAccount of README.md
// and docs/ with a server-side dry run to a real kube-apiserver with the CRDs of
// config/crd/bases: the OpenAPI schema and every CEL rule judge each example.
func TestYAMLExamplesAreValid(t *testing.T) {
	exs, fragments := examples(t)
	if len(exs) < 12 {
		t.Fatalf("found only %d examples; the parser lost some", len(exs))
	}
	env, err := testenv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Stop() })
	c, err := client.New(env.Config, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	namespaces := map[string]bool{}
	for _, ex := range exs {
		u := ex.obj
		if u.GetKind() == "OAuthClient" && u.GetNamespace() == "" {
			u.SetNamespace(metav1.NamespaceDefault)
		}
		if ns := u.GetNamespace(); ns != "" && !namespaces[ns] {
			ensureNamespace(ctx, t, c, ns)
			namespaces[ns] = true
		}
		err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.DryRunAll, client.FieldOwner("docs-test"), client.ForceOwnership)
		if err != nil {
			t.Errorf("%s: %s %s/%s is refused by the apiserver: %v", ex.at, u.GetKind(), u.GetNamespace(), u.GetName(), err)
		}
	}
	t.Logf("%d examples applied with dryRun=All; %d blocks marked %s", len(exs), fragments, markerFragment)
}

func ensureNamespace(ctx context.Context, t *testing.T, c client.Client, name string) {
	t.Helper()
	err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
}

// TestExampleParserSeesAll: the parser finds an example in a block indented under a
// list item, and a fragment marker skips a block.
func TestSnippetCompletion(t *testing.T) {
	u, err := completeSnippet("spec:\n  visibility: public\n  scopes: [account.read]\n")
	if err != nil {
		t.Fatal(err)
	}
	spec := u.Object["spec"].(map[string]any)
	if spec["visibility"] != "public" || spec["clientName"] != "Example Web App" || len(spec["scopes"].([]any)) != 1 {
		t.Fatalf("merged spec: %v", spec)
	}
	if _, err := completeSnippet("metadata: {}\n"); err == nil {
		t.Fatal("a snippet without spec was accepted")
	}
}

func TestExampleParserSeesAll(t *testing.T) {
	text := "- item:\n\n  ```yaml\n  kind: OAuthClient\n  ```\n\n<!-- fragment -->\n```yaml\nspec: {}\n```\n"
	blocks, _ := parseBlocks("x.md", text)
	if len(blocks) != 2 || !declaresRE.MatchString(blocks[0].body) || blocks[1].marker != markerFragment || blocks[0].line != 3 {
		var b bytes.Buffer
		for _, bl := range blocks {
			b.WriteString(bl.String() + " " + bl.marker + "\n" + bl.body)
		}
		t.Fatalf("parsed:\n%s", b.String())
	}
}
