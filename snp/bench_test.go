package snp_test

import (
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"math/big"
	"testing"

	"github.com/tdproof/tdproof/snp"
	"github.com/tdproof/tdproof/snpsim"
)

// BenchmarkP384Verify is one ECDSA P-384 verification over SHA-384 of the
// report's signed bytes: the floor of a repeat verification.
func BenchmarkP384Verify(b *testing.B) {
	g := newGuest(b, snp.ProductMilan)
	raw := attest(b, g, nil)
	r, err := snp.ParseReport(raw)
	if err != nil {
		b.Fatal(err)
	}
	pub := g.Key.Key.Public().(*ecdsa.PublicKey)
	rr, ss := r.SignatureInts()
	b.ReportAllocs()
	for b.Loop() {
		d := sha512.Sum384(raw[:snp.SignedSize])
		if !ecdsa.Verify(pub, d[:], rr, ss) {
			b.Fatal("verify")
		}
	}
}

// BenchmarkVerifierRepeat verifies a repeat report from a known chip
// with a long-lived Verifier (chain cached): parse plus one P-384
// verification and the per-call checks.
func BenchmarkVerifierRepeat(b *testing.B) {
	g := newGuest(b, snp.ProductMilan)
	raw := attest(b, g, nil)
	v := snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots()})
	certs := g.Certificates()
	b.ReportAllocs()
	for b.Loop() {
		r, err := snp.ParseReport(raw)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := v.Verify(r, certs, 0, snpsim.Now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifierRepeatCRL is BenchmarkVerifierRepeat with the ARK's
// CRL (listing 50 other serials) applied on every call, as the service
// does: the CRL's signature is verified once, its hash and the serial
// lookups on every call.
func BenchmarkVerifierRepeatCRL(b *testing.B) {
	g := newGuest(b, snp.ProductMilan)
	raw := attest(b, g, nil)
	v := snp.NewVerifier(snp.VerifierOptions{Roots: g.PKI.Roots(), RequireCRL: true})
	var others []*x509.Certificate
	for i := range 50 {
		c := *g.Key.Cert
		c.SerialNumber = big.NewInt(int64(1000 + i))
		others = append(others, &c)
	}
	crl, err := g.CRL(others...)
	if err != nil {
		b.Fatal(err)
	}
	certs := g.Certificates()
	certs.CRLs = [][]byte{crl}
	b.ReportAllocs()
	for b.Loop() {
		r, err := snp.ParseReport(raw)
		if err != nil {
			b.Fatal(err)
		}
		if res, err := v.Verify(r, certs, 0, snpsim.Now); err != nil || !res.CRLChecked {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCold verifies with nothing cached: two RSA-PSS
// certificate signatures and the report signature.
func BenchmarkVerifyCold(b *testing.B) {
	g := newGuest(b, snp.ProductMilan)
	raw := attest(b, g, nil)
	r, err := snp.ParseReport(raw)
	if err != nil {
		b.Fatal(err)
	}
	opts := simOpts(g)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := snp.Verify(r, g.Certificates(), opts); err != nil {
			b.Fatal(err)
		}
	}
}
