package main

import (
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestReflow(t *testing.T) {
	in := []string{
		"first line of a paragraph",
		"continues here.",
		"",
		"A list:",
		"- item one",
		"  wraps onto a second line",
		"- item two",
		"1. numbered",
		"",
		"```",
		"code stays",
		"as it is",
		"```",
		"after the code",
		"joins too",
	}
	want := []string{
		"first line of a paragraph continues here.",
		"",
		"A list:",
		"- item one wraps onto a second line",
		"- item two",
		"1. numbered",
		"",
		"```",
		"code stays",
		"as it is",
		"```",
		"after the code joins too",
	}
	if got := Reflow(in); !slices.Equal(got, want) {
		t.Errorf("Reflow:\n got %q\nwant %q", got, want)
	}
}

func TestReflowYAMLTouchesOnlyDescriptions(t *testing.T) {
	in := "spec:\n  description: |-\n    one\n    two\n\n    three\n  pattern: |-\n    keep\n    these\n  other: x\n"
	want := "spec:\n  description: |-\n    one two\n\n    three\n  pattern: |-\n    keep\n    these\n  other: x\n"
	if got := ReflowYAML(in); got != want {
		t.Errorf("ReflowYAML:\n got %q\nwant %q", got, want)
	}
}

// TestCommittedCRDsReadCleanly checks what `kubectl explain` shows: no description of
// a committed CRD has a paragraph hard-wrapped across lines (kubectl wraps it again at
// its own width, leaving ragged short lines), and reflowing changes nothing.
func TestCommittedCRDsReadCleanly(t *testing.T) {
	files, err := filepath.Glob("../../config/crd/bases/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs found: %v", err)
	}
	prose := regexp.MustCompile(`^\s+[a-z][^:]*[a-z,]$`) // a line that ends mid-sentence
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if ReflowYAML(string(data)) != string(data) {
			t.Errorf("%s has hard-wrapped descriptions: run `make manifests`", f)
		}
		lines := strings.Split(string(data), "\n")
		for i := 0; i+1 < len(lines); i++ {
			next := strings.TrimSpace(lines[i+1])
			if prose.MatchString(lines[i]) && next != "" && indentOf(lines[i]) == indentOf(lines[i+1]) &&
				!listItem.MatchString(next) && !strings.Contains(lines[i+1], ":") {
				t.Errorf("%s:%d: a sentence continues on the next line: %q", filepath.Base(f), i+1, strings.TrimSpace(lines[i]))
			}
		}
	}
}
