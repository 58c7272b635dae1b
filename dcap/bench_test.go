package dcap

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"math/big"
	"testing"
	"time"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
	"github.com/tdproof/tdproof/quote"
)

// benchFixture builds one TDX v4 quote and its collateral with dcaptest.
func benchFixture(b *testing.B) (*dcaptest.Fixture, *quote.Quote, *collateral.Collateral) {
	b.Helper()
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		b.Fatal(err)
	}
	qb, err := f.BuildQuote()
	if err != nil || qb.Parsed == nil {
		b.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		b.Fatal(err)
	}
	return f, qb.Parsed, c
}

// BenchmarkVerifyCold verifies with nothing cached (the pure Verify):
// every chain, CRL, collateral and quote signature is checked.
func BenchmarkVerifyCold(b *testing.B) {
	f, q, c := benchFixture(b)
	opts := Options{TrustedRoot: f.PKI.Root.Certificate, Now: f.Now}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Verify(q, c, opts); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(coldECDSACount), "ecdsa/op")
}

// coldECDSACount is the number of ECDSA verifications of a cold Verify:
// root CA CRL, 2 × (TCB signing cert + document), PCK CA of the CRL
// chain, PCK CRL, PCK CA of the quote chain, PCK leaf, PCK CRL again
// against the quote's PCK CA, QE report, quote.
const coldECDSACount = 12

// BenchmarkVerifyFirstSeenPlatform verifies a quote from a platform the
// Verifier has not seen, with collateral and the PCK CA already verified:
// PCK leaf, QE report and quote signatures.
func BenchmarkVerifyFirstSeenPlatform(b *testing.B) {
	f, q, c := benchFixture(b)
	v := NewVerifier(VerifierOptions{TrustedRoot: f.PKI.Root.Certificate})
	if _, err := v.Verify(q, c, f.Now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		v.session.cache.mu.Lock()
		clear(v.session.cache.platforms)
		v.session.cache.mu.Unlock()
		if _, err := v.Verify(q, c, f.Now); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyRepeatPlatform verifies a quote from a known platform
// under known collateral: one ECDSA verification plus lookups.
func BenchmarkVerifyRepeatPlatform(b *testing.B) {
	f, q, c := benchFixture(b)
	v := NewVerifier(VerifierOptions{TrustedRoot: f.PKI.Root.Certificate})
	if _, err := v.Verify(q, c, f.Now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := v.Verify(q, c, f.Now); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// BenchmarkVerifyRepeatPlatformLargeCRL is the repeat path under a PCK
// CRL revoking 10,000 serials (none of them the platform's): the cost
// must not grow with the CRL (compare with BenchmarkVerifyRepeatPlatform).
func BenchmarkVerifyRepeatPlatformLargeCRL(b *testing.B) {
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		b.Fatal(err)
	}
	revoked := make([]*big.Int, largeCRLSerials)
	for i := range revoked {
		revoked[i] = new(big.Int).Lsh(big.NewInt(int64(i+1)), 64)
	}
	f.CollateralSpec.PCKCRL.Revoked = revoked
	qb, err := f.BuildQuote()
	if err != nil || qb.Parsed == nil {
		b.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		b.Fatal(err)
	}
	if n := len(c.PCKCRL.List.RevokedCertificateEntries); n != largeCRLSerials {
		b.Fatalf("PCK CRL revokes %d serials, want %d", n, largeCRLSerials)
	}
	v := NewVerifier(VerifierOptions{TrustedRoot: f.PKI.Root.Certificate})
	if _, err := v.Verify(qb.Parsed, c, f.Now); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(len(c.PCKCRL.DER)), "crl-bytes")
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if _, err := v.Verify(qb.Parsed, c, f.Now); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// largeCRLSerials is the number of serials BenchmarkVerifyRepeatPlatformLargeCRL's PCK CRL revokes.
const largeCRLSerials = 10000

// BenchmarkVerifyRepeatPlatformParallel is the repeat path from every
// core at once (the Verifier is shared).
func BenchmarkVerifyRepeatPlatformParallel(b *testing.B) {
	f, q, c := benchFixture(b)
	v := NewVerifier(VerifierOptions{TrustedRoot: f.PKI.Root.Certificate})
	if _, err := v.Verify(q, c, f.Now); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(q, c, f.Now.Add(time.Second)); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkP256Verify is the floor: one P-256 verification (with
// SHA-256) of a message the size of the quote's signed region.
func BenchmarkP256Verify(b *testing.B) {
	_, q, _ := benchFixture(b)
	key, err := parseRawP256(&q.Signature.AttestationKey)
	if err != nil {
		b.Fatal(err)
	}
	msg := q.Signed()
	sig := q.Signature.Signature
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		if !verifyRawP256(key, msg, &sig) {
			b.Fatal("signature does not verify")
		}
	}
	reportCPU(b, cpu0)
}

// BenchmarkP256Sign is the other half of a verification service's floor
// (issue 15: one verification and one signature per request): one P-256
// signature, hedged with crypto/rand as the EAR signer makes it, of the
// SHA-256 of a message the size of the quote's signed region.
func BenchmarkP256Sign(b *testing.B) {
	_, q, _ := benchFixture(b)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := q.Signed()
	b.SetBytes(int64(len(msg)))
	b.ReportAllocs()
	cpu0 := processCPU()
	for b.Loop() {
		h := sha256.Sum256(msg)
		if _, _, err := ecdsa.Sign(rand.Reader, key, h[:]); err != nil {
			b.Fatal(err)
		}
	}
	reportCPU(b, cpu0)
}

// reportCPU reports the process's CPU time per op since cpu0
// (processCPU) as cpu-ns/op: on a shared machine, wall time per op
// includes waiting for a CPU, CPU time does not, so it is the figure to
// set beside a server's CPU per request and the one that survives the
// machine's load.
func reportCPU(b *testing.B, cpu0 time.Duration) {
	if cpu := processCPU() - cpu0; cpu > 0 && cpu0 > 0 {
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
	}
}
