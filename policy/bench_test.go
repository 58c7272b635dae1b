package policy_test

import (
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/policy"
	"github.com/tdproof/tdproof/refvalue"
)

// BenchmarkAppraise measures one appraisal of an accepted TD with two
// matching reference values, per engine.
func BenchmarkAppraise(b *testing.B) {
	ev := fixture(b, "tdx-v4", dcaptest.TDXQuoteV4, nil)
	refs := storeOf(b,
		refvalue.Value{Name: "tdx.mr_td", Values: []string{mustString(ev.claims, "tdx.quote.body.mr_td")}},
		refvalue.Value{Name: "tdx.rtmr_1", Values: []string{mustString(ev.claims, "tdx.quote.body.rtmr_1")}},
	)
	for _, c := range []struct {
		name string
		p    *policy.Policy
	}{
		{"default", policy.Default()},
		{"yaml", loadPolicy(b, policy.FormatYAML, "twin.yaml")},
		{"rego", loadPolicy(b, policy.FormatRego, "twin.rego")},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				a, err := policy.Appraise(b.Context(), c.p, ev.claims, refs, ev.at)
				if err != nil || !a.Allow {
					b.Fatalf("Appraise = %v, %v", a, err)
				}
			}
		})
	}
}
