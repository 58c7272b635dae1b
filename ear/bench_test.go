package ear_test

import (
	"testing"

	"github.com/tdproof/tdproof/ear"
)

func BenchmarkSign(b *testing.B) {
	s := newSigner(b, newSet(b))
	c := sampleClaims("abcdefgh")
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := s.Sign(c); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	ks := newSet(b)
	tok := sign(b, newSigner(b, ks), sampleClaims("abcdefgh"))
	rp := publishedSet(b, ks)
	opts := ear.VerifyOptions{Now: at(t0), ExpectedNonce: "abcdefgh"}
	b.SetBytes(int64(len(tok)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ear.Verify(tok, rp, opts); err != nil {
			b.Fatal(err)
		}
	}
}
