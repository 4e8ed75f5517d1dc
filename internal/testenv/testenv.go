// Package testenv starts the source-built control plane (kube-apiserver and etcd from
// hack/setup-envtest.sh) with the operator's CRDs installed. Tests, the demo and the
// benchmark share it so that they all find the binaries and CRDs the same way.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sort"

	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// RepoRoot returns the repository root, found from this source file's location.
func RepoRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "."
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// AssetsDir returns the directory holding kube-apiserver and etcd: $KUBEBUILDER_ASSETS
// when set, otherwise the newest bin/k8s/<version>-<os>-<arch> directory built by
// `make setup-envtest`.
func AssetsDir() (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, nil
	}
	pattern := filepath.Join(RepoRoot(), "bin", "k8s", "*-"+runtime.GOOS+"-"+runtime.GOARCH)
	matches, _ := filepath.Glob(pattern)
	sort.Strings(matches)
	for i := len(matches) - 1; i >= 0; i-- {
		if _, err := os.Stat(filepath.Join(matches[i], "kube-apiserver")); err == nil {
			return matches[i], nil
		}
	}
	return "", errors.New("envtest binaries not found: run `make setup-envtest` (or `make test`), or set KUBEBUILDER_ASSETS")
}

// New returns an envtest environment with the operator's CRDs, not yet started.
func New() (*envtest.Environment, error) {
	assets, err := AssetsDir()
	if err != nil {
		return nil, err
	}
	return &envtest.Environment{
		CRDDirectoryPaths:     []string{filepath.Join(RepoRoot(), "config", "crd", "bases")},
		ErrorIfCRDPathMissing: true,
		BinaryAssetsDirectory: assets,
	}, nil
}

// Start starts a control plane; the caller must Stop it.
func Start() (*envtest.Environment, error) {
	env, err := New()
	if err != nil {
		return nil, err
	}
	if _, err := env.Start(); err != nil {
		return nil, fmt.Errorf("starting envtest control plane from %s: %w", env.BinaryAssetsDirectory, err)
	}
	return env, nil
}
