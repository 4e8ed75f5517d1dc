//go:build unix

package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// runnableBlock is a ```sh block of README.md or docs/ preceded by <!-- runnable -->
// (docs/development.md, "Documentation").
type runnableBlock struct {
	where string
	body  string
}

var docFenceRE = regexp.MustCompile("^( *)(```+)\\s*(\\S*)")

func runnableBlocks(t *testing.T) []runnableBlock {
	t.Helper()
	root := testenv.RepoRoot()
	docs, err := filepath.Glob(filepath.Join(root, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	files := append([]string{filepath.Join(root, "README.md")}, docs...)
	var out []runnableBlock
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rel, _ := filepath.Rel(root, f)
		lines := strings.Split(string(b), "\n")
		prev := ""
		for i := 0; i < len(lines); i++ {
			m := docFenceRE.FindStringSubmatch(lines[i])
			if m == nil {
				if s := strings.TrimSpace(lines[i]); s != "" {
					prev = s
				}
				continue
			}
			start := i
			var body []string
			for i++; i < len(lines) && strings.TrimSpace(lines[i]) != m[2]; i++ {
				body = append(body, strings.TrimPrefix(lines[i], m[1]))
			}
			if prev == "<!-- runnable -->" && (m[3] == "sh" || m[3] == "bash") {
				out = append(out, runnableBlock{where: rel + ":" + strconv.Itoa(start+1), body: strings.Join(body, "\n") + "\n"})
			}
			prev = ""
		}
	}
	return out
}

// TestRunnableDocBlocks starts the demo (control plane, emulator, the real operator,
// every sample Ready) and runs every shell block the docs mark runnable against it,
// from the repository root with bash -euo pipefail. bin/demo/kubeconfig in a block is
// the demo's kubeconfig. A block that needs kubectl or jq is skipped, and says so,
// where they are not installed.
func TestRunnableDocBlocks(t *testing.T) {
	blocks := runnableBlocks(t)
	if len(blocks) == 0 {
		t.Fatal("no runnable block found in README.md or docs/")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	var out bytes.Buffer
	d := &demo{opts: &options{timeout: time.Minute, verifyAfter: time.Second, namespace: "demo", dir: t.TempDir(), binary: managerBinary}, out: &out, start: time.Now()}
	defer func() {
		if err := d.stop(); err != nil {
			t.Error(err)
		}
	}()
	if err := d.setUp(ctx); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	if err := d.waitReady(ctx); err != nil {
		t.Fatalf("demo: %v\n%s", err, out.String())
	}
	ran := 0
	for _, b := range blocks {
		t.Run(b.where, func(t *testing.T) {
			for _, tool := range []string{"kubectl", "jq"} {
				if regexp.MustCompile(`(^|[\s|;(])` + tool + `\s`).MatchString(b.body) {
					if _, err := exec.LookPath(tool); err != nil {
						t.Skipf("%s is not installed; the block needs it", tool)
					}
				}
			}
			script := strings.ReplaceAll(b.body, "bin/demo/kubeconfig", d.kubeconfig)
			cmd := exec.CommandContext(ctx, "bash", "-euo", "pipefail", "-c", script)
			cmd.Dir = testenv.RepoRoot()
			cmd.Env = append(os.Environ(), "KUBECONFIG="+d.kubeconfig)
			output, err := cmd.CombinedOutput()
			t.Logf("%s\n%s", script, output)
			if err != nil {
				t.Fatalf("%s: %v", b.where, err)
			}
			ran++
		})
	}
	t.Logf("%d of %d runnable blocks ran", ran, len(blocks))
}
