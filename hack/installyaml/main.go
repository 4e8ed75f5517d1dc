// Command installyaml renders config/default, the CRDs and the operator, into one
// install.yaml with the manager image set: the file a release attaches, applied with
// `kubectl apply --server-side -f install.yaml`. It is kustomize's rendering (krusty, as
// `kubectl kustomize config/default`), so the release needs no kustomize or kubectl.
//
//	go run ./hack/installyaml -image ghcr.io/cloudflare-oauth-operator/cloudflare-oauth-operator:0.1.0 > install.yaml
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
)

// placeholder is the manager image in config/manager/manager.yaml.
const placeholder = "image: controller:latest"

// render returns config/default under root, rendered, with the manager image set.
func render(root, image string) ([]byte, error) {
	if image == "" {
		return nil, errors.New("-image is required")
	}
	opts := krusty.MakeDefaultOptions()
	opts.Reorder = krusty.ReorderOptionLegacy // namespaces and CRDs first, as kubectl
	resMap, err := krusty.MakeKustomizer(opts).Run(filesys.MakeFsOnDisk(), filepath.Join(root, "config", "default"))
	if err != nil {
		return nil, err
	}
	out, err := resMap.AsYaml()
	if err != nil {
		return nil, err
	}
	if bytes.Count(out, []byte(placeholder)) != 1 {
		return nil, fmt.Errorf("config/default must name the manager image %q exactly once", placeholder)
	}
	return bytes.Replace(out, []byte(placeholder), []byte("image: "+image), 1), nil
}

func main() {
	root := flag.String("root", ".", "repository root")
	image := flag.String("image", "", "the manager image, e.g. ghcr.io/cloudflare-oauth-operator/cloudflare-oauth-operator:0.1.0")
	flag.Parse()
	out, err := render(*root, *image)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if _, err := os.Stdout.Write(out); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
