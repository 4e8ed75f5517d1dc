package main

import (
	"bufio"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/cfapi/cfemu"
)

// walkthroughBlock is one sh block of docs/emulator.md's Walkthrough, and what the page
// says it prints: the fenced block after it, and the "# ..." lines inside it.
type walkthroughBlock struct {
	script, expected string
}

// readWalkthrough returns the sh blocks of the Walkthrough section in order.
func readWalkthrough(t *testing.T) []walkthroughBlock {
	t.Helper()
	f, err := os.Open(filepath.Join("..", "..", "docs", "emulator.md"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = f.Close() }()
	var blocks []walkthroughBlock
	var in bool
	var fence string
	var body strings.Builder
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "## "):
			in = line == "## Walkthrough"
		case !in:
		case fence == "" && strings.HasPrefix(line, "```"):
			fence = strings.TrimPrefix(line, "```")
			body.Reset()
		case fence != "" && line == "```":
			switch {
			case fence == "sh":
				blocks = append(blocks, walkthroughBlock{script: body.String()})
			case len(blocks) > 0:
				blocks[len(blocks)-1].expected += body.String()
			}
			fence = ""
		case fence != "":
			body.WriteString(line + "\n")
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return blocks
}

// promises are the facts of an expected output that must hold on every run (ids,
// secrets and times differ): error codes, HTTP statuses and a few state values.
var promises = regexp.MustCompile(`"code":\s*\d+|HTTP/1\.1 \d{3}|"(visibility|status)":\s*"\w+"|"(current|previous|reset)":\s*(true|false)`)

func normalize(s string) string { return strings.Join(strings.Fields(s), "") }

// TestWalkthrough runs the curl session of docs/emulator.md against the emulator and
// checks what the page says each command prints, so the page cannot drift from the
// emulator.
func TestWalkthrough(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("the walkthrough needs %s: %v", tool, err)
		}
	}
	// The page's emulator: one token T, verification not yet done when the session
	// promotes (it forces verification itself).
	emu := cfemu.New(cfemu.Options{Tokens: map[string][]string{"T": nil}, VerifyAfter: time.Hour})
	srv := httptest.NewServer(emu)
	defer srv.Close()
	dir := t.TempDir()

	blocks := readWalkthrough(t)
	if len(blocks) < 10 {
		t.Fatalf("found %d sh blocks in the Walkthrough of docs/emulator.md", len(blocks))
	}
	var env strings.Builder // variables set by earlier blocks carry over
	for i, b := range blocks {
		script := strings.NewReplacer("http://127.0.0.1:8787", srv.URL, "/tmp/created.json", filepath.Join(dir, "created.json")).Replace(b.script)
		cmd := exec.CommandContext(t.Context(), "bash", "-euo", "pipefail", "-c", env.String()+script)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("block %d failed: %v\n%s\noutput:\n%s", i+1, err, script, out)
		}
		got := normalize(string(out))
		for _, line := range strings.Split(b.script, "\n") {
			if strings.HasPrefix(strings.TrimSpace(line), "#") {
				b.expected += line + "\n"
			}
		}
		for _, want := range promises.FindAllString(b.expected, -1) {
			if !strings.Contains(got, normalize(want)) {
				t.Errorf("block %d: the page says the output holds %s; it printed:\n%s", i+1, want, out)
			}
		}
		for _, line := range strings.Split(script, "\n") {
			if m := regexp.MustCompile(`^([A-Z]+)=`).FindStringSubmatch(line); m != nil {
				env.WriteString(line + "\n")
			}
		}
	}
}
