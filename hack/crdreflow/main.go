// Command crdreflow reflows the descriptions of generated CRDs so that `kubectl explain`
// reads cleanly.
//
// controller-gen keeps the line breaks of the Go doc comments it copies into a CRD's
// descriptions. kubectl explain wraps text again at its own width, so every hard wrap
// of the source shows as a ragged short line. crdreflow joins the lines of each
// paragraph into one, keeping what the breaks mean: blank lines between paragraphs,
// list items ("- ", "* ", "1. "), indented lines and fenced code blocks.
//
// It rewrites the files named on the command line in place, and only the block scalars
// of description keys: every other byte stays as controller-gen wrote it.
//
//	go run ./hack/crdreflow config/crd/bases/*.yaml
package main

import (
	"fmt"
	"os"
	"regexp"
	"strings"
)

func main() {
	for _, path := range os.Args[1:] {
		data, err := os.ReadFile(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		out := ReflowYAML(string(data))
		if out == string(data) {
			continue
		}
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil { //nolint:gosec // a generated manifest, world-readable like the rest of the repository
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}

var descriptionBlock = regexp.MustCompile(`^(\s*)description: \|-?$`)

// ReflowYAML reflows the text of every `description: |-` block scalar in a YAML
// document and leaves every other line alone.
func ReflowYAML(doc string) string {
	lines := strings.Split(doc, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		out = append(out, lines[i])
		m := descriptionBlock.FindStringSubmatch(lines[i])
		if m == nil {
			continue
		}
		// The block is every following line indented deeper than the key, or blank.
		j := i + 1
		for j < len(lines) && (strings.TrimSpace(lines[j]) == "" || indentOf(lines[j]) > len(m[1])) {
			j++
		}
		for j > i+1 && strings.TrimSpace(lines[j-1]) == "" {
			j-- // trailing blank lines belong to what follows
		}
		block := lines[i+1 : j]
		if len(block) == 0 {
			continue
		}
		indent := strings.Repeat(" ", indentOf(block[0]))
		text := make([]string, len(block))
		for k, l := range block {
			text[k] = strings.TrimPrefix(l, indent)
		}
		for _, l := range Reflow(text) {
			if l == "" {
				out = append(out, "")
			} else {
				out = append(out, indent+l)
			}
		}
		i = j - 1
	}
	return strings.Join(out, "\n")
}

var listItem = regexp.MustCompile(`^([-*+]|[0-9]+[.)])\s`)

// Reflow joins the hard-wrapped lines of each paragraph of a description. A line
// continues the previous one unless either is blank, the line starts a list item or is
// indented, or the lines are inside a fenced code block.
func Reflow(lines []string) []string {
	var out []string
	inCode, canJoin := false, false
	for _, l := range lines {
		fence := strings.HasPrefix(strings.TrimSpace(l), "```") || strings.HasPrefix(strings.TrimSpace(l), "~~~")
		switch {
		case fence:
			inCode = !inCode
			out = append(out, l)
			canJoin = false
		case inCode:
			out = append(out, l)
		case strings.TrimSpace(l) == "":
			out = append(out, "")
			canJoin = false
		case listItem.MatchString(l):
			out = append(out, l)
			canJoin = true
		case strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t"):
			if canJoin && len(out) > 0 && listItem.MatchString(lastItem(out)) {
				out[len(out)-1] += " " + strings.TrimSpace(l) // a list item's continuation
				continue
			}
			out = append(out, l)
			canJoin = false
		case canJoin:
			out[len(out)-1] += " " + l
		default:
			out = append(out, l)
			canJoin = true
		}
	}
	return out
}

func lastItem(out []string) string { return out[len(out)-1] }

func indentOf(l string) int { return len(l) - len(strings.TrimLeft(l, " ")) }
