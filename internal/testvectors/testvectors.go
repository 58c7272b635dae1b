// Package testvectors locates the shared real-evidence test data
// (quotes, collateral, event logs from real machines) that lives outside
// the repository.
//
// The directory is $TDPROOF_TESTDATA when set, otherwise shared/testdata
// in the parent directory of the module root. Tests call [Dir] (or [Path]); when the
// directory is absent the test is skipped with a message saying where the
// data was looked for and how to point at it. The files are never copied
// into the repository.
package testvectors

import (
	"os"
	"path/filepath"
	"runtime"
	"testing"
)

// EnvVar names the environment variable that overrides the location.
const EnvVar = "TDPROOF_TESTDATA"

// Location returns the directory where the shared test data is expected,
// whether or not it exists.
func Location() string {
	if d := os.Getenv(EnvVar); d != "" {
		return d
	}
	return filepath.Join(moduleRoot(), "..", "shared", "testdata")
}

// moduleRoot returns the directory that holds go.mod, derived from this
// source file's location (internal/testvectors/testvectors.go).
func moduleRoot() string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		wd, _ := os.Getwd()
		return wd
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Dir returns the shared test data directory, or skips the test when it
// is absent.
func Dir(tb testing.TB) string {
	tb.Helper()
	d := Location()
	st, err := os.Stat(d)
	if err != nil || !st.IsDir() {
		tb.Skipf("shared test data not found at %s; set %s to its location", d, EnvVar)
	}
	return d
}

// Path joins elem to the shared test data directory and skips the test
// when that file or directory does not exist.
func Path(tb testing.TB, elem ...string) string {
	tb.Helper()
	p := filepath.Join(append([]string{Dir(tb)}, elem...)...)
	if _, err := os.Stat(p); err != nil {
		tb.Skipf("shared test vector %s not found; set %s to the shared testdata directory", p, EnvVar)
	}
	return p
}

// ReadFile reads a file from the shared test data directory, skipping
// the test when it is absent and failing it on any other read error.
func ReadFile(tb testing.TB, elem ...string) []byte {
	tb.Helper()
	p := Path(tb, elem...)
	b, err := os.ReadFile(p)
	if err != nil {
		tb.Fatalf("reading shared test vector: %v", err)
	}
	return b
}
