package main

import (
	"bytes"
	"strings"
	"testing"
)

func TestRenderSetsTheImage(t *testing.T) {
	const image = "ghcr.io/cloudflare-oauth-operator/cloudflare-oauth-operator:1.2.3"
	out, err := render("../..", image)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"image: " + image, "kind: CustomResourceDefinition", "kind: Deployment", "namespace: cloudflare-oauth-operator-system"} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("install.yaml lacks %q", want)
		}
	}
	if strings.Contains(string(out), placeholder) {
		t.Error("the placeholder image is left")
	}
	if _, err := render("../..", ""); err == nil {
		t.Error("an empty image must be refused")
	}
}
