// Package release_test checks what the release pipeline builds from, offline: the
// Dockerfile's build context holds every package the manager imports, so that a new
// top-level package cannot break the image build unnoticed (Docker does not run here).
package release_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"golang.org/x/mod/modfile"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// dockerfile is what the tests read from the Dockerfile.
type dockerfile struct {
	// builderGo is the Go version of the builder image (golang:1.26 -> "1.26").
	builderGo string
	// copied are the source paths COPY'd into the builder stage, relative to the context.
	copied []string
	// built is the package path the builder compiles.
	built string
}

var (
	fromGolang = regexp.MustCompile(`^FROM\s+(?:--platform=\S+\s+)?golang:([0-9.]+)\S*\s+AS\s+builder$`)
	goBuild    = regexp.MustCompile(`go build .*\s(\./\S+)$`)
)

func parseDockerfile(t *testing.T) dockerfile {
	t.Helper()
	f, err := os.Open(filepath.Join(testenv.RepoRoot(), "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var d dockerfile
	inBuilder := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch fields := strings.Fields(line); {
		case len(fields) == 0 || strings.HasPrefix(line, "#"):
		case fields[0] == "FROM":
			m := fromGolang.FindStringSubmatch(line)
			inBuilder = m != nil
			if inBuilder {
				d.builderGo = m[1]
			}
		case inBuilder && fields[0] == "COPY" && !strings.HasPrefix(fields[1], "--from"):
			// COPY src... dest: every source is a path in the build context.
			for _, src := range fields[1 : len(fields)-1] {
				d.copied = append(d.copied, path.Clean(strings.TrimSuffix(src, "/")))
			}
		case inBuilder && fields[0] == "RUN":
			if m := goBuild.FindStringSubmatch(line); m != nil {
				d.built = m[1]
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if d.builderGo == "" || d.built == "" {
		t.Fatalf("Dockerfile: no golang builder stage or no go build in it: %+v", d)
	}
	return d
}

// dockerignored returns the patterns of .dockerignore.
func dockerignored(t *testing.T) []string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), ".dockerignore"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			out = append(out, strings.TrimPrefix(path.Clean(l), "/"))
		}
	}
	return out
}

// TestDockerContextHoldsTheManager: every package of this module that the built binary
// imports lies in a copied directory that .dockerignore does not exclude, go.mod and
// go.sum are copied, and the builder's Go is the version go.mod asks for.
func TestDockerContextHoldsTheManager(t *testing.T) {
	root := testenv.RepoRoot()
	d := parseDockerfile(t)
	ignored := dockerignored(t)
	copied := func(rel string) bool {
		for _, pat := range ignored {
			if ok, _ := path.Match(pat, rel); ok || rel == pat || strings.HasPrefix(rel, pat+"/") {
				return false
			}
		}
		for _, c := range d.copied {
			if c == "." || rel == c || strings.HasPrefix(rel, c+"/") {
				return true
			}
		}
		return false
	}
	for _, f := range []string{"go.mod", "go.sum"} {
		if !copied(f) {
			t.Errorf("the Dockerfile does not COPY %s", f)
		}
	}

	raw, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	mod, err := modfile.ParseLax("go.mod", raw, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(mod.Go.Version+".", d.builderGo+".") {
		t.Errorf("the builder is golang:%s but go.mod needs go %s", d.builderGo, mod.Go.Version)
	}

	local := 0
	for _, p := range moduleImports(t, root, mod.Module.Mod.Path, d.built) {
		local++
		rel, err := filepath.Rel(root, p.Dir)
		if err != nil {
			t.Fatal(err)
		}
		if !copied(filepath.ToSlash(rel)) {
			t.Errorf("the manager imports %s, but the Dockerfile's build context does not COPY %s", p.ImportPath, rel)
		}
	}
	if local < 3 {
		t.Fatalf("only %d packages of this module found in %s's imports", local, d.built)
	}
}

// goPackage is a package as `go list` reports it.
type goPackage struct {
	ImportPath, Dir string
	Module          *struct{ Path string }
}

// moduleImports lists the packages of module modPath that pkg needs to build for
// linux, pkg included.
func moduleImports(t *testing.T, root, modPath, pkg string) []goPackage {
	t.Helper()
	list := exec.Command("go", "list", "-deps", "-json=ImportPath,Dir,Module", pkg)
	list.Dir = root
	list.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux")
	out, err := list.Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var pkgs []goPackage
	for {
		var p goPackage
		if err := dec.Decode(&p); err == io.EOF {
			return pkgs
		} else if err != nil {
			t.Fatal(err)
		}
		if p.Module != nil && p.Module.Path == modPath {
			pkgs = append(pkgs, p)
		}
	}
}
