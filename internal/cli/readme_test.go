package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// readmeExample is one command of the README that uses the vectors
// shipped in examples/, with the output lines the README shows for it.
type readmeExample struct {
	args []string
	want []string
}

// readmeExamples reads the shell blocks of README.md and returns the
// tdproof commands that name a file under examples/. Continuation lines
// (ending in a backslash) are joined; output lines follow a "$ " command
// until the next command or the end of the block.
func readmeExamples(t *testing.T, readme string) []readmeExample {
	t.Helper()
	var out []readmeExample
	inBlock, cont := false, ""
	var cur *readmeExample
	for line := range strings.Lines(readme) {
		line = strings.TrimRight(line, "\n")
		if strings.HasPrefix(line, "```") {
			inBlock, cur, cont = !inBlock && strings.TrimPrefix(line, "```") == "sh", nil, ""
			continue
		}
		if !inBlock {
			continue
		}
		if cont != "" || strings.HasPrefix(line, "$ tdproof ") || strings.HasPrefix(line, "go run ./cmd/tdproof ") {
			cont += " " + strings.TrimSpace(strings.TrimSuffix(line, "\\"))
			if strings.HasSuffix(line, "\\") {
				continue
			}
			cmd := strings.Fields(cont)
			cont, cur = "", nil
			for len(cmd) > 0 && cmd[0] != "tdproof" && cmd[0] != "./cmd/tdproof" {
				cmd = cmd[1:]
			}
			if len(cmd) == 0 || !strings.Contains(strings.Join(cmd, " "), "examples/") {
				continue
			}
			out = append(out, readmeExample{args: cmd[1:]})
			cur = &out[len(out)-1]
			continue
		}
		if cur != nil && strings.TrimSpace(line) != "" && strings.TrimSpace(line) != "…" && !strings.HasPrefix(line, "#") {
			cur.want = append(cur.want, line)
		}
	}
	return out
}

// matchesShown reports whether got has a line that shows what the README
// line shows: the same fields, where "…" stands for an elided part.
func matchesShown(got, shown string) bool {
	norm := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	parts := strings.Split(norm(shown), "…")
	for line := range strings.Lines(got) {
		l := norm(line)
		if !strings.HasPrefix(l, parts[0]) {
			continue
		}
		rest, ok := l[len(parts[0]):], true
		for _, p := range parts[1:] {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

// TestREADMEExamples runs every README command that uses the shipped
// example vectors, from the repository root as a fresh clone would, and
// checks the output lines the README shows.
func TestREADMEExamples(t *testing.T) {
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	examples := readmeExamples(t, string(readme))
	if len(examples) < 3 {
		t.Fatalf("found %d README commands using examples/, want at least 3", len(examples))
	}
	shown := 0
	for _, ex := range examples {
		shown += len(ex.want)
	}
	if shown < 10 {
		t.Fatalf("the README shows %d output lines for those commands, want at least 10 (is the parser broken?)", shown)
	}
	t.Chdir(root)
	for _, ex := range examples {
		t.Run(strings.Join(ex.args[:2], " "), func(t *testing.T) {
			for _, a := range ex.args {
				if strings.HasPrefix(a, "examples/") {
					if _, err := os.Stat(a); err != nil {
						t.Fatalf("README names %s: %v", a, err)
					}
				}
			}
			// A README example may show a refusal: its first line says so,
			// and the exit status is the policy's rejection.
			code := exitOK
			if len(ex.want) > 0 && strings.HasPrefix(ex.want[0], "REJECTED: ") {
				code = exitRejected
			}
			o := invoke(t, nil, ex.args...)
			o.wantCode(t, code, ex.args...)
			for _, w := range ex.want {
				if !matchesShown(o.stdout, w) {
					t.Errorf("tdproof %s: no output line shows %q\nstdout:\n%s", strings.Join(ex.args, " "), w, o.stdout)
				}
			}
		})
	}
}
