package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/tdproof/tdproof/policy"
)

// FuzzParseYAML: ParseYAML either fails with ErrInvalid and no policy, or
// returns a policy whose rules re-parse to the same rules.
func FuzzParseYAML(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, s := range seeds {
		b, err := os.ReadFile(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		"", "{}", "tees: [tdx]\naccepted_tcb_statuses: [UpToDate, OutOfDate]",
		"reference_values: [tdx.mr_td, {name: x, claim: tdx.quote.body.rtmr_3}]",
		"allowed_app_ids: [0xAB]\nexpected_report_data: ff\nmax_tcb_date_age: 1h",
		"&a [*a]", "x: !!binary AAAA",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		p, err := policy.ParseYAML("fuzz", "1", doc)
		if err != nil {
			if !errors.Is(err, policy.ErrInvalid) || p != nil {
				t.Fatalf("ParseYAML = %v, %v", p, err)
			}
			return
		}
		again, err := policy.FromRules("fuzz", "1", *p.Rules())
		if err != nil {
			t.Fatalf("FromRules(parsed rules): %v", err)
		}
		back, err := policy.ParseYAML("fuzz", "1", again.Source())
		if err != nil {
			t.Fatalf("re-parse %q: %v", again.Source(), err)
		}
		if a, b := again.Source(), back.Source(); string(a) != string(b) {
			t.Fatalf("not stable:\n%s\n%s", a, b)
		}
	})
}
