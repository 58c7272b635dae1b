package policy_test

import (
	"os"
	"strings"
	"testing"

	"github.com/tdproof/tdproof/policy"
)

// TestDocsExample parses the YAML example of docs/policy.md, so the
// documentation cannot drift from the parser.
func TestDocsExample(t *testing.T) {
	t.Parallel()
	doc, err := os.ReadFile("../docs/policy.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	if !ok {
		t.Fatal("docs/policy.md has no yaml example")
	}
	src, _, ok := strings.Cut(rest, "```")
	if !ok {
		t.Fatal("unterminated yaml example")
	}
	p, err := policy.ParseYAML("production", "3", []byte(src))
	if err != nil {
		t.Fatalf("docs/policy.md example: %v", err)
	}
	if p.ID() != "production" {
		t.Errorf("id %q", p.ID())
	}
}
