// Package docs_test keeps the documentation in step with the code it describes.
package docs_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// reasons returns the values of the Reason* constants of api/v1alpha1/conditions.go.
func reasons(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(testenv.RepoRoot(), "api", "v1alpha1", "conditions.go"), nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				v, _ := strconv.Unquote(lit.Value)
				out = append(out, v)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("no Reason constants found")
	}
	return out
}

// TestTroubleshootingCoversEveryReason: docs/troubleshooting.md has a table row for
// every condition reason the API defines.
func TestTroubleshootingCoversEveryReason(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "troubleshooting.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reasons(t) {
		if !strings.Contains(string(doc), "\n| `"+r+"` |") {
			t.Errorf("docs/troubleshooting.md has no row for reason %s", r)
		}
	}
}
