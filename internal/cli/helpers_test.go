package cli

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode"

	"github.com/tdproof/tdproof/internal/testvectors"
	"github.com/tdproof/tdproof/quote"
)

// TestMain clears TDPROOF_* flag fallbacks from the environment (keeping
// the test data location) so the developer's shell cannot change results.
func TestMain(m *testing.M) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, EnvPrefix) && k != testvectors.EnvVar && k != envChromium && k != envArtifacts {
			os.Unsetenv(k)
		}
	}
	os.Exit(m.Run())
}

// outcome is what one invocation produced.
type outcome struct {
	stdout, stderr string
	code           int
}

// invoke runs tdproof through Main with stdin and returns its output. It
// fails the test if stderr breaks the diagnostic conventions.
func invoke(tb testing.TB, stdin []byte, args ...string) outcome {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(tb.Context(), args, bytes.NewReader(stdin), &stdout, &stderr)
	checkDiagnostics(tb, args, stderr.String())
	return outcome{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// invokeEnv runs tdproof with a fixed environment instead of the process's.
func invokeEnv(tb testing.TB, environ map[string]string, args ...string) outcome {
	tb.Helper()
	var stdout, stderr bytes.Buffer
	lookup := func(k string) (string, bool) { v, ok := environ[k]; return v, ok }
	code := run(tb.Context(), args, lookup, bytes.NewReader(nil), &stdout, &stderr)
	checkDiagnostics(tb, args, stderr.String())
	return outcome{stdout: stdout.String(), stderr: stderr.String(), code: code}
}

// checkDiagnostics enforces style §4.11: every stderr line is
// "tdproof: error: …" or "tdproof: hint: …", starting lower case, with no
// final period.
func checkDiagnostics(tb testing.TB, args []string, stderr string) {
	tb.Helper()
	for line := range strings.Lines(stderr) {
		line = strings.TrimSuffix(line, "\n")
		msg, ok := strings.CutPrefix(line, "tdproof: error: ")
		if !ok {
			msg, ok = strings.CutPrefix(line, "tdproof: hint: ")
		}
		if !ok {
			tb.Errorf("tdproof %s: stderr line %q lacks the tdproof: error:/hint: prefix", strings.Join(args, " "), line)
			continue
		}
		if r := []rune(msg); len(r) == 0 || unicode.IsUpper(r[0]) || strings.HasSuffix(msg, ".") {
			tb.Errorf("tdproof %s: diagnostic %q must start lower case and not end with a period", strings.Join(args, " "), line)
		}
	}
}

// wantCode fails the test when the exit code differs.
func (o outcome) wantCode(tb testing.TB, want int, args ...string) {
	tb.Helper()
	if o.code != want {
		tb.Fatalf("tdproof %s: exit code %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), o.code, want, o.stdout, o.stderr)
	}
}

// decodeJSON decodes stdout strictly into v.
func decodeJSON(tb testing.TB, o outcome, v any) {
	tb.Helper()
	dec := json.NewDecoder(strings.NewReader(o.stdout))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		tb.Fatalf("decoding JSON output: %v\n%s", err, o.stdout)
	}
}

// firstLine returns the first line of s.
func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// readVectorQuote returns a shared vector's quote bytes and parse.
func readVectorQuote(tb testing.TB, dir string) ([]byte, *quote.Quote) {
	tb.Helper()
	raw := testvectors.ReadFile(tb, "dcap", dir, "quote.bin")
	q, err := quote.Parse(raw)
	if err != nil {
		tb.Fatalf("quote.Parse(%s): %v", dir, err)
	}
	return raw, q
}

// writeFile writes data under dir and returns the path.
func writeFile(tb testing.TB, dir, name string, data []byte) string {
	tb.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o600); err != nil {
		tb.Fatal(err)
	}
	return p
}
