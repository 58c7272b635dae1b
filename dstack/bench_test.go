package dstack_test

import (
	"testing"

	"github.com/tdproof/tdproof/dstack"
	"github.com/tdproof/tdproof/internal/testvectors"
)

// BenchmarkParseEvidence parses the real dstack evidence vectors: a
// quote-report (GetQuote JSON with the event log as a string) and the
// tdx-lite GetQuote and attestation documents.
//
//	go test -run '^$' -bench ParseEvidence -benchmem ./dstack
func BenchmarkParseEvidence(b *testing.B) {
	for _, name := range []string{"quote-report.json", "tdx-lite-getquote.json", "tdx-lite-attestation.json"} {
		data := testvectors.ReadFile(b, "dstack", name)
		b.Run(name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := dstack.ParseEvidence(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
