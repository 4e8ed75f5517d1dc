package manifests_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// makeRecipe returns the recipe lines of a Makefile target.
func makeRecipe(t *testing.T, target string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "Makefile"))
	if err != nil {
		t.Fatal(err)
	}
	var recipe []string
	in := false
	for line := range strings.Lines(string(data)) {
		switch {
		case strings.HasPrefix(line, target+":"):
			in = true
		case in && strings.HasPrefix(line, "\t"):
			recipe = append(recipe, strings.TrimSpace(line))
		case in:
			return strings.Join(recipe, "\n")
		}
	}
	if !in {
		t.Fatalf("the Makefile has no target %s", target)
	}
	return strings.Join(recipe, "\n")
}

// kustomizeDirOf returns the kustomize directory a Makefile target applies or deletes
// (`-k DIR` or `kustomize DIR`).
func kustomizeDirOf(t *testing.T, target string) string {
	t.Helper()
	recipe := makeRecipe(t, target)
	m := regexp.MustCompile(`(?:-k|kustomize) (config/\S+)`).FindStringSubmatch(recipe)
	if m == nil {
		t.Fatalf("make %s names no kustomize directory: %q", target, recipe)
	}
	return m[1]
}

func objectKeys(objs []*unstructured.Unstructured) []string {
	keys := make([]string, 0, len(objs))
	for _, o := range objs {
		keys = append(keys, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(keys)
	return keys
}

// TestUndeployKeepsCRDs: `make undeploy` removes the operator and nothing else.
// Deleting a CRD deletes every object of its kind, so the set it deletes holds no
// CustomResourceDefinition, while `make deploy` (config/default) still installs every
// CRD and `make uninstall` deletes exactly the CRD layer. config/default is the CRD
// layer plus the undeploy set, nothing more or less.
func TestUndeployKeepsCRDs(t *testing.T) {
	build := func(dir string) []*unstructured.Unstructured {
		return kustomizeBuild(t, filesys.MakeFsOnDisk(), filepath.Join(testenv.RepoRoot(), dir))
	}
	undeployDir := kustomizeDirOf(t, "undeploy")
	undeploySet := build(undeployDir)
	if crds := find(undeploySet, crdKind); len(crds) != 0 {
		t.Errorf("make undeploy deletes %s, which holds CRDs %v: that would delete every OAuthClient", undeployDir, crdNames(crds))
	}
	if len(find(undeploySet, "Deployment")) != 1 {
		t.Errorf("make undeploy deletes %s, which holds no manager Deployment", undeployDir)
	}

	if dir := kustomizeDirOf(t, "uninstall"); dir != "config/crd" {
		t.Errorf("make uninstall deletes %s, want config/crd", dir)
	}
	if dir := kustomizeDirOf(t, "install"); dir != "config/crd" {
		t.Errorf("make install applies %s, want config/crd", dir)
	}
	deployDir := kustomizeDirOf(t, "deploy")
	deploySet := build(deployDir)
	if !slices.Contains(crdNames(deploySet), oauthCRD) {
		t.Errorf("make deploy applies %s, which lacks the CRD %s", deployDir, oauthCRD)
	}

	crdLayer := build("config/crd")
	if diff := cmp.Diff(objectKeys(deploySet), objectKeys(append(crdLayer, undeploySet...))); diff != "" {
		t.Errorf("%s is not config/crd plus %s (-deploy +crd and undeploy):\n%s", deployDir, undeployDir, diff)
	}
	for _, o := range crdLayer {
		if o.GetKind() != crdKind {
			t.Errorf("config/crd holds %s %s: make uninstall would delete it with the CRDs", o.GetKind(), o.GetName())
		}
	}
}

// TestDocumentedOverlay builds the kustomize overlay of docs/install.md, with its
// remote bases pointed at this checkout: the optional components land in the
// operator's namespace, next to everything config/default installs.
func TestDocumentedOverlay(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "install.md"))
	if err != nil {
		t.Fatal(err)
	}
	const remote = "https://github.com/cloudflare-oauth-operator/cloudflare-oauth-operator//config/"
	overlay := ""
	for block := range strings.SplitSeq(string(doc), "```yaml\n") {
		block, _, _ = strings.Cut(block, "```")
		if strings.Contains(block, remote+"default?ref=") && strings.Contains(block, "components:") {
			overlay = block
			break
		}
	}
	if overlay == "" {
		t.Fatal("docs/install.md has no overlay with config/default and components")
	}
	overlay = regexp.MustCompile(regexp.QuoteMeta(remote)+`([a-z-]+)\?ref=\S+`).ReplaceAllString(overlay, "../config/$1")

	fsys := filesys.MakeFsInMemory()
	err = filepath.WalkDir(configDir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(configDir, path)
		return fsys.WriteFile(filepath.Join("/config", rel), data)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := fsys.WriteFile("/overlay/kustomization.yaml", []byte(overlay)); err != nil {
		t.Fatal(err)
	}
	objs := kustomizeBuild(t, fsys, "/overlay")
	for _, kind := range []string{"ServiceMonitor", "NetworkPolicy", "Deployment"} {
		for _, o := range find(objs, kind) {
			if o.GetNamespace() != installNamespace {
				t.Errorf("%s %s is in namespace %q, want %s", kind, o.GetName(), o.GetNamespace(), installNamespace)
			}
		}
		if len(find(objs, kind)) != 1 {
			t.Errorf("the overlay renders %d %s, want 1", len(find(objs, kind)), kind)
		}
	}
	base := kustomizeBuild(t, filesys.MakeFsOnDisk(), filepath.Join(configDir, "default"))
	for _, o := range base {
		if !slices.ContainsFunc(objs, func(u *unstructured.Unstructured) bool {
			return u.GetKind() == o.GetKind() && u.GetName() == o.GetName() && u.GetNamespace() == o.GetNamespace()
		}) {
			t.Errorf("the overlay lost %s %s/%s of config/default", o.GetKind(), o.GetNamespace(), o.GetName())
		}
	}
	dep := one[appsv1.Deployment](t, objs, "Deployment")
	if got := dep.Spec.Template.Spec.Containers[0].Image; !strings.HasPrefix(got, "registry.example.com/cloudflare-oauth-operator:") {
		t.Errorf("image %q: the overlay's images did not apply", got)
	}
}
