package docs_test

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudflare-oauth-operator/cloudflare-oauth-operator/internal/testenv"
)

// Markers, on the line before a fenced block (docs/development.md, "Documentation").
const (
	markerFragment = "<!-- fragment -->"
	markerRunnable = "<!-- runnable -->"
	markerComplete = "<!-- complete: OAuthClient -->"
)

// block is a fenced code block of a Markdown file.
type block struct {
	file   string // relative to the repository root
	line   int    // of the opening fence, 1-based
	lang   string // the info string's first word
	marker string // the HTML comment on the line before the fence, if any
	body   string // with the fence's indentation removed
}

func (b block) String() string { return b.file + ":" + strconv.Itoa(b.line) }

var fenceRE = regexp.MustCompile("^( *)(```+|~~~+)\\s*([^\\s`]*)")

// docFiles are README.md and every Markdown file of docs/ except the generated
// reference, relative to the repository root.
func docFiles(t *testing.T) []string {
	t.Helper()
	files := []string{"README.md"}
	err := filepath.WalkDir(filepath.Join(testenv.RepoRoot(), "docs"), func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(testenv.RepoRoot(), path)
		if d.IsDir() && rel == filepath.Join("docs", "reference") {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(path, ".md") {
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(files)
	return files
}

func readDoc(t *testing.T, rel string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testenv.RepoRoot(), filepath.FromSlash(rel)))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// parseBlocks returns the fenced blocks of a Markdown text, and its lines outside them
// (blank where a block was, so that line numbers stay).
func parseBlocks(file, text string) (blocks []block, prose []string) {
	lines := strings.Split(text, "\n")
	for i := 0; i < len(lines); i++ {
		m := fenceRE.FindStringSubmatch(lines[i])
		if m == nil {
			prose = append(prose, lines[i])
			continue
		}
		indent, fence := len(m[1]), m[2]
		b := block{file: file, line: i + 1, lang: m[3]}
		for j := i - 1; j >= 0; j-- {
			if s := strings.TrimSpace(lines[j]); s != "" {
				if strings.HasPrefix(s, "<!--") && strings.HasSuffix(s, "-->") {
					b.marker = s
				}
				break
			}
		}
		prose = append(prose, "")
		var body []string
		for i++; i < len(lines); i++ {
			prose = append(prose, "")
			s := lines[i]
			if strings.HasPrefix(strings.TrimLeft(s, " "), fence) && strings.TrimSpace(strings.TrimLeft(strings.TrimLeft(s, " "), fence[:1])) == "" {
				break
			}
			if len(s) >= indent && strings.TrimSpace(s[:indent]) == "" {
				s = s[indent:]
			}
			body = append(body, s)
		}
		b.body = strings.Join(body, "\n") + "\n"
		blocks = append(blocks, b)
	}
	return blocks, prose
}

// TestMarkersAreKnown: an HTML comment before a fence is one of the two markers, on
// a block of the kind it applies to; a misspelt marker would silently do nothing.
func TestMarkersAreKnown(t *testing.T) {
	for _, f := range docFiles(t) {
		blocks, _ := parseBlocks(f, readDoc(t, f))
		for _, b := range blocks {
			switch {
			case b.marker == "":
			case (b.marker == markerFragment || b.marker == markerComplete) && (b.lang == "yaml" || b.lang == "yml"):
			case b.marker == markerRunnable && (b.lang == "sh" || b.lang == "bash"):
			default:
				t.Errorf("%s: marker %q on a %q block: use %s or %s on yaml, %s on sh", b, b.marker, b.lang, markerFragment, markerComplete, markerRunnable)
			}
		}
	}
}
