package mychat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// guide is the adapter guide, relative to this package's directory.
const guide = "../../docs/writing-an-adapter.md"

// quotedFiles are the files the guide's Go excerpts are copied from.
func quotedFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "../../kit/inbound/example_test.go")
	files := make(map[string]string, len(paths))
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		files[p] = "\n" + string(b)
	}
	return files
}

// goBlock is one ```go block of the guide.
type goBlock struct {
	line int // of the opening fence, from 1
	text string
}

// goBlocks extracts the ```go blocks of a Markdown document. A fenced
// block may be indented (inside a list item); its fence's indentation is
// removed from each of its lines, as CommonMark does.
func goBlocks(t *testing.T, doc string) []goBlock {
	t.Helper()
	var blocks []goBlock
	lines := strings.Split(doc, "\n")
	for i := 0; i < len(lines); i++ {
		trimmed := strings.TrimLeft(lines[i], " ")
		if strings.TrimSpace(trimmed) != "```go" {
			continue
		}
		indent := len(lines[i]) - len(trimmed)
		start := i + 1
		end := -1
		for j := start; j < len(lines); j++ {
			if strings.TrimSpace(lines[j]) == "```" {
				end = j
				break
			}
		}
		if end < 0 {
			t.Fatalf("%s:%d: a ```go block is never closed", guide, i+1)
		}
		body := make([]string, 0, end-start)
		for _, l := range lines[start:end] {
			if len(l) >= indent && strings.TrimLeft(l[:indent], " ") == "" {
				l = l[indent:]
			}
			body = append(body, l)
		}
		blocks = append(blocks, goBlock{line: i + 1, text: strings.Join(body, "\n")})
		i = end
	}
	return blocks
}

// TestGuideQuotesTheSkeleton keeps docs/writing-an-adapter.md honest:
// every Go block it shows must appear verbatim (whole lines, same
// indentation) in this package's files or in kit/inbound's worked
// example, which compile and run under make test. A guide edited apart
// from the code, or code changed without the guide, fails here.
func TestGuideQuotesTheSkeleton(t *testing.T) {
	doc, err := os.ReadFile(guide)
	if err != nil {
		t.Fatal(err)
	}
	blocks := goBlocks(t, string(doc))
	if len(blocks) == 0 {
		t.Fatalf("%s has no ```go block: is this still the guide?", guide)
	}
	files := quotedFiles(t)
	for _, b := range blocks {
		if strings.TrimSpace(b.text) == "" {
			t.Errorf("%s:%d: an empty ```go block", guide, b.line)
			continue
		}
		found := false
		for _, src := range files {
			if strings.Contains(src, "\n"+b.text+"\n") {
				found = true
				break
			}
		}
		if !found {
			first, _, _ := strings.Cut(strings.TrimSpace(b.text), "\n")
			t.Errorf("%s:%d: the ```go block starting %q is not copied verbatim (whole lines, tabs kept) from examples/mychat/*.go or kit/inbound/example_test.go; copy it again from the code", guide, b.line, first)
		}
	}
}
