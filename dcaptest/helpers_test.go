package dcaptest_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"math/big"
	"testing"

	"github.com/tdproof/tdproof/dcaptest"
)

// verifyRaw checks a raw r‖s ECDSA P-256 signature over SHA-256(msg).
func verifyRaw(pub *ecdsa.PublicKey, msg, sig []byte) bool {
	if len(sig) != 64 {
		return false
	}
	h := sha256.Sum256(msg)
	r := new(big.Int).SetBytes(sig[:32])
	s := new(big.Int).SetBytes(sig[32:])
	return ecdsa.Verify(pub, h[:], r, s)
}

// pubFromRaw decodes a raw x‖y P-256 public key.
func pubFromRaw(t testing.TB, raw [64]byte) *ecdsa.PublicKey {
	t.Helper()
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, raw[:]...))
	if err != nil {
		t.Fatalf("attestation key: %v", err)
	}
	return pub
}

func newFixture(t testing.TB, kind dcaptest.QuoteKind, opts dcaptest.FixtureOptions) *dcaptest.Fixture {
	t.Helper()
	f, err := dcaptest.NewFixture(kind, opts)
	if err != nil {
		t.Fatalf("NewFixture(%v): %v", kind, err)
	}
	return f
}

func newPKI(t testing.TB) *dcaptest.PKI {
	t.Helper()
	p, err := dcaptest.NewPKI(dcaptest.PKIOptions{})
	if err != nil {
		t.Fatalf("NewPKI: %v", err)
	}
	return p
}
