package chain

import (
	"bytes"
	"flag"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"sipedge/pipeline"
)

var update = flag.Bool("update", false, "rewrite the chain block of ../../README.md from chain.Default.Markdown()")

const (
	readme     = "../../README.md"
	chainBegin = "<!-- chain:begin -->\n"
	chainEnd   = "<!-- chain:end -->"
)

// TestREADMEChain keeps the README's drawing and table of the chain equal
// to what the chain file and the stages' declarations say.
func TestREADMEChain(t *testing.T) {
	b, err := os.ReadFile(readme)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte(chainBegin))
	if i < 0 {
		t.Fatalf("%s has no %q line: the chain block belongs in its Architecture section", readme, strings.TrimSpace(chainBegin))
	}
	i += len(chainBegin)
	j := bytes.Index(b[i:], []byte(chainEnd))
	if j < 0 {
		t.Fatalf("%s has %q but no %q after it", readme, strings.TrimSpace(chainBegin), chainEnd)
	}
	j += i
	want := Default.Markdown()
	if string(b[i:j]) == want {
		return
	}
	if *update {
		out := append(append(append([]byte(nil), b[:i]...), want...), b[j:]...)
		if err := os.WriteFile(readme, out, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("rewrote the chain block of %s", readme)
		return
	}
	t.Errorf("the chain block of README.md (between %q and %q) is not chain.Default.Markdown(): "+
		"the chain file or a StageDef changed. Run\n\n\tgo test ./pipeline/chain -run TestREADMEChain -update\n\n"+
		"to rewrite it, or paste this between the markers:\n\n%s", strings.TrimSpace(chainBegin), chainEnd, want)
}

// TestStageFolders checks that every stage of the chain file is a folder
// pipeline/stages/<name> with its README.md and its package doc in doc.go,
// and that no two stages share a name.
func TestStageFolders(t *testing.T) {
	seen := map[string]bool{}
	for _, d := range Default {
		if d.Name == "" {
			t.Errorf("a stage of chain.Default has no name (%q)", d.Doc)
			continue
		}
		if seen[d.Name] {
			t.Errorf("stage %q is twice in chain.Default", d.Name)
		}
		seen[d.Name] = true
		if d.Doc == "" {
			t.Errorf("stage %q: StageDef.Doc is empty (the README's table says what the stage decides from it)", d.Name)
		}
		dir := filepath.Join("..", "stages", d.Name)
		if _, err := os.Stat(filepath.Join(dir, "README.md")); err != nil {
			t.Errorf("stage %q: no README.md in pipeline/stages/%s: %v", d.Name, d.Name, err)
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, "doc.go"), nil, parser.PackageClauseOnly|parser.ParseComments)
		if err != nil {
			t.Errorf("stage %q: pipeline/stages/%s/doc.go: %v", d.Name, d.Name, err)
			continue
		}
		if f.Name.Name != d.Name {
			t.Errorf("stage %q: pipeline/stages/%s/doc.go is package %s: a stage's package is named after it", d.Name, d.Name, f.Name.Name)
		}
		if f.Doc == nil || !strings.HasPrefix(f.Doc.Text(), "Package "+f.Name.Name+" ") {
			t.Errorf("stage %q: pipeline/stages/%s/doc.go holds no package comment (\"// Package %s ...\")", d.Name, d.Name, f.Name.Name)
		}
	}
}

func TestMarkdown(t *testing.T) {
	c := Chain{
		{Name: "a", Doc: "one | two", Section: "[a]", DropsMetric: "x_dropped_total",
			Counters: []pipeline.CounterDef{{Name: "x_total"}, {Name: "y_total", Label: "l", Values: []string{"p", "q"}}}},
		{Name: "b", Doc: "parks", Parks: true},
	}
	want := "```text\nport -> a -> b -> port\n```\n\n" +
		"| stage | section | decides | parks | counters |\n" +
		"|---|---|---|---|---|\n" +
		"| a | `[a]` | one \\| two | no | `x_dropped_total`, `x_total`, `y_total` |\n" +
		"| b | - | parks | yes | - |\n"
	if got := c.Markdown(); got != want {
		t.Errorf("Markdown:\n%s\nwant:\n%s", got, want)
	}
	if Default.Markdown() != Default.Markdown() {
		t.Error("Markdown is not deterministic")
	}
}
