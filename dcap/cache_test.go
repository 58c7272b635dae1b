package dcap

import (
	"errors"
	"math/big"
	"testing"

	"github.com/tdproof/tdproof/collateral"
	"github.com/tdproof/tdproof/dcaptest"
)

// TestVerifierNewCRLRevokes checks that the Verifier's collateral cache,
// keyed by CRL digests, does not serve a verified platform once a new PCK
// CRL (same documents, parsed afresh) revokes its PCK certificate, and
// that a hand-built CRL value (digest computed per call) behaves alike.
func TestVerifierNewCRLRevokes(t *testing.T) {
	f, err := dcaptest.NewFixture(dcaptest.TDXQuoteV4, dcaptest.FixtureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	qb, err := f.BuildQuote()
	if err != nil || qb.Parsed == nil {
		t.Fatal(err)
	}
	c, err := f.BuildCollateral()
	if err != nil {
		t.Fatal(err)
	}
	v := NewVerifier(VerifierOptions{TrustedRoot: f.PKI.Root.Certificate})
	for range 2 {
		if _, err := v.Verify(qb.Parsed, c, f.Now); err != nil {
			t.Fatal(err)
		}
	}
	revoking, err := f.PKI.PCKCRL(f.CollateralSpec.CA, dcaptest.CRLSpec{
		ThisUpdate: f.CollateralSpec.PCKCRL.ThisUpdate, NextUpdate: f.CollateralSpec.PCKCRL.NextUpdate,
		Revoked: []*big.Int{f.Platform.PCK.Certificate.SerialNumber},
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, crl := range map[string]*collateral.CRL{
		"parsed":     revoking,
		"hand-built": {DER: revoking.DER, List: revoking.List},
	} {
		c2 := *c
		c2.PCKCRL = crl
		if _, err := v.Verify(qb.Parsed, &c2, f.Now); !errors.Is(err, ErrRevoked) {
			t.Errorf("%s: err = %v, want ErrRevoked", name, err)
		}
	}
	if _, err := v.Verify(qb.Parsed, c, f.Now); err != nil {
		t.Errorf("original CRL again: %v", err)
	}
}
