package main

import (
	"strings"
	"testing"
)

// TestSummary feeds recorded go test -json events: a passing package, a
// skipped test with its reason, a failing test whose output is shown,
// and a package without tests.
func TestSummary(t *testing.T) {
	in := strings.Join([]string{
		`{"Action":"run","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"=== RUN   TestOK\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestOK","Output":"    a_test.go:3: chatter\n"}`,
		`{"Action":"pass","Package":"p/a","Test":"TestOK"}`,
		`{"Action":"run","Package":"p/a","Test":"TestPG"}`,
		`{"Action":"output","Package":"p/a","Test":"TestPG","Output":"=== RUN   TestPG\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestPG","Output":"    backend_test.go:40: no TDPROOF_TEST_POSTGRES_DSN: skipping PostgreSQL\n"}`,
		`{"Action":"output","Package":"p/a","Test":"TestPG","Output":"--- SKIP: TestPG (0.00s)\n"}`,
		`{"Action":"skip","Package":"p/a","Test":"TestPG"}`,
		`{"Action":"output","Package":"p/a","Output":"PASS\n"}`,
		`{"Action":"output","Package":"p/a","Output":"ok  \tp/a\t0.1s\n"}`,
		`{"Action":"pass","Package":"p/a"}`,
		`{"Action":"output","Package":"p/b","Test":"TestBad","Output":"    b_test.go:9: got 1, want 2\n"}`,
		`{"Action":"output","Package":"p/b","Test":"TestBad","Output":"--- FAIL: TestBad (0.00s)\n"}`,
		`{"Action":"fail","Package":"p/b","Test":"TestBad"}`,
		`{"Action":"output","Package":"p/b","Output":"FAIL\tp/b\t0.2s\n"}`,
		`{"Action":"fail","Package":"p/b"}`,
		`{"Action":"output","Package":"p/c","Output":"?   \tp/c\t[no test files]\n"}`,
		`{"Action":"skip","Package":"p/c"}`,
		`not json`,
	}, "\n")
	var out strings.Builder
	s := newSummary(&out)
	if err := s.consume(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	s.report()
	got := out.String()
	for _, want := range []string{
		"ok  \tp/a\t0.1s\n",
		"b_test.go:9: got 1, want 2\n--- FAIL: TestBad",
		"FAIL\tp/b\t0.2s\n",
		"not json\n",
		"skipped: 1 tests",
		"1 × no TDPROOF_TEST_POSTGRES_DSN: skipping PostgreSQL\n      p/a TestPG\n",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "PASS\n") {
		t.Errorf("a package's PASS line was printed (go test without -v prints only ok):\n%s", got)
	}
	if strings.Contains(got, "chatter") {
		t.Errorf("a passing test's output was printed:\n%s", got)
	}
	if s.failed != 1 {
		t.Errorf("failed = %d", s.failed)
	}
	var none strings.Builder
	newSummary(&none).report()
	if !strings.Contains(none.String(), "skipped: none") {
		t.Errorf("empty report: %q", none.String())
	}
}
