package docs_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/api/v1alpha1"
	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// apiReference reads docs/reference/api.md, which `make docs` generates, into its
// field tables: section heading (a kind or a type name) -> field JSON name -> the
// field's description cell.
func apiReference(t *testing.T) map[string]map[string]string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), "docs", "reference", "api.md"))
	if err != nil {
		t.Fatalf("%v: run make docs", err)
	}
	sections := map[string]map[string]string{}
	var heading string
	for line := range strings.SplitSeq(string(raw), "\n") {
		if h, ok := strings.CutPrefix(line, "## "); ok {
			heading = h
			continue
		}
		if h, ok := strings.CutPrefix(line, "### "); ok {
			heading = h
			continue
		}
		rest, ok := strings.CutPrefix(line, "| `")
		if !ok {
			continue
		}
		name, _, ok := strings.Cut(rest, "`")
		if !ok {
			continue
		}
		// The description is the last cell; \| is a pipe inside a cell.
		cells := strings.Split(strings.ReplaceAll(strings.TrimSuffix(strings.TrimSpace(line), "|"), `\|`, "\x00"), "|")
		if sections[heading] == nil {
			sections[heading] = map[string]string{}
		}
		sections[heading][name] = strings.TrimSpace(cells[len(cells)-1])
	}
	return sections
}

// jsonName is a struct field's name in the API, or "" for a field that is not in
// it (json:"-") or whose fields are inlined into the parent (TypeMeta).
func jsonName(f reflect.StructField) string {
	tag, ok := f.Tag.Lookup("json")
	if !ok {
		return f.Name
	}
	name, opts, _ := strings.Cut(tag, ",")
	if name == "-" || (name == "" && strings.Contains(","+opts+",", ",inline,")) {
		return ""
	}
	if name == "" {
		return f.Name
	}
	return name
}

// TestAPIReferenceCoversEveryField walks the Go types of both kinds, spec and status
// down to the last nested type of this API group, and fails when a field is missing
// from its type's table in docs/reference/api.md or has no description there, so the
// reference can never drop a field. Kubernetes' own types (ObjectMeta, Condition, Time)
// are linked to the Kubernetes API reference, not described, and are not walked.
func TestAPIReferenceCoversEveryField(t *testing.T) {
	ref := apiReference(t)
	apiPkg := reflect.TypeFor[v1alpha1.OAuthClient]().PkgPath()

	seen := map[reflect.Type]bool{}
	var walk func(typ reflect.Type, path string)
	walk = func(typ reflect.Type, path string) {
		for typ.Kind() == reflect.Pointer || typ.Kind() == reflect.Slice || typ.Kind() == reflect.Map {
			typ = typ.Elem()
		}
		if typ.Kind() != reflect.Struct || typ.PkgPath() != apiPkg || seen[typ] {
			return
		}
		seen[typ] = true
		table, ok := ref[typ.Name()]
		if !ok {
			t.Errorf("docs/reference/api.md has no section for %s (%s): run make docs", typ.Name(), path)
			return
		}
		for f := range typ.Fields() {
			name := jsonName(f)
			if name == "" || !f.IsExported() {
				continue
			}
			desc, ok := table[name]
			switch {
			case !ok:
				t.Errorf("docs/reference/api.md: section %s has no row for field %s (%s.%s): run make docs", typ.Name(), name, path, name)
			case desc == "":
				t.Errorf("docs/reference/api.md: field %s.%s has no description: give %s.%s a doc comment", path, name, typ.Name(), f.Name)
			}
			walk(f.Type, path+"."+name)
		}
	}

	for _, kind := range []reflect.Type{reflect.TypeFor[v1alpha1.OAuthClient](), reflect.TypeFor[v1alpha1.CloudflareAccount]()} {
		for _, part := range []string{"spec", "status"} {
			if _, ok := kind.FieldByName(strings.ToUpper(part[:1]) + part[1:]); !ok {
				t.Fatalf("%s has no %s field", kind.Name(), part)
			}
		}
		walk(kind, kind.Name())
	}

	// The walk must have reached every spec and status type, or it proves nothing.
	for _, typ := range []reflect.Type{
		reflect.TypeFor[v1alpha1.OAuthClientSpec](), reflect.TypeFor[v1alpha1.OAuthClientStatus](),
		reflect.TypeFor[v1alpha1.CloudflareAccountSpec](), reflect.TypeFor[v1alpha1.CloudflareAccountStatus](),
		reflect.TypeFor[v1alpha1.SecretTemplateMetadata](), reflect.TypeFor[v1alpha1.RecordPublication](),
	} {
		if !seen[typ] {
			t.Errorf("the walk never reached %s", typ.Name())
		}
	}
}
